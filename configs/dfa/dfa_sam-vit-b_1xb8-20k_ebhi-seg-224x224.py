# DFA on EBHI-Seg (background + 6 gland categories, 224 px images; not in the
# paper, init scale 0.5 as for BCSS). The SAM encoder runs at 224 px (its
# position embedding is interpolated to 14x14 tokens).
_base_ = ['../_base_/dfa_sam.py', '../_base_/datasets/ebhi_seg.py']
model = dict(
    data_preprocessor=dict(size=_base_.crop_size),
    decode_head=dict(num_classes=7))
