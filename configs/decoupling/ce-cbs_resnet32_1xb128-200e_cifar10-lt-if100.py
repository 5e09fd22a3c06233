# Joint training with class-balanced sampling (Kang et al. 2020, "CB"
# representation learning: their feat_balance.yaml, ClassAwareSampler with
# 4 samples per class visit); epochs of n_max x C = 50,000 draws, so 200
# epochs take about 4x the iterations of instance-balanced sampling.
_base_ = ['../ccar/ce_resnet32_1xb128-200e_cifar10-lt-if100.py']
train_dataloader = dict(
    sampler=dict(
        _delete_=True, type='ClassBalancedSampler', num_samples_cls=4))
