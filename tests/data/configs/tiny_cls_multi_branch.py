# tiny_cls_plain.py with the class-shared multi-branch baseline of CSBA.
_base_ = ['./tiny_cls_plain.py']
model = dict(
    neck=dict(
        _delete_=True, type='MultiBranchNeck', in_channels=64,
        out_channels=16),
    head=dict(in_channels=16))
