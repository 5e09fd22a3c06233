# The standard long-tailed CIFAR schedule, LDAM-DRW's (Cao et al. 2019,
# cifar_train.py): SGD, lr 0.1, momentum 0.9, weight decay 2e-4, batch 128
# (set by the dataset base), 200 epochs, linear warm-up over the first 5
# epochs, lr x0.01 at epochs 160 and 180. Logit adjustment (Menon et al.
# 2021) published its results with another protocol (1241 epochs, another
# network; docs/long_tail.md).
# LDAM-DRW warms up per epoch (0.02, 0.04, ..., 0.1); here the same ramp
# runs per iteration.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=2e-4))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.2,
        by_epoch=True,
        begin=0,
        end=5,
        convert_to_iter_based=True),
    dict(type='MultiStepLR', by_epoch=True, milestones=[160, 180], gamma=0.01),
]
train_cfg = dict(by_epoch=True, max_epochs=200, val_interval=10)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=128)
