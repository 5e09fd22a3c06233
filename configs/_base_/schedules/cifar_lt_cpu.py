# A short CPU schedule for evidence runs: 3000 iterations of batch 64
# (about 15.5 epochs of CIFAR-10-LT IF100), about 10 minutes per run of
# ResNet-32 on one core with bf16 (tools/evidence/ccar_cifar10_lt.py;
# timings in docs/ccar.md). It replaces the schedule of a complete config, so
# it is applied on top of one (the evidence scripts do that), not listed
# among its bases.
# Differences from cifar_lt_200e.py: about 15 epochs instead of 200, so
# smaller batches (more updates for the same compute), and a one-cycle
# shape (short linear warm-up, linear decay to 0) instead of step decay;
# data loading in the main process. The CPU fast path: bf16 autocast
# (CPUAmpOptimWrapper, fp32 where the CPU lacks bf16) and channels-last
# (ChannelsLastHook), 2x faster than fp32 for ResNet-32
# (benchmarks/cpu_training.py).
# MMIMB_CPU_ITERS in the environment overrides the length (validation runs).
cpu_iters = {{'$MMIMB_CPU_ITERS:3000'}}
cpu_warmup = max(1, cpu_iters // 10)
train_dataloader = dict(batch_size=64, num_workers=0, persistent_workers=False)
val_dataloader = dict(num_workers=0, persistent_workers=False)
test_dataloader = dict(num_workers=0, persistent_workers=False)
optim_wrapper = dict(
    type='CPUAmpOptimWrapper',
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=2e-4))
custom_hooks = [dict(type='ChannelsLastHook')]
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
         end=cpu_warmup),
    dict(
        type='LinearLR',
        start_factor=1.0,
        end_factor=0.0,
        by_epoch=False,
        begin=cpu_warmup,
        end=cpu_iters),
]
train_cfg = dict(
    _delete_=True,
    type='IterBasedTrainLoop',
    max_iters=cpu_iters,
    val_interval=cpu_iters)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=25),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=cpu_iters))
log_processor = dict(by_epoch=False)
