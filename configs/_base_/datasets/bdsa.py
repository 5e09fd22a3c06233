# BDSA brain tissue (private data of the DFA paper): background, grey matter,
# white matter, leptomeninges, superficial cortex. Expects data_root with
# img_dir/{train,val,test}/*.png and ann_dir/{train,val,test}/*.png whose
# label images hold the published codes (0, 31, 63, 95, 127; 191 = exclude):
# BDSADataset maps them to classes 0-4 and 255 while loading (see
# docs/datasets.md). Labels that already hold 0-4 need label_codes=None.
# Cropped to crop_size (1024, 1024).
_base_ = ['./pathology_seg.py']
dataset_type = 'BDSADataset'
data_root = 'data/bdsa'

train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
