# CCAR weighting logit-adjusted cross-entropy (tau = 1).
_base_ = ['./resnet32_cifar10-lt-if100_ccar.py']
model = dict(head=dict(loss=dict(logit_adjust='la', tau=1.0)))
