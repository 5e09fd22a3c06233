# Cross-entropy baseline: ResNet-32 on CIFAR-10-LT (IF 100, JPEG folders),
# the standard 200-epoch schedule. The other methods change only the loss.
_base_ = [
    '../_base_/models/cifar_resnet32.py',
    '../_base_/datasets/cifar10_lt_if100.py',
    '../_base_/schedules/cifar_lt_200e.py',
    '../_base_/default_runtime_cls.py',
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=1))
randomness = dict(seed=0)
