# HCFA: the bias fixed at the difficulty prior 2 log(1 - Dice_c), from the
# per-class Dice of a trained baseline:
#   N=dfa-none_sam-vit-b-frozen_1xb12-35e_bcss-1024x1024
#   python tools/train.py configs/dfa/$N.py
#   python tools/analysis_tools/class_difficulty.py configs/dfa/$N.py \
#       work_dirs/$N/epoch_35.pth --out work_dirs/$N/class_dice.json
_base_ = ['./dfa_sam-vit-b-frozen_1xb12-35e_bcss-1024x1024.py']
model = dict(
    decode_head=dict(
        bias_mode='fixed',
        prior='difficulty',
        class_dice='work_dirs/'
        'dfa-none_sam-vit-b-frozen_1xb12-35e_bcss-1024x1024/class_dice.json',
        # The difficulty prior needs no class frequencies (and so no
        # counting pass over the masks).
        class_freq=None))
