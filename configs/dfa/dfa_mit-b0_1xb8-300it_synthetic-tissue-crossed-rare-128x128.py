# The CPU DFA model on the crossed generated tissue with its rare classes at
# 1.5% of the pixels (a harder setting of the DFA evidence, docs/dfa.md).
#   python tools/evidence/dfa_synthetic.py --config \
#   configs/dfa/dfa_mit-b0_1xb8-300it_synthetic-tissue-crossed-rare-128x128.py
_base_ = [
    '../_base_/dfa_cpu.py',
    '../_base_/datasets/synthetic_tissue_crossed_rare.py',
]
model = dict(
    data_preprocessor=dict(size=_base_.crop_size),
    decode_head=dict(num_classes=6))
