# CIFAR-100-LT, imbalance factor 10 (19573 training images; shot groups
# 69 / 31 / 0), otherwise as cifar100_lt_if100.py.
_base_ = ['./cifar100_lt_if100.py']

train_dataloader = dict(dataset=dict(imbalance_factor=10))
