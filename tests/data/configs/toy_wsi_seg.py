# A translation-equivariant segmentor for the whole-slide tests: two 3x3
# convolutions (tests/data/toy_wsi_model.py) under a 1x1 FCN classifier.
default_scope = 'mmseg'
custom_imports = dict(imports=['toy_wsi_model'], allow_failed_imports=False)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255),
    backbone=dict(type='ToyConvBackbone', channels=8, num_convs=2),
    decode_head=dict(
        type='FCNHead',
        in_channels=8,
        channels=8,
        num_convs=0,
        concat_input=False,
        dropout_ratio=0.0,
        num_classes=4,
        loss_decode=dict(type='CrossEntropyLoss')),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
