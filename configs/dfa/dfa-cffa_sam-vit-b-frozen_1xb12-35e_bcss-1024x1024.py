# CFFA: the bias fixed at the focal frequency prior 2 log(1 - f_c).
_base_ = ['./dfa_sam-vit-b-frozen_1xb12-35e_bcss-1024x1024.py']
model = dict(decode_head=dict(bias_mode='fixed'))
