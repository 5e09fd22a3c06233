# The DFA authors' schedule (DFA reference code, configs/BCSS_DFA.py and
# pl_module_sam_seg.py, built on SAM-Path): AdamW, lr 1e-4, weight decay
# 1e-2, gradient accumulation over 2 batches, a linear warm-up over the first
# 72 optimizer steps, then the learning rate x0.1 from epoch 25 and x0.01
# from epoch 29 of 35 (the reference counts 72 optimizer steps per BCSS
# epoch and decays at steps 72 * 25 and 72 * 29). fp32. Validation and a
# checkpoint every epoch, the best by mDice kept.
#
# mmengine steps the schedulers every iteration (one batch) and the optimizer
# every `accumulative_counts` iterations: optimizer step k is iteration
# 2k + 1. LinearLR reaches its end factor at iteration `end - 1` and cannot
# start at 0, so with end = (72 + 1) * 2 step k gets (2k + 1) / 145 of the
# learning rate where the reference gives k / 72 (0.7% instead of 0 at the
# first step, equal from step 72 on).
accumulative_counts = 2
warmup_steps = 72
max_epochs = 35
lr_milestones = [25, 29]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=1e-2),
    accumulative_counts=accumulative_counts)
# Recipes of other lengths restate the list from these two, e.g.
#   param_scheduler = [dict(_base_.warmup_scheduler, end=(46 + 1) * 2),
#                      dict(_base_.decay_scheduler, end=60, milestones=[...])]
warmup_scheduler = dict(
    type='LinearLR',
    start_factor=1e-3,
    by_epoch=False,
    begin=0,
    end=(warmup_steps + 1) * accumulative_counts)
decay_scheduler = dict(
    type='MultiStepLR',
    by_epoch=True,
    begin=0,
    end=max_epochs,
    milestones=lr_milestones,
    gamma=0.1)
param_scheduler = [warmup_scheduler, decay_scheduler]
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook',
        by_epoch=True,
        interval=1,
        max_keep_ckpts=2,
        save_best='mDice',
        rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
