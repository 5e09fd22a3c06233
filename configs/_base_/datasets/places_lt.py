# Places-LT (Liu et al., CVPR 2019): 62,500 training images of the 365
# Places365 classes (4980 down to 5 per class), 7,300 validation images (20
# per class, from the Places365 training set) and 36,500 test images (100
# per class, the Places365 validation set), from the OLTR list files
# Places_LT_{train,val,test}.txt placed in data/places365, with paths
# relative to it (train/airfield/..., val/airfield/...: the validation
# images in per-class folders). Augmentation as imagenet_lt.py (the
# decoupling code uses the same for both).
_base_ = ['./imagenet_lt.py']

data_root = 'data/places365'
data_preprocessor = dict(num_classes=365)
train_dataloader = dict(
    dataset=dict(
        data_root=data_root, ann_file='Places_LT_train.txt', metainfo=None))
val_dataloader = dict(
    dataset=dict(
        data_root=data_root, ann_file='Places_LT_val.txt', metainfo=None))
test_dataloader = dict(
    dataset=dict(
        data_root=data_root, ann_file='Places_LT_test.txt', metainfo=None))
