# CFFA: the bias fixed at the focal frequency prior 2 log(1 - f_c).
_base_ = ['../dfa_bcss.py']
model = dict(decode_head=dict(bias_mode='fixed'))
