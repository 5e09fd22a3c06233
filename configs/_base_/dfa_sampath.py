# The DFA authors' recipe without a dataset (DFA reference code at commit
# aba5b00c, built on SAM-Path; docs/dfa.md, "The authors' recipe"): frozen SAM
# ViT-B encoder, SAM-Path's decoder layout and loss, the bias in its own
# parameter group, 35 epochs of AdamW with batch 12 and gradient accumulation
# 2, the bias logged per class. Dataset configs add a dataset base, the class
# count, the input size, `train_dataloader = _base_.sampath_train_loader`
# and `auto_scale_lr = _base_.sampath_auto_scale_lr`.
_base_ = [
    './models/dfa_sampath_vit-b.py',
    './schedules/schedule_dfa_sampath_35e.py',
    './dfa_runtime.py',
]
optim_wrapper = dict(
    constructor='GroupStepOptimWrapperConstructor',
    paramwise_cfg=_base_.dfa_paramwise_cfg)
# Batch 12, every image once per epoch. (The dataset base owns
# train_dataloader and auto_scale_lr; mmengine refuses a key set by two
# sibling bases.)
sampath_batch_size = 12
sampath_train_loader = dict(
    batch_size=sampath_batch_size,
    sampler=dict(type='DefaultSampler', shuffle=True))
# The learning rate is for 1 GPU x batch 12. --auto-scale-lr scales it by
# GPUs x batch_size / base_batch_size: mmengine leaves the accumulation out
# of both, and the optimizer step stays 2 batches on any number of GPUs.
sampath_auto_scale_lr = dict(base_batch_size=sampath_batch_size)
