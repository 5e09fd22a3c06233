# CIFAR-100-LT, imbalance factor 50 (12608 training images; shot groups
# 41 / 41 / 18), otherwise as cifar100_lt_if100.py.
_base_ = ['./cifar100_lt_if100.py']

train_dataloader = dict(dataset=dict(imbalance_factor=50))
