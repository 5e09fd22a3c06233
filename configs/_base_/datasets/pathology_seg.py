# What the histopathology datasets (bcss, crag, bdsa, ebhi_seg) share: the
# folder layout the converters in tools/dataset_converters write
# (OUT/img_dir/{train,val,test}, OUT/ann_dir/{train,val,test}), label-
# preserving augmentation and an evaluator reporting mIoU, mDice and the
# per-class IoU and Dice. Images are never rescaled: tiles keep the
# magnification they were converted at.
#
# Tiles are cropped to crop_size (the DFA setting, 1024 px at 0.25 um/px);
# a smaller image passes whole (RandomCrop never pads). A variant with
# another crop sets crop_size and replaces the crop step:
#   crop_size = (512, 512)
#   train_dataloader = dict(dataset=dict(pipeline=_base_.train_pipeline[:2]
#       + [dict(type='RandomCrop', crop_size=crop_size)]
#       + _base_.train_pipeline[3:]))
#
# Tissue has no orientation: flips and exact quarter turns draw uniformly from
# the 8 symmetries of the square. The colour jitter is milder than mmseg's
# defaults (hue 18, contrast/saturation 0.5-1.5), which move H&E outside the
# range of real stain variation (our choice).
pathology_augment = [
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomFlip', prob=0.5, direction='vertical'),
    dict(type='RandomRotate90', prob=0.75),
    dict(
        type='PhotoMetricDistortion',
        brightness_delta=16,
        contrast_range=(0.8, 1.2),
        saturation_range=(0.8, 1.2),
        hue_delta=8),
]
crop_size = (1024, 1024)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomCrop', crop_size=crop_size),
] + pathology_augment + [dict(type='PackSegInputs')]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]

# The learning rates of the DFA schedules are for this total batch
# (--auto-scale-lr scales them to another one).
auto_scale_lr = dict(enable=False, base_batch_size=2)
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        data_prefix=dict(
            img_path='img_dir/train', seg_map_path='ann_dir/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
        pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        data_prefix=dict(img_path='img_dir/test', seg_map_path='ann_dir/test'),
        pipeline=test_pipeline))

val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU', 'mDice'])
test_evaluator = val_evaluator
