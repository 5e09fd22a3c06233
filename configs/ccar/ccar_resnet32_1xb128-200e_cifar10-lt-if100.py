# CCAR (arXiv 2601.15924): cross-entropy weighted by
# Omega = (e - f') ** (0.75 - p_t), dual phase.
_base_ = ['./ce_resnet32_1xb128-200e_cifar10-lt-if100.py']
model = dict(
    head=dict(
        loss=dict(
            _delete_=True,
            type='CCARLoss',
            class_freq='auto',
            pivot=0.75,
            base='e',
            dual_phase=True)))
