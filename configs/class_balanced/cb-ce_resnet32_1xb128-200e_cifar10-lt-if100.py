# Class-balanced softmax cross-entropy (Cui et al., CVPR 2019), beta 0.9999
# as their cifar_im_trainval_cb.sh, weights normalised to sum to C and the
# mean over the batch (their tf.losses.softmax_cross_entropy), on the
# cross-entropy config. Our reading: LDAM-DRW's 200-epoch schedule and
# network instead of Cui et al.'s TensorFlow ResNet-32 protocol.
_base_ = ['../ccar/ce_resnet32_1xb128-200e_cifar10-lt-if100.py']
model = dict(
    head=dict(
        loss=dict(
            _delete_=True,
            type='ClassBalancedLoss',
            loss=dict(type='CrossEntropyLoss'),
            class_counts='auto',
            beta=0.9999,
            normalize='mean')))
