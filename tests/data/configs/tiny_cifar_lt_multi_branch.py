# tiny_cifar_lt_ccar.py with the class-shared multi-branch neck of
# configs/csba/, swapped in the same way.
_base_ = [
    './tiny_cifar_lt_ccar.py',
    '../../../configs/_base_/models/cifar_resnet32_branch_necks.py',
]
model = {{_base_.multi_branch_neck_head}}
