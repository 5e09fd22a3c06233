# DFA on the CPU in minutes (`make demo`, the evidence runs): SegFormer-B0 +
# narrow DFA head on generated tissue whose class frequency and difficulty
# are crossed (128 px, 6 classes).
#   python tools/train.py configs/dfa/dfa_tiny_synthetic.py
_base_ = [
    '../_base_/dfa_cpu.py',
    '../_base_/datasets/synthetic_tissue_crossed.py',
]
model = dict(
    data_preprocessor=dict(size=_base_.crop_size),
    decode_head=dict(num_classes=6))
