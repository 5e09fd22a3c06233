# `make demo`: a short real training run on generated tissue images.
_base_ = [
    'mmseg::_base_/models/segformer_mit-b0.py',
    '_base_/datasets/synthetic_tissue.py',
    '_base_/schedules/schedule_cpu_demo.py',
    '_base_/default_runtime_seg.py',
]
model = dict(
    data_preprocessor=dict(size=(256, 256)),
    decode_head=dict(
        num_classes=5, norm_cfg=dict(type='BN', requires_grad=True)))
randomness = dict(seed=0)
