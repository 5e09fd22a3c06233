# tiny_cifar_lt_ccar.py (ResNet-8, CCAR, a CIFAR-10-LT-like fixture) with
# the CSBA neck and head of configs/csba/, swapped in the same way.
_base_ = [
    './tiny_cifar_lt_ccar.py',
    '../../../configs/_base_/models/cifar_resnet32_branch_necks.py',
]
model = {{_base_.csba_neck_head}}
