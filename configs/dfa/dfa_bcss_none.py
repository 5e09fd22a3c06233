# Baseline of the DFA ablation: the same model without the class bias.
_base_ = ['../dfa_bcss.py']
model = dict(decode_head=dict(bias_mode='none'))
