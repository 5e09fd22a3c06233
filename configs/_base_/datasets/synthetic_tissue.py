# Generated H&E-like tissue (mmimb.datasets.SyntheticTissueDataset): no
# download, no files. Five classes whose frequency and difficulty are set
# independently (common-easy stroma, common-hard tumor, rare-easy
# lymphocytes, rare-hard necrosis, medium fat).
dataset_type = 'SyntheticTissueDataset'
img_size = 256
crop_size = (img_size, img_size)

# The geometric half of the pathology augmentation (pathology_seg.py): the 8
# symmetries of the square. No colour jitter: the generator draws its own
# stain jitter, and colour is what sets a class's difficulty here.
train_pipeline = [
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomFlip', prob=0.5, direction='vertical'),
    dict(type='RandomRotate90', prob=0.75),
    dict(type='PackSegInputs'),
]
test_pipeline = [dict(type='PackSegInputs')]

# The learning rates of the DFA schedules are for this total batch
# (--auto-scale-lr scales them to another one).
auto_scale_lr = dict(enable=False, base_batch_size=8)
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        num_samples=800,
        img_size=img_size,
        seed=0,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        num_samples=64,
        img_size=img_size,
        seed=1,
        pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU', 'mDice'])
test_evaluator = val_evaluator
