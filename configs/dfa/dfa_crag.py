# DFA on CRAG (gland vs background), init scale 0.1 as in the paper.
_base_ = ['../_base_/dfa_sam.py', '../_base_/datasets/crag.py']
model = dict(
    data_preprocessor=dict(size=_base_.crop_size),
    decode_head=dict(num_classes=2, init_scale=0.1))
# The CRAG base config validates on the test split (CRAG has no validation
# split), so keeping the best checkpoint by mDice would pick it on the test
# images: keep none, and test reports the last checkpoint. To select
# checkpoints, convert with --val-count N and point val_dataloader at
# img_dir/val (docs/datasets.md, CRAG).
default_hooks = dict(checkpoint=dict(save_best=None))
