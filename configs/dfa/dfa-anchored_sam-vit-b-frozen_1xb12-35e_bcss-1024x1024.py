# Anchored DFA (our reading): b = prior + delta with delta learned from 0, so
# the frequency prior stays and the model learns a correction.
_base_ = ['./dfa_sam-vit-b-frozen_1xb12-35e_bcss-1024x1024.py']
model = dict(decode_head=dict(bias_mode='anchored'))
