# The ImageNet-LT / Places-LT / iNaturalist schedule of the decoupling code
# (classifier-balancing config/ImageNet_LT/feat_uniform.yaml): SGD lr 0.2,
# momentum 0.9, weight decay 5e-4, batch 512, 90 epochs, cosine decay to 0,
# no warm-up. Their loop steps the scheduler at the start of each epoch, so
# their first epoch runs at the second value of the cosine and their last at
# 0; here epoch e runs at 0.1 * (1 + cos(pi * e / 90)), one epoch earlier.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.2, momentum=0.9, weight_decay=5e-4))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=90, eta_min=0, by_epoch=True,
         begin=0, end=90)
]
train_cfg = dict(by_epoch=True, max_epochs=90, val_interval=10)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=512)
