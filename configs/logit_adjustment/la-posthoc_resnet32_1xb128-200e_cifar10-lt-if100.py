# Post-hoc logit adjustment (Menon et al. 2021, tau = 1): the cross-entropy
# model of ../ccar/ce_resnet32_1xb128-200e_cifar10-lt-if100.py, predicting with
# argmax_c z_c - tau log pi_c. Test only:
#   python tools/test.py THIS_CONFIG \
#       work_dirs/ce_resnet32_1xb128-200e_cifar10-lt-if100/epoch_200.pth
_base_ = ['../ccar/ce_resnet32_1xb128-200e_cifar10-lt-if100.py']
model = dict(
    head=dict(type='PostHocAdjustedClsHead', class_freq='auto', tau=1.0))
