# As ce_resnet32_1xb128-200e_cifar100-lt-if100.py, on the official binary
# release (data/cifar100/cifar-100-python).
_base_ = [
    '../_base_/models/cifar_resnet32.py',
    '../_base_/datasets/cifar100_lt_if100_bin.py',
    '../_base_/schedules/cifar_lt_200e.py',
    '../_base_/default_runtime_cifar_lt.py',
]
model = dict(head=dict(num_classes=100))
