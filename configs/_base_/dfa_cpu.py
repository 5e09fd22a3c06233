# The DFA recipe at CPU scale, without a dataset: the SegFormer-B0 + DFA head
# model (models/dfa_mit-b0.py), the few-minute CPU schedule, the bias in its
# own parameter group (x20 learning rate, no weight decay) and logged per
# class. Dataset configs add a dataset base, the class count and input size.
_base_ = [
    './models/dfa_mit-b0.py',
    './schedules/schedule_cpu_demo.py',
    './dfa_runtime.py',
]
optim_wrapper = dict(paramwise_cfg=_base_.dfa_paramwise_cfg)
