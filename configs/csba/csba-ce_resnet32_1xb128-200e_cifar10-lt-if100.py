# ResNet-32 with Class-Specific Branch Attention on CIFAR-10-LT IF100;
# dataset, loss and schedule as the CCAR configs.
_base_ = [
    '../ccar/ce_resnet32_1xb128-200e_cifar10-lt-if100.py',
    '../_base_/models/cifar_resnet32_branch_necks.py',
]
model = {{_base_.csba_neck_head}}
