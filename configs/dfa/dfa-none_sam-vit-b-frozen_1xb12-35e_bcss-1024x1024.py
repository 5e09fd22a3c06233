# Baseline of the DFA ablation: the same model without the class bias.
_base_ = ['./dfa_sam-vit-b-frozen_1xb12-35e_bcss-1024x1024.py']
# No bias, so no class frequencies (and no counting pass over the masks).
model = dict(decode_head=dict(bias_mode='none', class_freq=None))
