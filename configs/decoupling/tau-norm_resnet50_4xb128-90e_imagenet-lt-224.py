# tau-normalised classifier (Kang et al., ICLR 2020) on the cross-entropy
# ResNet-50 of ../ccar/ce_resnet50_4xb128-90e_imagenet-lt-224.py. Test
# only:
#   python tools/test.py THIS_CONFIG \
#       work_dirs/ce_resnet50_4xb128-90e_imagenet-lt-224/epoch_90.pth
# The authors pick tau on the validation set (0 to 2 in steps of 0.1);
# 1.0 is our default (--cfg-options model.head.tau=...).
_base_ = ['../ccar/ce_resnet50_4xb128-90e_imagenet-lt-224.py']
model = dict(head=dict(type='TauNormClsHead', tau=1.0))
