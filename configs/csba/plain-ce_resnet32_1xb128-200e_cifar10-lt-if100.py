# The plain head (global pooling + linear) of the CSBA comparison: the
# CCAR configs' ResNet-32 on CIFAR-10-LT IF100, unchanged.
_base_ = ['../ccar/ce_resnet32_1xb128-200e_cifar10-lt-if100.py']
