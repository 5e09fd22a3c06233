# Softmax focal loss (Lin et al. 2017) with gamma = 1, LDAM-DRW's focal
# baseline (--loss_type Focal: FocalLoss(gamma=1)), on the cross-entropy
# config.
_base_ = ['../ccar/ce_resnet32_1xb128-200e_cifar10-lt-if100.py']
model = dict(
    head=dict(loss=dict(_delete_=True, type='SoftmaxFocalLoss', gamma=1.0)))
