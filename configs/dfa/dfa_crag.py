# DFA on CRAG (gland vs background), init scale 0.1 as in the paper.
_base_ = ['../_base_/dfa_sam.py', '../_base_/datasets/crag.py']
model = dict(
    data_preprocessor=dict(size=_base_.crop_size),
    decode_head=dict(num_classes=2, init_scale=0.1))
