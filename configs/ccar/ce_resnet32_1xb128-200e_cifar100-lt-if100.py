# Cross-entropy baseline on CIFAR-100-LT (IF 100, JPEG folders), ResNet-32,
# the 200-epoch schedule of LDAM-DRW (published with it: 38.3 top-1,
# METHODS.md). Other imbalance factors: cifar100_lt_if{10,50,200}.py.
_base_ = [
    '../_base_/models/cifar_resnet32.py',
    '../_base_/datasets/cifar100_lt_if100.py',
    '../_base_/schedules/cifar_lt_200e.py',
    '../_base_/default_runtime_cifar_lt.py',
]
model = dict(head=dict(num_classes=100))
