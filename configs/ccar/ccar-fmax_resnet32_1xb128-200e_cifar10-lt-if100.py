# CCAR with its class term normalised by the largest class frequency,
# f'_c = n_c / n_max (freq_norm='max', our reading, not the paper's: with
# frequencies summing to 1 the class term is nearly inert, docs/ccar.md).
_base_ = ['./ccar_resnet32_1xb128-200e_cifar10-lt-if100.py']
model = dict(head=dict(loss=dict(freq_norm='max')))
