# DFA at CPU scale on EBHI-Seg (background + 6 gland categories, 224 px):
# the real-data half of the evidence runs.
#   python tools/dataset_converters/ebhi_seg.py EBHI-SEG -o data/ebhi_seg
#   python tools/train.py configs/dfa/dfa_mit-b0_1xb8-300it_ebhi-seg-224x224.py
_base_ = ['../_base_/dfa_cpu.py', '../_base_/datasets/ebhi_seg.py']
model = dict(
    data_preprocessor=dict(size=_base_.crop_size),
    decode_head=dict(num_classes=7))
