# BALMS's own CIFAR-100-LT setting (imbalance 200, their
# balanced_softmax_imba200.yaml), otherwise as the IF 50 config.
_base_ = ['./bs_resnet32_1xb512-13k-balms_cifar100-lt-if50.py']
train_dataloader = dict(dataset=dict(imbalance_factor=200))
