# Baseline of the DFA ablation: the same model without the class bias.
_base_ = ['../dfa_bcss.py']
# No bias, so no class frequencies (and no counting pass over the masks).
model = dict(decode_head=dict(bias_mode='none', class_freq=None))
