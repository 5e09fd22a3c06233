# LDAM-DRW on CIFAR-10-LT IF 100 (published: 77.0 top-1, METHODS.md):
# _base_/models/ldam_drw.py on the cross-entropy config, whose 200-epoch
# schedule is LDAM-DRW's.
_base_ = [
    '../ccar/ce_resnet32_1xb128-200e_cifar10-lt-if100.py',
    '../_base_/models/ldam_drw.py'
]
model = dict(
    head=dict(
        type={{_base_.ldam_head_type}}, loss={{_base_.ldam_drw_loss}}))
custom_hooks = {{_base_.drw_hooks}}
