# `make demo`: a short real training run of DFA on generated tissue images
# (SegFormer-B0 + DFA head on the CPU in minutes; the learned bias per class
# appears in the log as dfa_bias/<class>). A short name for `make demo` and
# the README; mmimb:: reaches the config itself, not this top-level file.
_base_ = ['./dfa/dfa_mit-b0_1xb8-300it_synthetic-tissue-crossed-128x128.py']
