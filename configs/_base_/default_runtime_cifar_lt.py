# The runtime of the long-tailed CIFAR configs: mmimb's classification
# runtime, a log line every 50 iterations, a checkpoint every 10 epochs
# (the last kept) and the best by top-1, and seed 0. The long-tailed
# literature reports the best epoch on the test set (LDAM-DRW's best_acc1;
# CIFAR-LT has no validation split); mmimb's tables report the last
# checkpoint, and save_best keeps the other for comparison.
_base_ = ['./default_runtime_cls.py']

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(
        type='CheckpointHook',
        interval=10,
        max_keep_ckpts=1,
        save_best='lt/top1',
        rule='greater'))
randomness = dict(seed=0)
