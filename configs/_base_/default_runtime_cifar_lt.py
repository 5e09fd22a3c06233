# The runtime of the long-tailed CIFAR configs: mmimb's classification
# runtime, a log line every 50 iterations, a checkpoint every 10 epochs
# (the last kept) and the best by top-1 (default_runtime_cls.py), and seed 0.
_base_ = ['./default_runtime_cls.py']

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=1))
randomness = dict(seed=0)
