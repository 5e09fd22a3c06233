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
# The hooks, loops and wrapper type are mmseg's; this file replaces the
# optimizer, the schedulers, the loop length and the checkpoint rule.
_base_ = ['mmseg::_base_/schedules/schedule_20k.py']
accumulative_counts = 2
warmup_steps = 72
max_epochs = 35
lr_milestones = [25, 29]
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-4, weight_decay=1e-2),
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
    _delete_=True,
    type='EpochBasedTrainLoop',
    max_epochs=max_epochs,
    val_interval=1)
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(
        by_epoch=True,
        interval=1,
        max_keep_ckpts=2,
        save_best='mDice',
        rule='greater'))
