# The calibration run of the crossed generated tissue: the CPU DFA model
# without a bias on the same generator with every class at the same pixel
# frequency (docs/dfa.md, "Calibration"). 3600 iterations, 3x the evidence
# budget of tools/evidence/dfa_synthetic.py.
#   python tools/train.py \
#       configs/dfa/dfa-none_mit-b0_1xb8-3600it_synthetic-tissue-crossed-balanced-128x128.py
_base_ = [
    '../_base_/dfa_cpu.py',
    '../_base_/datasets/synthetic_tissue_crossed_balanced.py',
]
iters = 3600
model = dict(
    data_preprocessor=dict(size=_base_.crop_size),
    decode_head=dict(num_classes=6, bias_mode='none', class_freq=None))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20),
    dict(type='PolyLR', power=1.0, by_epoch=False, begin=20, end=iters,
         eta_min=0.0),
]
train_cfg = dict(max_iters=iters, val_interval=600)
default_hooks = dict(checkpoint=dict(interval=iters))
