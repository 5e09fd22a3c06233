# CIFAR-10 from the official binary release (cifar-10-batches-py under
# data/cifar10), through mmpretrain's CIFAR10, with the batch size and
# metric of the long-tailed CIFAR configs. For a long-tailed version, wrap
# train_dataloader.dataset as cifar10_lt_if100.py does.
_base_ = ['mmpretrain::_base_/datasets/cifar10_bs16.py']

train_dataset = dict(
    type='CIFAR10',
    data_root='data/cifar10',
    split='train',
    pipeline={{_base_.train_pipeline}})
train_dataloader = dict(batch_size=128, dataset=train_dataset)
val_dataloader = dict(batch_size=256)
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='LongTailMetric')
test_evaluator = val_evaluator
