# configs/dfa_bcss.py with the DFA reference code's bias placement: bias entry
# c acts on the token of class c - 1 (class 0's entry on the ignored class's
# token), as at commit aba5b00c (docs/dfa.md, "Defects of the reference
# code"). Only for comparing numbers with the paper.
_base_ = ['./dfa_sam-vit-b-frozen_1xb12-35e_bcss-1024x1024.py']
model = dict(decode_head=dict(reference_bias_offset=True))
