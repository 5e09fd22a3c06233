# Classifier re-training (cRT; Kang et al., ICLR 2020, cls_crt.yaml) after
# the cross-entropy ResNet-50 of
# ../ccar/ce_resnet50_4xb128-90e_imagenet-lt-224.py: backbone loaded and
# frozen, a fresh linear classifier trained 10 epochs on class-balanced
# batches (4 samples per class visit, epochs of 1280 x 1000 draws), cosine
# to 0, the first stage's optimizer (SGD lr 0.2, weight decay 5e-4).
_base_ = [
    '../ccar/ce_resnet50_4xb128-90e_imagenet-lt-224.py',
    '../_base_/schedules/decoupled_stage2.py'
]
stage1_checkpoint = 'work_dirs/ce_resnet50_4xb128-90e_imagenet-lt-224/' \
    'epoch_90.pth'
model = dict(
    type='FrozenBackboneClassifier',
    backbone=dict(
        init_cfg=dict(
            type='Pretrained', checkpoint=stage1_checkpoint,
            prefix='backbone.')))
train_dataloader = dict(sampler={{_base_.stage2_sampler}})
param_scheduler = {{_base_.crt_param_scheduler}}
train_cfg = {{_base_.crt_train_cfg}}
default_hooks = dict(checkpoint=dict(interval=1))
