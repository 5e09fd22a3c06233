# A segmentation run small enough for tests: a 2-stage MiT on 32 px
# synthetic tissue. No BatchNorm and no dropout, so runs split over
# processes or resumed from a checkpoint are comparable number for number.
_base_ = [
    'mmimb::_base_/datasets/synthetic_tissue.py',
    'mmimb::_base_/default_runtime_seg.py',
]
crop_size = (32, 32)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255,
        size=crop_size),
    backbone=dict(
        type='MixVisionTransformer',
        in_channels=3,
        embed_dims=8,
        num_stages=2,
        num_layers=[1, 1],
        num_heads=[1, 2],
        patch_sizes=[7, 3],
        strides=[4, 2],
        sr_ratios=[2, 1],
        out_indices=(0, 1),
        mlp_ratio=2,
        drop_path_rate=0.0),
    decode_head=dict(
        type='SegformerHead',
        in_channels=[8, 16],
        in_index=[0, 1],
        channels=16,
        dropout_ratio=0.0,
        num_classes=5,
        norm_cfg=dict(type='GN', num_groups=4),
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))

data = dict(img_size=32, pipeline=[dict(type='PackSegInputs')])
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=False),
    dataset=dict(num_samples=16, **data))
val_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(num_samples=4, **data))
test_dataloader = val_dataloader

optim_wrapper = dict(
    type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3))
param_scheduler = [dict(type='LinearLR', start_factor=0.5, by_epoch=False,
                        begin=0, end=4)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=4, val_interval=100)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2),
    visualization=dict(type='SegVisualizationHook'))
log_processor = dict(by_epoch=False, window_size=1)
randomness = dict(seed=0)
