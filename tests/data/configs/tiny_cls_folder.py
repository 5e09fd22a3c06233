# A classification run small enough for tests: a 2-stage ResNet-CIFAR with
# BatchNorm on 16 px images read from a class-per-folder tree (the test
# writes it and sets train_dataloader.dataset.data_root).
_base_ = ['mmimb::_base_/default_runtime_cls.py']
model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(
        type='ClsDataPreprocessor',
        num_classes=4,
        mean=[127.5, 127.5, 127.5],
        std=[64.0, 64.0, 64.0],
        to_rgb=True),
    backbone=dict(
        type='ResNet_CIFAR',
        depth=18,
        num_stages=2,
        stem_channels=8,
        base_channels=8,
        strides=(1, 2),
        dilations=(1, 1),
        out_indices=(1, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=4,
        in_channels=16,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
train_dataloader = dict(
    batch_size=6,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='CustomDataset',
        data_root='',
        with_label=True,
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='RandomFlip', prob=0.5, direction='horizontal'),
            dict(type='PackInputs'),
        ]))
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4))
param_scheduler = []
train_cfg = dict(by_epoch=False, max_iters=4, val_interval=100)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=1000))
log_processor = dict(by_epoch=False, window_size=1)
randomness = dict(seed=0)
