# Balanced Softmax under the BALMS protocol (Ren et al. 2020), the setting
# of the CCAR paper's CIFAR-100-LT result (imbalance 50; 50.5 top-1 for
# CCAR with Balanced Softmax): ResNet-32, batch 512, 13k iterations, 800
# warm-up iterations, cosine, AutoAugment + Cutout. BALMS draws its subset
# without a seed; this one is LDAM-DRW's (seed 0).
_base_ = [
    '../_base_/models/cifar_resnet32.py',
    '../_base_/datasets/cifar100_lt_if50.py',
    '../_base_/datasets/cifar_balms_pipeline.py',
    '../_base_/schedules/cifar_lt_balms_13k.py',
    '../_base_/default_runtime_cls.py',
]
model = dict(
    head=dict(
        num_classes=100,
        loss=dict(
            _delete_=True, type='BalancedSoftmaxLoss', class_freq='auto')))
train_dataloader = dict(
    batch_size=512,
    dataset=dict(dataset=dict(pipeline={{_base_.balms_train_pipeline}})))
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=1000,
        max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
