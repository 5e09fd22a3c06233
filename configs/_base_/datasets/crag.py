# CRAG, gland vs background, as written by tools/dataset_converters/crag.py:
#   python tools/dataset_converters/crag.py SOURCE -o data/crag
# 173 training and 40 test images (about 1512x1512 at 20x). CRAG publishes no
# validation split and DFA reports on the 40 test images, so validation reads
# the test split here; to select checkpoints on held-out training images,
# convert with --val-count N and point val_dataloader at img_dir/val.
_base_ = ['./pathology_seg.py']
dataset_type = 'CRAGDataset'
data_root = 'data/crag'
crop_size = (1024, 1024)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomCrop', crop_size=crop_size),
] + _base_.pathology_augment + [dict(type='PackSegInputs')]

dataset_common = dict(type=dataset_type, data_root=data_root)
train_dataloader = dict(dataset=dict(pipeline=train_pipeline, **dataset_common))
val_dataloader = dict(
    dataset=dict(
        data_prefix=dict(img_path='img_dir/test', seg_map_path='ann_dir/test'),
        **dataset_common))
test_dataloader = dict(dataset=dataset_common)
