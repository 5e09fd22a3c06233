# tiny_seg_synthetic with a DFA head: a few seconds of CPU per run.
_base_ = ['./tiny_seg_synthetic.py']
model = dict(
    decode_head=dict(
        _delete_=True,
        type='DFAHead',
        in_channels=[8, 16],
        in_index=[0, 1],
        input_transform='resize_concat',
        channels=16,
        num_classes=5,
        num_layers=2,
        num_heads=2,
        feedforward_channels=32,
        class_freq=[0.5, 0.3, 0.04, 0.04, 0.12],
        align_corners=False,
        loss_decode=[
            dict(type='SegFocalLoss', loss_weight=1.0),
            dict(type='SegDiceLoss', loss_weight=1.0),
        ]))
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
    paramwise_cfg=dict(
        custom_keys={'dfa_delta': dict(lr_mult=20.0, decay_mult=0.0)}))
custom_hooks = [dict(type='DFABiasLoggerHook')]
