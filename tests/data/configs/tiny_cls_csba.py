# tiny_cls_plain.py with CSBA: the neck and the head are all that change.
_base_ = ['./tiny_cls_plain.py']
model = dict(
    neck=dict(
        _delete_=True, type='CSBANeck', in_channels=64, num_classes=3,
        out_channels=16),
    head=dict(type='ClassWiseLinearClsHead', in_channels=16))
