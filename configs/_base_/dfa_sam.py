# The DFA recipe without a dataset: SAM ViT-B encoder + DFA head
# (models/dfa_sam_vit-b.py), 20k iterations of AdamW with the bias in its own
# parameter group (x20 learning rate, no weight decay), the bias logged per
# class every logging interval. Dataset configs add a dataset base, the class
# count and the input size.
_base_ = [
    './models/dfa_sam_vit-b.py',
    './schedules/schedule_dfa_20k.py',
    './dfa_runtime.py',
]
optim_wrapper = dict(paramwise_cfg=_base_.dfa_paramwise_cfg)
