# BDSA brain tissue (private data of the DFA paper): background, grey matter,
# white matter, leptomeninges, superficial cortex. Expects data_root with
# img_dir/{train,val,test}/*.png and ann_dir/{train,val,test}/*.png whose
# label images hold the published codes (0, 31, 63, 95, 127; 191 = exclude):
# BDSADataset maps them to classes 0-4 and 255 while loading (see
# docs/datasets.md). Labels that already hold 0-4 need label_codes=None.
# LoadCodedAnnotations refuses any other grey value, naming the file (mmseg's
# LoadAnnotations would pass it through to the loss).
# Cropped to crop_size (1024, 1024).
_base_ = ['./pathology_seg.py']
dataset_type = 'BDSADataset'
data_root = 'data/bdsa'
load_labels = [dict(type='LoadCodedAnnotations')]
train_pipeline = (_base_.train_pipeline[:1] + load_labels +
                  _base_.train_pipeline[2:])
test_pipeline = (_base_.test_pipeline[:1] + load_labels +
                 _base_.test_pipeline[2:])

train_dataloader = dict(
    dataset=dict(
        type=dataset_type, data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type, data_root=data_root, pipeline=test_pipeline))
test_dataloader = dict(
    dataset=dict(
        type=dataset_type, data_root=data_root, pipeline=test_pipeline))
