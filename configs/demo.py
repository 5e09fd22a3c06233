# `make demo`: a short real training run of DFA on generated tissue images
# (SegFormer-B0 + DFA head on the CPU in minutes; the learned bias per class
# appears in the log as dfa_bias/<class>).
_base_ = ['./dfa/dfa_tiny_synthetic.py']
