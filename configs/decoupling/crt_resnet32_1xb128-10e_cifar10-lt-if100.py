# Classifier re-training (cRT; Kang et al., ICLR 2020) after the
# cross-entropy model of ../ccar/ce_resnet32_1xb128-200e_cifar10-lt-if100.py:
# its backbone loaded and frozen, a freshly initialised linear classifier
# trained for 10 epochs on class-balanced batches (4 samples per class
# visit, epochs of 5000 x 10 draws), cosine decay to 0, the first stage's
# optimizer (SGD lr 0.1, weight decay 2e-4). The authors' recipe is for
# ImageNet-LT (their cls_crt.yaml); its CIFAR transfer is our reading.
_base_ = [
    '../ccar/ce_resnet32_1xb128-200e_cifar10-lt-if100.py',
    '../_base_/schedules/decoupled_stage2.py'
]
stage1_checkpoint = \
    'work_dirs/ce_resnet32_1xb128-200e_cifar10-lt-if100/epoch_200.pth'
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
