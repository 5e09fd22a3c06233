# ImageNet-LT (Liu et al., CVPR 2019): 115,846 training images of the 1000
# ImageNet classes (1280 down to 5 per class), 20,000 validation images
# taken from the ImageNet training set (20 per class) and 50,000 test
# images, the ImageNet validation set (50 per class), read from the OLTR
# list files ImageNet_LT_{train,val,test}.txt placed in the ImageNet root
# data/imagenet, whose paths (train/n01440764/..., val/n01440764/...) are
# relative to it; the validation images sit in per-class folders there.
# Augmentation and normalisation as the decoupling code
# (classifier-balancing data/dataloader.py): RandomResizedCrop 224, flip,
# colour jitter 0.4 / 0.4 / 0.4; test: shorter side 256, centre crop 224.
# No bases; the empty list keeps the file a plain (not lazy-import) config
# while it imports the class names.
_base_ = []
from mmpretrain.datasets.categories import IMAGENET_CATEGORIES  # noqa: E402

dataset_type = 'ImageListDataset'
data_root = 'data/imagenet'
data_preprocessor = dict(
    num_classes=1000,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
metainfo = dict(classes=IMAGENET_CATEGORIES)
train_dataloader = dict(
    batch_size=128,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageNet_LT_train.txt',
        metainfo=metainfo,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=128,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageNet_LT_val.txt',
        metainfo=metainfo,
        pipeline=test_pipeline))
test_dataloader = dict(
    val_dataloader,
    dataset=dict(val_dataloader['dataset'], ann_file='ImageNet_LT_test.txt'))
# Many > 100, medium 20-100, few < 20 training images (Liu et al.).
val_evaluator = dict(type='LongTailMetric', train_class_counts='auto')
test_evaluator = val_evaluator
