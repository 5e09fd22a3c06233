# A translation-equivariant segmentor for the whole-slide tests: two 3x3
# convolutions (tests/data/toy_wsi_model.py) under a 1x1 FCN classifier, with
# the data preprocessor of the tiny segmentation config.
_base_ = ['./tiny_seg_synthetic.py']
custom_imports = dict(imports=['toy_wsi_model'], allow_failed_imports=False)
model = dict(
    backbone=dict(
        _delete_=True, type='ToyConvBackbone', channels=8, num_convs=2),
    decode_head=dict(
        _delete_=True,
        type='FCNHead',
        in_channels=8,
        channels=8,
        num_convs=0,
        concat_input=False,
        dropout_ratio=0.0,
        num_classes=4,
        loss_decode=dict(type='CrossEntropyLoss')))
