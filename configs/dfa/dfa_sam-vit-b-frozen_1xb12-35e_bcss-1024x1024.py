# DFA on BCSS as its authors train it (DFA reference code, configs/BCSS_DFA.py;
# docs/dfa.md, "The authors' recipe"): SAM ViT-B encoder frozen, SAM-Path's
# mask decoder with 2 two-way blocks and the learned bias from the focal prior
# (gamma 2, init scale 0.5), focal 0.25 + Dice 0.75 + IoU MSE 0.0625, the bias
# at lr x20 held constant with its gradient clipped to 0.5, AdamW for 35
# epochs with batch 12 and gradient accumulation 2, 1024 px crops.
#   python tools/train.py configs/dfa_bcss.py
# (configs/dfa_bcss.py is this config under a short name) needs data/bcss
# (tools/dataset_converters/bcss.py) and the converted SAM checkpoint
# (configs/_base_/models/dfa_sam_vit-b.py). The earlier setting, the whole
# encoder fine-tuned, is dfa_sam-vit-b_1xb2-20k_bcss-1024x1024.py.
_base_ = ['../_base_/dfa_sampath.py', '../_base_/datasets/bcss.py']
# The model base already has BCSS's 5 classes and init scale 0.5.
model = dict(data_preprocessor=dict(size=_base_.crop_size))
train_dataloader = _base_.sampath_train_loader
auto_scale_lr = _base_.sampath_auto_scale_lr
