# Cross-entropy baseline: ResNet-32 on CIFAR-10-LT (IF 100, JPEG folders),
# the standard 200-epoch schedule. The other methods change only the loss.
_base_ = [
    '../_base_/models/cifar_resnet32.py',
    '../_base_/datasets/cifar10_lt_if100.py',
    '../_base_/schedules/cifar_lt_200e.py',
    '../_base_/default_runtime_cifar_lt.py',
]
