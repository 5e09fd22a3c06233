# CIFAR-10-LT, imbalance factor 100 (5000, 2997, 1796, 1077, 645, 387, 232,
# 139, 83, 50 training images; 12,406 in all), from the JPEG folders, tested
# on the full balanced test set. The subset is fixed by its own seed, not
# by the run's seed, as in the literature.
_base_ = ['./cifar10_jpg.py']

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='LongTailedDataset',
        imbalance_factor=100,
        seed=0,
        dataset={{_base_.train_dataset}}))
# With the usual thresholds (more than 100, fewer than 20 samples) no
# CIFAR-10-LT class is few-shot; these split IF100's classes 3 / 4 / 3.
val_evaluator = dict(
    type='LongTailMetric',
    train_class_counts='auto',
    thresholds=(1500, 200))
test_evaluator = val_evaluator
