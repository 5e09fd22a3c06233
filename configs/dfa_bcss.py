# DFA on BCSS, the paper's setting: SAM ViT-B encoder, DFA head with 2
# layers, learned bias from the focal prior (gamma 2, init scale 0.5), delta
# learning rate x20 without weight decay, focal + Dice loss, 1024 px crops.
#   python tools/train.py configs/dfa_bcss.py
# needs data/bcss (tools/dataset_converters/bcss.py) and the converted SAM
# checkpoint (configs/_base_/models/dfa_sam_vit-b.py).
_base_ = ['_base_/dfa_sam.py', '_base_/datasets/bcss.py']
# The model base already has BCSS's 5 classes and init scale 0.5.
model = dict(data_preprocessor=dict(size=_base_.crop_size))
