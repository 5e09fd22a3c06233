# Balanced Softmax (Ren et al. 2020). Identical to logit adjustment with
# tau = 1 (docs/ccar.md).
_base_ = ['./resnet32_cifar10-lt-if100_ce.py']
model = dict(
    head=dict(
        loss=dict(_delete_=True, type='BalancedSoftmaxLoss',
                  class_freq='auto')))
