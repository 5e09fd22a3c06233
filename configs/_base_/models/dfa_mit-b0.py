# The DFA model at CPU scale: a SegFormer-B0 encoder (mmseg
# MixVisionTransformer, from scratch) under a narrow DFA head (width 64, 4
# heads). Its stride-8, -16 and -32 features are resized to stride 8 and
# concatenated into the image tokens; masks come out at stride 2. Everything
# else (bias, prior, loss) is the SAM recipe's.
_base_ = ['./dfa_sam_vit-b.py']
model = dict(
    backbone=dict(
        _delete_=True,
        type='MixVisionTransformer',
        in_channels=3,
        embed_dims=32,
        num_stages=4,
        num_layers=[2, 2, 2, 2],
        num_heads=[1, 2, 5, 8],
        patch_sizes=[7, 3, 3, 3],
        sr_ratios=[8, 4, 2, 1],
        out_indices=(1, 2, 3),
        mlp_ratio=4,
        qkv_bias=True,
        drop_path_rate=0.1),
    decode_head=dict(
        in_channels=[64, 160, 256],
        in_index=[0, 1, 2],
        input_transform='resize_concat',
        channels=64,
        num_heads=4,
        feedforward_channels=256,
        # Narrower than SAM's decoder, and trained from scratch.
        init_cfg=None))
