# CCAR weighting Balanced Softmax.
_base_ = ['./ccar_resnet32_1xb128-200e_cifar10-lt-if100.py']
model = dict(head=dict(loss=dict(logit_adjust='balanced_softmax')))
