# DFA with the SAM ViT-B encoder on generated tissue (256 px, 5 classes whose
# frequency and difficulty are set apart; no download). A GPU run; the CPU
# version is dfa_mit-b0_1xb8-300it_synthetic-tissue-crossed-128x128.py.
_base_ = ['../_base_/dfa_sam.py', '../_base_/datasets/synthetic_tissue.py']
model = dict(
    data_preprocessor=dict(size=_base_.crop_size),
    decode_head=dict(num_classes=5))
