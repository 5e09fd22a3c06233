# BCSS, 5 tissue groups (tumor, stroma, inflammatory, necrosis, other; 255 =
# don't care), as tiles written by tools/dataset_converters/bcss.py:
#   python tools/dataset_converters/bcss.py SOURCE -o data/bcss
# 1024 px tiles at 0.25 um/px and test institutions OL, LL, E2, EW, GM, S3,
# the DFA setting. For 512 px inputs convert with --tile-size 512 and set
# crop_size = (512, 512) and the train_pipeline below in the variant.
_base_ = ['./pathology_seg.py']
dataset_type = 'BCSSDataset'
data_root = 'data/bcss'
crop_size = (1024, 1024)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomCrop', crop_size=crop_size),
] + _base_.pathology_augment + [dict(type='PackSegInputs')]

dataset_common = dict(type=dataset_type, data_root=data_root)
train_dataloader = dict(dataset=dict(pipeline=train_pipeline, **dataset_common))
val_dataloader = dict(dataset=dataset_common)
test_dataloader = dict(dataset=dataset_common)
