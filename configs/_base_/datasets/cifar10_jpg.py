# CIFAR-10 from JPEG folders data/cifar10/{train,test}/<class>/*.jpg, e.g.
#   tar xzf ../shared/data/cifar10-jpg.tar.gz -C data/
# read by mmpretrain's folder-per-class CustomDataset. CustomDataset numbers
# the class folders in sorted order and does not match them against the
# names below; the standard CIFAR-10 order is alphabetical, so both agree
# (tests/test_cifar_data.py checks it on the real folders).
# JPEG re-encoding changes pixels slightly: accuracies are close to, not
# equal to, those on the binary release (cifar10_bin.py).
dataset_type = 'CustomDataset'
data_root = 'data/cifar10'
cifar10_classes = ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog',
                   'frog', 'horse', 'ship', 'truck')
data_preprocessor = dict(
    num_classes=10,
    mean=[125.307, 122.961, 113.8575],
    std=[51.5865, 50.847, 51.255],
    # LoadImageFromFile gives BGR.
    to_rgb=True)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomCrop', crop_size=32, padding=4),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='PackInputs'),
]

train_dataset = dict(
    type=dataset_type,
    data_root=data_root,
    data_prefix='train',
    metainfo=dict(classes=cifar10_classes),
    pipeline=train_pipeline)
train_dataloader = dict(
    batch_size=128,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=train_dataset)
val_dataloader = dict(
    batch_size=256,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix='test',
        metainfo=dict(classes=cifar10_classes),
        pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(type='LongTailMetric')
test_evaluator = val_evaluator
