# A CIFAR-10-LT config with the data on the device
# (configs/_base_/datasets/cifar10_lt_if100_bank.py among its bases instead
# of cifar10_lt_if100.py), shrunk for tests: ResNet-8, one epoch on
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
# One epoch of the schedule (its warm-up), validated at its end.
train_cfg = dict(max_epochs=1, val_interval=1)
default_hooks = dict(logger=dict(interval=1))
randomness = dict(seed=0)
