# Learnable weight scaling (LWS; Kang et al., ICLR 2020, cls_lws.yaml)
# after the cross-entropy ResNet-50 of
# ../ccar/ce_resnet50_4xb128-90e_imagenet-lt-224.py: everything loaded and
# frozen but the per-class scales, 5 epochs on class-balanced batches,
# cosine to 0.
_base_ = [
    '../ccar/ce_resnet50_4xb128-90e_imagenet-lt-224.py',
    '../_base_/schedules/decoupled_stage2.py'
]
load_from = 'work_dirs/ce_resnet50_4xb128-90e_imagenet-lt-224/epoch_90.pth'
model = dict(type='FrozenBackboneClassifier', head=dict(type='LWSClsHead'))
train_dataloader = dict(sampler={{_base_.stage2_sampler}})
param_scheduler = {{_base_.lws_param_scheduler}}
train_cfg = {{_base_.lws_train_cfg}}
default_hooks = dict(checkpoint=dict(interval=1))
