# Joint training with square-root sampling (q = 1/2; Kang et al. 2020,
# feat_squareroot.yaml), epochs of the dataset's size.
_base_ = ['../ccar/ce_resnet32_1xb128-200e_cifar10-lt-if100.py']
train_dataloader = dict(
    sampler=dict(_delete_=True, type='SquareRootSampler', power=0.5))
