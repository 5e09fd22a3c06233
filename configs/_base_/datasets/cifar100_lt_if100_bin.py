# CIFAR-100-LT, imbalance factor 100, from the official binary release
# (cifar-100-python under data/cifar100): LDAM-DRW's IMBALANCECIFAR100
# subset (seed 0). Other imbalance factors:
# train_dataloader = dict(dataset=dict(imbalance_factor=IF)).
_base_ = ['./cifar100_bin.py']

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='LongTailedDataset',
        imbalance_factor=100,
        seed=0,
        dataset={{_base_.train_dataset}}))
val_evaluator = dict(type='LongTailMetric', train_class_counts='auto')
test_evaluator = val_evaluator
