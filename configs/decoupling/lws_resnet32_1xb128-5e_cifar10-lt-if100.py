# Learnable weight scaling (LWS; Kang et al., ICLR 2020) after the
# cross-entropy model of ../ccar/ce_resnet32_1xb128-200e_cifar10-lt-if100.py:
# the whole first-stage model loaded, backbone and linear layer frozen, only
# the per-class scales trained, 5 epochs on class-balanced batches, cosine to 0
# (their cls_lws.yaml; its CIFAR transfer is our reading, as for cRT).
_base_ = [
    '../ccar/ce_resnet32_1xb128-200e_cifar10-lt-if100.py',
    '../_base_/schedules/decoupled_stage2.py'
]
load_from = 'work_dirs/ce_resnet32_1xb128-200e_cifar10-lt-if100/epoch_200.pth'
model = dict(type='FrozenBackboneClassifier', head=dict(type='LWSClsHead'))
train_dataloader = dict(sampler={{_base_.stage2_sampler}})
param_scheduler = {{_base_.lws_param_scheduler}}
train_cfg = {{_base_.lws_train_cfg}}
default_hooks = dict(checkpoint=dict(interval=1))
