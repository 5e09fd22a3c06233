# Anchored DFA (our reading): b = prior + delta with delta learned from 0, so
# the frequency prior stays and the model learns a correction.
_base_ = ['../dfa_bcss.py']
model = dict(decode_head=dict(bias_mode='anchored'))
