# tau-normalised classifier (Kang et al., ICLR 2020) on the cross-entropy
# model of ../ccar/ce_resnet32_1xb128-200e_cifar10-lt-if100.py: scores
# x . w_c / ||w_c|| ** tau without the bias. Test only:
#   python tools/test.py THIS_CONFIG \
#       work_dirs/ce_resnet32_1xb128-200e_cifar10-lt-if100/epoch_200.pth
# The authors sweep tau from 0 to 2 on a validation set; 1.0 here is our
# choice (--cfg-options model.head.tau=0.7 to change it).
_base_ = ['../ccar/ce_resnet32_1xb128-200e_cifar10-lt-if100.py']
model = dict(head=dict(type='TauNormClsHead', tau=1.0))
