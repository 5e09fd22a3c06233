# A CIFAR-10-LT config with the data on the device
# (configs/_base_/datasets/cifar10_lt_if100_bank.py among its bases instead
# of cifar10_lt_if100.py), shrunk for tests: ResNet-8, a few iterations on
# a folder-per-class fixture (data roots set by the test).
_base_ = [
    '../../../configs/_base_/models/cifar_resnet32.py',
    '../../../configs/_base_/datasets/cifar10_lt_if100_bank.py',
    '../../../configs/_base_/schedules/cifar_lt_200e.py',
    '../../../configs/_base_/default_runtime_cls.py',
]
model = dict(backbone=dict(depth=8))
train_dataloader = dict(
    batch_size=8,
    dataset=dict(dataset=dict(imbalance_factor=4, max_per_class=8)))
val_dataloader = dict(batch_size=16)
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
randomness = dict(seed=0)
