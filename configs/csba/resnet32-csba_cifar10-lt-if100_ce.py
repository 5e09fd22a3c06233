# ResNet-32 with Class-Specific Branch Attention on CIFAR-10-LT IF100;
# dataset, loss and schedule as the CCAR configs.
_base_ = [
    '../ccar/resnet32_cifar10-lt-if100_ce.py',
    '../_base_/models/cifar_resnet32_branch_necks.py',
]
model = {{_base_.csba_neck_head}}
