# CCAR weighting logit-adjusted cross-entropy (tau = 1).
_base_ = ['./ccar_resnet32_1xb128-200e_cifar10-lt-if100.py']
model = dict(head=dict(loss=dict(logit_adjust='la', tau=1.0)))
