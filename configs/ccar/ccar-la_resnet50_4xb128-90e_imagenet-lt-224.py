# CCAR weighting logit-adjusted cross-entropy (tau = 1) on ImageNet-LT:
# 52.76 top-1 in the CCAR paper.
_base_ = ['./ccar_resnet50_4xb128-90e_imagenet-lt-224.py']
model = dict(head=dict(loss=dict(logit_adjust='la', tau=1.0)))
