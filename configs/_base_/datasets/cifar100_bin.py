# CIFAR-100 from the official binary release (cifar-100-python under
# data/cifar100) through mmpretrain's CIFAR100, with CIFAR-10's
# normalisation (as LDAM-DRW and BALMS) and the LongTailMetric of the
# long-tailed configs.
_base_ = ['./cifar10_bin.py']

data_preprocessor = dict(num_classes=100)
train_dataset = dict(type='CIFAR100', data_root='data/cifar100')
train_dataloader = dict(dataset=train_dataset)
val_dataloader = dict(
    dataset=dict(type='CIFAR100', data_root='data/cifar100/'))
test_dataloader = val_dataloader
