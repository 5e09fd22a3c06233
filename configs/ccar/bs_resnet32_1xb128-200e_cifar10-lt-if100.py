# Balanced Softmax (Ren et al. 2020). Identical to logit adjustment with
# tau = 1 (docs/ccar.md).
_base_ = ['./ce_resnet32_1xb128-200e_cifar10-lt-if100.py']
model = dict(
    head=dict(
        loss=dict(_delete_=True, type='BalancedSoftmaxLoss',
                  class_freq='auto')))
