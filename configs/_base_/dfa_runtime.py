# What every DFA recipe adds to the segmentation runtime: the learned bias
# logged per class every logging interval, and a fixed seed. (The bias's
# parameter group, dfa_paramwise_cfg of the model base, goes into each
# recipe's optim_wrapper: the schedule base owns optim_wrapper, and mmengine
# refuses a key set by two sibling bases.)
_base_ = ['./default_runtime_seg.py']
custom_hooks = [dict(type='DFABiasLoggerHook')]
randomness = dict(seed=0)
