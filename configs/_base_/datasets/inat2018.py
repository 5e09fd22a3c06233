# iNaturalist 2018 (Van Horn et al., CVPR 2018): 437,513 training images of
# 8,142 species, tested on the 24,426 validation images (3 per class), from
# the release's train2018.json / val2018.json in data/inat2018 (the images
# under data/inat2018/train_val2018/). Label = category_id. The decoupling
# code's iNaturalist augmentation: no colour jitter, the dataset's own mean
# and std (0.466, 0.471, 0.380) / (0.195, 0.194, 0.192).
_base_ = ['./imagenet_lt.py']

data_root = 'data/inat2018'
data_preprocessor = dict(
    num_classes=8142,
    mean=[118.83, 120.105, 96.9],
    std=[49.725, 49.47, 48.96])
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
dataset = dict(type='INat2018Dataset', data_root=data_root, metainfo=None)
train_dataloader = dict(
    dataset=dict(ann_file='train2018.json', pipeline=train_pipeline,
                 **dataset))
val_dataloader = dict(dataset=dict(ann_file='val2018.json', **dataset))
test_dataloader = val_dataloader
