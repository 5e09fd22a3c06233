# DFA on BCSS with the whole SAM ViT-B encoder fine-tuned (mmimb's earlier
# setting; the authors freeze it, configs/dfa_bcss.py): DFA head with one
# token per class and 2 layers, learned bias from the focal prior (gamma 2,
# init scale 0.5), delta lr x20 without weight decay, focal + Dice loss,
# 1024 px crops, batch 2, 20k iterations.
_base_ = ['../_base_/dfa_sam.py', '../_base_/datasets/bcss.py']
model = dict(data_preprocessor=dict(size=_base_.crop_size))
