# CIFAR-100 from JPEG folders data/cifar100/{train,test}/<class>/*.jpg (one
# folder per fine label, named as the release's fine_label_names), through
# mmpretrain's CustomDataset, as cifar10_jpg.py. The official label order is
# alphabetical, so CustomDataset's sorted folders number the classes as the
# binary release does (tests/test_long_tail_datasets.py checks the names).
# The normalisation is CIFAR-10's, as LDAM-DRW and BALMS use for CIFAR-100.
_base_ = ['./cifar10_jpg.py']
from mmpretrain.datasets.categories import CIFAR100_CATEGORIES  # noqa: E402

data_root = 'data/cifar100'
data_preprocessor = dict(num_classes=100)
train_dataset = dict(
    data_root=data_root, metainfo=dict(classes=CIFAR100_CATEGORIES))
train_dataloader = dict(dataset=train_dataset)
val_dataloader = dict(
    dataset=dict(
        data_root=data_root, metainfo=dict(classes=CIFAR100_CATEGORIES)))
test_dataloader = val_dataloader
