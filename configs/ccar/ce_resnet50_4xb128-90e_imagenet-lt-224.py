# Cross-entropy baseline of the CCAR paper's headline setting: ResNet-50
# from scratch on ImageNet-LT (CCAR reports 41.60 top-1 with CE, 45.62 with
# CCAR, 52.76 with CCAR + logit adjustment). The paper does not publish its
# ImageNet-LT protocol; this is the decoupling code's (Kang et al. 2020,
# feat_uniform.yaml: 90 epochs, batch 512 = 4 x 128, SGD lr 0.2, weight
# decay 5e-4, cosine), our reading. Shot groups: > 100, 20-100, < 20.
_base_ = [
    'mmpretrain::_base_/models/resnet50.py',
    '../_base_/datasets/imagenet_lt.py',
    '../_base_/schedules/imagenet_lt_90e.py',
    '../_base_/default_runtime_cls.py',
]
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=1))
randomness = dict(seed=0)
