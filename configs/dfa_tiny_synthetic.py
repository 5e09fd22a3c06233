# DFA on the CPU in minutes (`make demo`, the evidence runs): a SegFormer-B0
# encoder (mmseg MixVisionTransformer, trained from scratch) and a narrow DFA
# head on generated tissue whose class frequency and difficulty are crossed
# (128 px, 6 classes).
#   python tools/train.py configs/dfa_tiny_synthetic.py
_base_ = [
    '_base_/models/dfa_sam_vit-b.py',
    '_base_/datasets/synthetic_tissue_crossed.py',
    '_base_/schedules/schedule_cpu_demo.py',
    '_base_/default_runtime_seg.py',
]
model = dict(
    data_preprocessor=dict(size=_base_.crop_size),
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
    # stride-8, -16 and -32 features resized to stride 8 and concatenated:
    # 16 x 16 image tokens, masks at stride 2
    decode_head=dict(
        in_channels=[64, 160, 256],
        in_index=[0, 1, 2],
        input_transform='resize_concat',
        channels=64,
        num_heads=4,
        feedforward_channels=256,
        num_classes=6))
optim_wrapper = dict(paramwise_cfg=_base_.dfa_paramwise_cfg)
custom_hooks = [dict(type='DFABiasLoggerHook')]
randomness = dict(seed=0)
