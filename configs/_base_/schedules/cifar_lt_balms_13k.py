# The CIFAR-LT schedule of BALMS (Ren et al., NeurIPS 2020; their
# config/CIFAR100_LT/balanced_softmax_imba200.yaml and utils.py
# CosineAnnealingLRWarmup): SGD, momentum 0.9, weight decay 5e-4, batch 512,
# 13,000 iterations, the learning rate rising linearly from 0.05 to 0.1
# over the first 800 iterations, then a cosine decay to 0. BALMS converts
# both lengths to epochs (ceil(13000 / iterations per epoch)) and steps its
# schedule once per epoch; here it steps every iteration.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.5, end_factor=1.0, by_epoch=False,
         begin=0, end=800),
    dict(type='CosineAnnealingLR', T_max=12200, eta_min=0, by_epoch=False,
         begin=800, end=13000),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=13000, val_interval=1000)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=512)
