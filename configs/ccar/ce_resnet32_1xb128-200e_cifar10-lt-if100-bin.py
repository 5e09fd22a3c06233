# As ce_resnet32_1xb128-200e_cifar10-lt-if100.py, on the official binary
# release (data/cifar10/cifar-10-batches-py): LDAM-DRW's exact training
# images.
# Any CIFAR-10-LT config switches the same way, by this dataset base.
_base_ = [
    '../_base_/models/cifar_resnet32.py',
    '../_base_/datasets/cifar10_lt_if100_bin.py',
    '../_base_/schedules/cifar_lt_200e.py',
    '../_base_/default_runtime_cifar_lt.py',
]
