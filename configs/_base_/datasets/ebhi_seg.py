# EBHI-Seg: background plus one gland class per diagnostic category (7
# classes), as written by tools/dataset_converters/ebhi_seg.py:
#   python tools/dataset_converters/ebhi_seg.py EBHI-SEG -o data/ebhi_seg
# Images are 224x224; the crop keeps them whole.
_base_ = ['./pathology_seg.py']
dataset_type = 'EBHISegDataset'
data_root = 'data/ebhi_seg'
crop_size = (224, 224)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomCrop', crop_size=crop_size),
] + _base_.pathology_augment + [dict(type='PackSegInputs')]

dataset_common = dict(type=dataset_type, data_root=data_root)
train_dataloader = dict(
    batch_size=8, dataset=dict(pipeline=train_pipeline, **dataset_common))
val_dataloader = dict(dataset=dataset_common)
test_dataloader = dict(dataset=dataset_common)
