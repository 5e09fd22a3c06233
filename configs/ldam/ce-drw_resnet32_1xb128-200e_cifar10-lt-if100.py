# Cross-entropy with deferred re-weighting (LDAM-DRW's "ERM-DRW" baseline:
# --loss_type CE --train_rule DRW): plain linear head, class-balanced
# weights (beta 0.9999, PyTorch's weighted mean) from epoch 160.
_base_ = [
    '../ccar/ce_resnet32_1xb128-200e_cifar10-lt-if100.py',
    '../_base_/models/ldam_drw.py'
]
model = dict(head=dict(loss={{_base_.drw_loss}}))
custom_hooks = {{_base_.drw_hooks}}
