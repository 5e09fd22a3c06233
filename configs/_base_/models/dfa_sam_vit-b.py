# SAM-Path with Dynamic Focal Attention (arXiv 2604.13479): SAM ViT-B image
# encoder (mmpretrain's ViTSAM) and a SAM-style mask decoder with one token
# per class and 2 two-way blocks, whose image-to-token attention carries the
# learned per-class bias (DFA), initialised 0.5 * (p - mean p) from the focal
# prior p_c = 2 log(1 - f_c) of the training set's class frequencies.
#
# Encoder and decoder start from SAM's weights (README, "Pretrained
# weights"), converted to mmimb's keys by
#   python tools/model_converters/sam2mmpretrain.py sam_vit_b_01ec64.pth \
#       checkpoints/sam_vit-b_mmpretrain.pth
# (backbone.* for ViTSAM, decode_head.* for the decoder parts DFAHead shares
# with SAM's mask decoder). Elsewhere, set model.backbone.init_cfg.checkpoint
# and model.decode_head.init_cfg.checkpoint to the path. An encoder-only file
# (mmpretrain's released one) needs model.decode_head.init_cfg=None: the
# decoder then trains from scratch, which the DFA paper's setting does not.
sam_checkpoint = 'checkpoints/sam_vit-b_mmpretrain.pth'
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255)
# The scope mmengine gives bases read from mmseg::, so that the model builds
# in mmseg's registries wherever it is built (mmengine.hub.get_model builds
# it in the mmimb scope).
model = dict(
    _scope_='mmseg',
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='mmpretrain.ViTSAM',
        # ViTSAM's 'base', spelled out so that --cfg-options can change it.
        arch=dict(
            embed_dims=768,
            num_layers=12,
            num_heads=12,
            feedforward_channels=3072,
            global_attn_indexes=[2, 5, 8, 11]),
        img_size=1024,
        patch_size=16,
        out_channels=256,
        use_abs_pos=True,
        use_rel_pos=True,
        window_size=14,
        init_cfg=dict(
            type='Pretrained', checkpoint=sam_checkpoint,
            prefix='backbone.')),
    decode_head=dict(
        type='DFAHead',
        in_channels=256,
        channels=256,
        num_classes=5,
        num_layers=2,
        num_heads=8,
        feedforward_channels=2048,
        attention_downsample_rate=2,
        # The paper's variants differ in these fields only:
        # bias_mode none | fixed (CFFA, or HCFA with prior='difficulty') |
        # learned (DFA) | anchored (prior + learned correction, our reading).
        bias_mode='learned',
        prior='focal',
        class_freq='auto',
        gamma=2.0,
        init_scale=0.5,
        bias_sharing='shared',
        align_corners=False,
        # SAM-Path's focal + Dice, in implementations correct on the CPU and
        # with ignored pixels.
        loss_decode=[
            dict(type='SegFocalLoss', gamma=2.0, loss_weight=1.0),
            dict(type='SegDiceLoss', loss_weight=1.0),
        ],
        init_cfg=dict(
            type='Pretrained', checkpoint=sam_checkpoint,
            prefix='decode_head.')),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
# The learnable bias (parameters named *.dfa_delta) gets its own parameter
# group: learning rate x20, no weight decay. Schedules use it as
# optim_wrapper.paramwise_cfg.
dfa_paramwise_cfg = dict(
    custom_keys={'dfa_delta': dict(lr_mult=20.0, decay_mult=0.0)})
