# CCAR weighting Balanced Softmax under the BALMS protocol on CIFAR-100-LT
# (imbalance 50): the CCAR paper reports 50.5 top-1.
_base_ = ['./bs_resnet32_1xb512-13k-balms_cifar100-lt-if50.py']
model = dict(
    head=dict(
        loss=dict(
            _delete_=True,
            type='CCARLoss',
            class_freq='auto',
            logit_adjust='balanced_softmax')))
