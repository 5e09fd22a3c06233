# A classification run small enough for tests: CIFAR ResNet-8 on 32 px
# images in a folder per class (tests write them and set data_root).
_base_ = ['mmimb::_base_/default_runtime_cls.py']
model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(
        num_classes=3, mean=[128.0] * 3, std=[64.0] * 3, to_rgb=True),
    backbone=dict(type='CifarResNet', depth=8),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=3, in_channels=64))
dataset = dict(
    type='CustomDataset',
    data_root='data/tiny_cls',
    pipeline=[dict(type='LoadImageFromFile'),
              dict(type='PackInputs')])
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    dataset=dataset,
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=4,
    num_workers=0,
    dataset=dataset,
    sampler=dict(type='DefaultSampler', shuffle=False))
val_evaluator = dict(type='Accuracy', topk=(1, ))
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=1e-4))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=4, val_interval=4)
val_cfg = dict()
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=4))
randomness = dict(seed=0)
