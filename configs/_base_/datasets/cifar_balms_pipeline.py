# The training augmentation of BALMS (Ren et al., NeurIPS 2020; their
# data/ImbalanceCIFAR.py) for long-tailed CIFAR: random crop 32 with padding
# 4, horizontal flip, AutoAugment with the CIFAR-10 policy (DeepVoltaire's,
# which BALMS copies: mmimb's CIFAR10AutoAugment), Cutout of one 16 x 16
# hole of pixel value 0 (BALMS cuts out before normalising). Our reading:
# mmcv's Cutout keeps the hole inside the image where DeVries and Taylor's
# (BALMS's) clips it at the border.
balms_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomCrop', crop_size=32, padding=4),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='CIFAR10AutoAugment'),
    dict(type='Cutout', shape=16, pad_val=0, prob=1.0),
    dict(type='PackInputs'),
]
