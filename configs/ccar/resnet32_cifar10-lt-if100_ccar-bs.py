# CCAR weighting Balanced Softmax.
_base_ = ['./resnet32_cifar10-lt-if100_ccar.py']
model = dict(head=dict(loss=dict(logit_adjust='balanced_softmax')))
