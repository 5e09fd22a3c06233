# BDSA brain tissue (private data of the DFA paper): background, grey matter,
# white matter, leptomeninges, superficial cortex. Expects data_root with
# img_dir/{train,val,test}/*.png and ann_dir/{train,val,test}/*.png whose
# label images hold the published codes (0, 31, 63, 95, 127; 191 = exclude):
# BDSADataset maps them to classes 0-4 and 255 while loading (see
# docs/datasets.md). Labels that already hold 0-4 need label_codes=None.
_base_ = ['./pathology_seg.py']
dataset_type = 'BDSADataset'
data_root = 'data/bdsa'
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
