# As ccar-bs_resnet32_1xb128-200e_cifar10-lt-if100.py, on CIFAR-10-LT with
# imbalance factor 10.
_base_ = ['./ccar-bs_resnet32_1xb128-200e_cifar10-lt-if100.py']
train_dataloader = dict(dataset=dict(imbalance_factor=10))
