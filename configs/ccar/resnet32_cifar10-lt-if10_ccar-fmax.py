# As resnet32_cifar10-lt-if100_ccar-fmax.py, on CIFAR-10-LT with imbalance
# factor 10.
_base_ = ['./resnet32_cifar10-lt-if100_ccar-fmax.py']
train_dataloader = dict(dataset=dict(imbalance_factor=10))
