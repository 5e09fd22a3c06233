# DFA on BDSA brain tissue (5 classes; private data), init scale 0.1 as in
# the paper.
_base_ = ['../_base_/dfa_sam.py', '../_base_/datasets/bdsa.py']
model = dict(
    data_preprocessor=dict(size=_base_.crop_size),
    decode_head=dict(num_classes=5, init_scale=0.1))
