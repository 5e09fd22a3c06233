# DFA on the CPU in minutes (`make demo`, the evidence runs): SegFormer-B0 +
# narrow DFA head on generated tissue whose class frequency and difficulty
# are crossed (128 px, 6 classes).
#   python tools/train.py \
#       configs/dfa/dfa_mit-b0_1xb8-300it_synthetic-tissue-crossed-128x128.py
_base_ = [
    '../_base_/dfa_cpu.py',
    '../_base_/datasets/synthetic_tissue_crossed.py',
]
model = dict(
    data_preprocessor=dict(size=_base_.crop_size),
    decode_head=dict(num_classes=6))
