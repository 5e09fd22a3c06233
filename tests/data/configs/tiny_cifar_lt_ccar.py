# The CCAR CIFAR-10-LT config shrunk for tests: ResNet-8, a few iterations
# on a folder-per-class fixture (data roots set by the test).
_base_ = [
    '../../../configs/ccar/ccar_resnet32_1xb128-200e_cifar10-lt-if100.py'
]
model = dict(backbone=dict(depth=8))
loader = dict(num_workers=0, persistent_workers=False)
train_dataloader = dict(
    batch_size=8, dataset=dict(imbalance_factor=4, max_per_class=8),
    **loader)
val_dataloader = dict(batch_size=16, **loader)
test_dataloader = val_dataloader
val_evaluator = dict(thresholds=(6, 3))
test_evaluator = val_evaluator
param_scheduler = [
    dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0, end=3)
]
train_cfg = dict(
    _delete_=True, type='IterBasedTrainLoop', max_iters=3, val_interval=3)
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=3))
log_processor = dict(by_epoch=False)
