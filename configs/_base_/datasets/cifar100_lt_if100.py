# CIFAR-100-LT, imbalance factor 100: int(500 * 0.01 ** (i / 99)) training
# images of class i, 500 down to 5, 10,847 in all (LDAM-DRW's counts and
# selection, seed 0), from the JPEG folders; tested on the full balanced
# test set. The usual shot groups (many > 100, few < 20 training images)
# split the classes 35 / 35 / 30.
_base_ = ['./cifar100_jpg.py']

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='LongTailedDataset',
        imbalance_factor=100,
        seed=0,
        dataset={{_base_.train_dataset}}))
val_evaluator = dict(type='LongTailMetric', train_class_counts='auto')
test_evaluator = val_evaluator
