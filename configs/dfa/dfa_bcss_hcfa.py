# HCFA: the bias fixed at the difficulty prior 2 log(1 - Dice_c), from the
# per-class Dice of a trained baseline:
#   python tools/train.py configs/dfa/dfa_bcss_none.py
#   python tools/analysis_tools/class_difficulty.py \
#       configs/dfa/dfa_bcss_none.py work_dirs/dfa_bcss_none/epoch_35.pth \
#       --out work_dirs/dfa_bcss_none/class_dice.json
_base_ = ['../dfa_bcss.py']
model = dict(
    decode_head=dict(
        bias_mode='fixed',
        prior='difficulty',
        class_dice='work_dirs/dfa_bcss_none/class_dice.json',
        # The difficulty prior needs no class frequencies (and so no
        # counting pass over the masks).
        class_freq=None))
