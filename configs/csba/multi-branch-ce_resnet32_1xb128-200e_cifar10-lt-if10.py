# ResNet-32 with the class-shared multi-branch neck (CSBA's control) on
# CIFAR-10-LT IF10; dataset, loss and schedule as the CCAR configs.
_base_ = [
    '../ccar/ce_resnet32_1xb128-200e_cifar10-lt-if10.py',
    '../_base_/models/cifar_resnet32_branch_necks.py',
]
model = {{_base_.multi_branch_neck_head}}
