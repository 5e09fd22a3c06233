# CCAR (pivot 0.75, base e, dual phase) on ImageNet-LT: 45.62 top-1 in the
# CCAR paper.
_base_ = ['./ce_resnet50_4xb128-90e_imagenet-lt-224.py']
model = dict(
    head=dict(
        loss=dict(
            _delete_=True,
            type='CCARLoss',
            class_freq='auto',
            pivot=0.75,
            base='e',
            dual_phase=True)))
