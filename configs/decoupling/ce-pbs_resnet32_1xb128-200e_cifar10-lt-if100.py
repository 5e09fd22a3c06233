# Joint training with progressively balanced sampling (Kang et al. 2020,
# feat_shift.yaml): instance-balanced in the first epoch, class-balanced in
# the last (total_epochs = train_cfg.max_epochs).
_base_ = ['../ccar/ce_resnet32_1xb128-200e_cifar10-lt-if100.py']
train_dataloader = dict(
    sampler=dict(
        _delete_=True,
        type='ProgressivelyBalancedSampler',
        total_epochs={{_base_.train_cfg.max_epochs}}))
