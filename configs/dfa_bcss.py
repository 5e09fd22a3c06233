# DFA on BCSS as its authors train it: the short name of
# dfa/dfa_sam-vit-b-frozen_1xb12-35e_bcss-1024x1024.py (the recipe, its
# comments, and the name that says its batch and schedule; the metafile lists
# that one), kept here for the headline command
#   python tools/train.py configs/dfa_bcss.py
# The recipe lives in the folder because mmengine's mmimb:: lookup needs one:
# mmimb::dfa/dfa_sam-vit-b-frozen_1xb12-35e_bcss-1024x1024.py reaches it,
# mmimb::dfa_bcss.py does not.
_base_ = ['./dfa/dfa_sam-vit-b-frozen_1xb12-35e_bcss-1024x1024.py']
