# Post-hoc logit adjustment (Menon et al. 2021, tau = 1): the cross-entropy
# model of ../ccar/resnet32_cifar10-lt-if100_ce.py, predicting with
# argmax_c z_c - tau log pi_c. Test only:
#   python tools/test.py THIS_CONFIG \
#       work_dirs/resnet32_cifar10-lt-if100_ce/epoch_200.pth
_base_ = ['../ccar/resnet32_cifar10-lt-if100_ce.py']
model = dict(
    head=dict(type='PostHocAdjustedClsHead', class_freq='auto', tau=1.0))
