# BCSS, 5 tissue groups (tumor, stroma, inflammatory, necrosis, other; 255 =
# don't care), as tiles written by tools/dataset_converters/bcss.py:
#   python tools/dataset_converters/bcss.py SOURCE -o data/bcss
# 1024 px tiles at 0.25 um/px, crop_size (1024, 1024) and test institutions
# OL, LL, E2, EW, GM, S3: the DFA setting. For 512 px inputs convert with
# --tile-size 512 and change the crop as pathology_seg.py shows.
_base_ = ['./pathology_seg.py']
dataset_type = 'BCSSDataset'
data_root = 'data/bcss'

train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
