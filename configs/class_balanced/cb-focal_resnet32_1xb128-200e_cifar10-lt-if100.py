# Class-balanced focal loss (Cui et al., CVPR 2019), beta 0.9999 and
# gamma 1.0 as their cifar_im_trainval_cb.sh. Our reading: the softmax
# focal loss (theirs is the sigmoid one) and LDAM-DRW's schedule.
_base_ = ['./cb-ce_resnet32_1xb128-200e_cifar10-lt-if100.py']
model = dict(
    head=dict(
        loss=dict(loss=dict(_delete_=True, type='SoftmaxFocalLoss',
                            gamma=1.0))))
