# CRAG, gland vs background, as written by tools/dataset_converters/crag.py:
#   python tools/dataset_converters/crag.py SOURCE -o data/crag
# 173 training and 40 test images (about 1512x1512 at 20x), cropped to
# crop_size (1024, 1024). CRAG publishes no validation split and DFA reports
# on the 40 test images, so validation reads the test split here; to select
# checkpoints on held-out training images, convert with --val-count N and
# point val_dataloader at img_dir/val and ann_dir/val.
_base_ = ['./pathology_seg.py']
dataset_type = 'CRAGDataset'
data_root = 'data/crag'

train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='img_dir/test', seg_map_path='ann_dir/test')))
test_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
