# CIFAR-100-LT, imbalance factor 200 (9502 training images; shot groups
# 30 / 31 / 39), otherwise as cifar100_lt_if100.py.
_base_ = ['./cifar100_lt_if100.py']

train_dataloader = dict(dataset=dict(imbalance_factor=200))
