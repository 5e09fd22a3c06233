# CIFAR-10-LT, imbalance factor 100, from the official binary release
# (cifar-10-batches-py under data/cifar10), the images LDAM-DRW trains on:
# LongTailedDataset over mmpretrain's CIFAR10, which reads the batches in
# the release's order, selects exactly LDAM-DRW's IMBALANCECIFAR10 subset
# (seed 0). Shot groups and test set as cifar10_lt_if100.py.
_base_ = ['./cifar10_bin.py']

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='LongTailedDataset',
        imbalance_factor=100,
        seed=0,
        dataset={{_base_.train_dataset}}))
val_evaluator = dict(
    type='LongTailMetric',
    train_class_counts='auto',
    thresholds=(1500, 200))
test_evaluator = val_evaluator
