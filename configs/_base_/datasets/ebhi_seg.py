# EBHI-Seg: background plus one gland class per diagnostic category (7
# classes), as written by tools/dataset_converters/ebhi_seg.py:
#   python tools/dataset_converters/ebhi_seg.py EBHI-SEG -o data/ebhi_seg
# Images are 224x224 and pass whole.
_base_ = ['./pathology_seg.py']
dataset_type = 'EBHISegDataset'
data_root = 'data/ebhi_seg'
crop_size = (224, 224)

auto_scale_lr = dict(base_batch_size=8)
train_dataloader = dict(
    batch_size=8,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        pipeline=_base_.train_pipeline[:2] +
        [dict(type='RandomCrop', crop_size=crop_size)] +
        _base_.train_pipeline[3:]))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
