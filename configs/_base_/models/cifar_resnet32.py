# He et al.'s CIFAR ResNet-32 (0.46M parameters with the 10-class head),
# the network of the long-tailed CIFAR benchmarks (LDAM-DRW, logit
# adjustment, CCAR), with mmpretrain's linear head.
# The scope mmengine gives bases read from mmpretrain::, so that the model
# builds in mmpretrain's registries wherever it is built (mmengine.hub's
# get_model builds it in the mmimb scope, where mmseg's CrossEntropyLoss
# would come first).
model = dict(
    _scope_='mmpretrain',
    type='ImageClassifier',
    backbone=dict(type='CifarResNet', depth=32, shortcut='A'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=64,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, )))
