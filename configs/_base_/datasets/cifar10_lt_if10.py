# CIFAR-10-LT, imbalance factor 10 (5000 down to 500 training images;
# 20,431 in all). With the thresholds of the IF100 base no class is
# few-shot here (few_shot_acc is NaN).
_base_ = ['./cifar10_lt_if100.py']

train_dataloader = dict(dataset=dict(imbalance_factor=10))
