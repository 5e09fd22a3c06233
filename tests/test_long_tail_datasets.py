"""The long-tailed benchmarks read from their release formats, on small
fixtures written here: CIFAR-LT subsets from the binary release (LDAM-DRW's
selection written out) and from JPEG folders, ImageNet-LT / Places-LT list
files, iNaturalist 2018 JSON; and the exact LDAM counts of CIFAR-100-LT."""
import json
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.datasets import CIFAR10
from mmpretrain.datasets.categories import CIFAR100_CATEGORIES
from mmpretrain.registry import DATASETS

from mmimb.datasets import class_frequencies, long_tailed_counts

ROOT = Path(__file__).resolve().parents[1]
BASES = ROOT / 'configs' / '_base_' / 'datasets'


def base(name):
    return Config.fromfile(str(BASES / name))


def ldam_counts(img_max, cls_num, imb_factor):
    """LDAM-DRW imbalance_cifar.py get_img_num_per_cls, 'exp'."""
    img_num_per_cls = []
    for cls_idx in range(cls_num):
        num = img_max * (imb_factor**(cls_idx / (cls_num - 1.0)))
        img_num_per_cls.append(int(num))
    return img_num_per_cls


@pytest.mark.parametrize('factor,ldam_arg,config', [
    (10, 0.1, 'cifar100_lt_if10.py'),
    (50, 0.02, 'cifar100_lt_if50.py'),
    (100, 0.01, 'cifar100_lt_if100.py'),
    (200, 0.005, 'cifar100_lt_if200.py'),
])
def test_cifar100_lt_counts_are_ldams(factor, ldam_arg, config):
    """LDAM-DRW is run with --imb_factor 0.01 etc.: the same doubles."""
    assert long_tailed_counts(500, factor, 100) == ldam_counts(
        50000 / 100, 100, ldam_arg)
    cfg = base(config)
    assert cfg.train_dataloader.dataset.imbalance_factor == factor
    assert cfg.train_dataloader.dataset.seed == 0
    assert cfg.data_preprocessor.num_classes == 100


def test_cifar100_folder_order_is_the_release_order():
    cfg = base('cifar100_jpg.py')
    classes = cfg.train_dataloader.dataset.metainfo.classes
    # CustomDataset numbers sorted folders; the release's names are sorted.
    assert tuple(classes) == tuple(sorted(classes)) == CIFAR100_CATEGORIES
    assert cfg.val_dataloader.dataset.data_root == 'data/cifar100'


def write_cifar_binary(root, folder, per_class, num_classes, label_key):
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(num_classes), per_class)
    rng.shuffle(labels)
    data = rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8)
    out = root / folder
    out.mkdir(parents=True)
    names = (['train'], ['test']) if num_classes == 100 else (
        [f'data_batch_{i}' for i in range(1, 6)], ['test_batch'])
    for files, (d, y) in zip(names, ((data, labels), (data[:50],
                                                      labels[:50]))):
        for i, name in enumerate(files):
            part = slice(i, None, len(files))
            with open(out / name, 'wb') as f:
                pickle.dump({'data': d[part], label_key: y[part].tolist()},
                            f)
    return data, labels


def ldam_selection(data, targets, img_num_per_cls, seed=0):
    """LDAM-DRW IMBALANCECIFAR10.gen_imbalanced_data on arrays."""
    np.random.seed(seed)
    new_data = []
    targets_np = np.array(targets, dtype=np.int64)
    classes = np.unique(targets_np)
    for the_class, the_img_num in zip(classes, img_num_per_cls):
        idx = np.where(targets_np == the_class)[0]
        np.random.shuffle(idx)
        new_data.append(data[idx[:the_img_num], ...])
    return np.vstack(new_data)


@pytest.mark.parametrize('config,num_classes,folder,label_key', [
    ('cifar10_lt_if100_bin.py', 10, 'cifar-10-batches-py', 'labels'),
    ('cifar100_lt_if100_bin.py', 100, 'cifar-100-python', 'fine_labels'),
])
def test_binary_release_subset_is_ldams(config, num_classes, folder,
                                        label_key, tmp_path, monkeypatch):
    # The fixture cannot have the release's checksums.
    monkeypatch.setattr(CIFAR10, '_check_integrity', lambda self: True)
    per_class = 10
    data, labels = write_cifar_binary(tmp_path, folder, per_class,
                                      num_classes, label_key)
    cfg = base(config)
    lt = cfg.train_dataloader.dataset
    assert lt.imbalance_factor == 100 and lt.seed == 0
    lt.imbalance_factor = 2
    lt.dataset.data_root = str(tmp_path)
    init_default_scope('mmpretrain')
    subset = DATASETS.build(lt)
    # mmpretrain reads the batches in the release's order, as torchvision
    # does for LDAM-DRW.
    order = np.concatenate([
        np.arange(len(labels))[i::5] for i in range(5)
    ]) if num_classes == 10 else np.arange(len(labels))
    counts = ldam_counts(per_class, num_classes, 1 / 2)
    expected = ldam_selection(data[order], labels[order], counts)
    got = np.stack([
        subset.get_data_info(i)['img'].transpose(2, 0, 1).reshape(-1)
        for i in range(len(subset))
    ])
    np.testing.assert_array_equal(got, expected)
    stats = class_frequencies(lt, default_scope='mmpretrain')
    assert stats.counts.tolist() == counts


def write_images(root, paths, size=40):
    rng = np.random.default_rng(0)
    for path in paths:
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(target), rng.integers(0, 255, (size, size, 3),
                                              dtype=np.uint8))


@pytest.mark.parametrize('config,lists,prefix', [
    ('imagenet_lt.py', 'ImageNet_LT', 'n0144076{}/n0144076{}_{}.JPEG'),
    ('places_lt.py', 'Places_LT', 'class{}/0000{}{}.jpg'),
])
def test_oltr_list_files(config, lists, prefix, tmp_path):
    # The layout of the OLTR lists: train/<wnid or class>/<file> <label>,
    # test images from the source's validation set in class folders.
    counts = [4, 2, 1]
    lines = {'train': [], 'val': [], 'test': []}
    for label, count in enumerate(counts):
        for i in range(count):
            lines['train'].append(
                f'train/{prefix.format(label, label, i)} {label}')
        lines['val'].append(f'train/{prefix.format(label, label, 9)} {label}')
        lines['test'].append(f'val/{prefix.format(label, label, 8)} {label}')
    for split, split_lines in lines.items():
        (tmp_path / f'{lists}_{split}.txt').write_text(
            '\n'.join(split_lines) + '\n\n')
        write_images(tmp_path, [line.rsplit(' ', 1)[0]
                                for line in split_lines])
    cfg = base(config)
    assert cfg.train_dataloader.dataset.ann_file == f'{lists}_train.txt'
    assert cfg.test_dataloader.dataset.ann_file == f'{lists}_test.txt'
    init_default_scope('mmpretrain')
    for key in ('train_dataloader', 'test_dataloader'):
        cfg[key].dataset.data_root = str(tmp_path)
    train = DATASETS.build(cfg.train_dataloader.dataset)
    assert train.get_gt_labels().tolist() == [0, 0, 0, 0, 1, 1, 2]
    assert train.get_data_info(4)['img_path'] == str(
        tmp_path / 'train' / prefix.format(1, 1, 0))
    sample = train[0]  # through the training pipeline
    assert tuple(sample['inputs'].shape) == (3, 224, 224)
    test = DATASETS.build(cfg.test_dataloader.dataset)
    assert len(test) == 3 and tuple(test[2]['inputs'].shape) == (3, 224, 224)
    stats = class_frequencies(cfg.train_dataloader.dataset,
                              default_scope='mmpretrain')
    assert stats.counts.tolist()[:3] == counts
    if lists == 'Places_LT':  # class names from the folders
        assert train.metainfo['classes'] == ('class0', 'class1', 'class2')


def test_list_file_errors_name_the_line(tmp_path):
    init_default_scope('mmpretrain')
    bad = tmp_path / 'bad.txt'
    bad.write_text('train/a/1.jpg 0\ntrain/a/2.jpg\n')
    with pytest.raises(ValueError, match=r'bad.txt, line 2: expected'):
        DATASETS.build(dict(type='ImageListDataset', ann_file=str(bad)))
    bad.write_text('train/a/1.jpg 3\n')
    with pytest.raises(ValueError, match='label 3 but .* 2 classes'):
        DATASETS.build(dict(type='ImageListDataset', ann_file=str(bad),
                            metainfo=dict(classes=['a', 'b'])))


def inat_json(images, labels, categories=3):
    return dict(
        images=[dict(id=100 + i, file_name=f) for i, f in enumerate(images)],
        annotations=[dict(id=100 + i, image_id=100 + i, category_id=y)
                     for i, y in enumerate(labels)],
        categories=[dict(id=c, name=f'species{c}', supercategory='Plantae')
                    for c in range(categories)])


def test_inaturalist_2018_json(tmp_path):
    train = [f'train_val2018/Plantae/{y}/{i}.jpg'
             for i, y in enumerate([0, 0, 0, 1, 2])]
    val = [f'train_val2018/Plantae/{y}/v{y}.jpg' for y in range(3)]
    (tmp_path / 'train2018.json').write_text(
        json.dumps(inat_json(train, [0, 0, 0, 1, 2])))
    (tmp_path / 'val2018.json').write_text(json.dumps(inat_json(val,
                                                                [0, 1, 2])))
    write_images(tmp_path, train + val)
    cfg = base('inat2018.py')
    assert cfg.test_dataloader.dataset.ann_file == 'val2018.json'
    assert cfg.data_preprocessor.num_classes == 8142
    for key in ('train_dataloader', 'test_dataloader'):
        cfg[key].dataset.data_root = str(tmp_path)
    init_default_scope('mmpretrain')
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    assert dataset.get_gt_labels().tolist() == [0, 0, 0, 1, 2]
    assert dataset.metainfo['classes'] == ('species0', 'species1',
                                           'species2')
    assert dataset.get_data_info(3)['img_path'] == str(tmp_path / train[3])
    assert tuple(dataset[3]['inputs'].shape) == (3, 224, 224)
    assert DATASETS.build(cfg.test_dataloader.dataset).get_gt_labels(
    ).tolist() == [0, 1, 2]


@pytest.mark.parametrize('change,match', [
    (lambda d: d['categories'].pop(0),
     r'category ids must be 0 \.\. 0 .* \[1\]'),
    (lambda d: d['annotations'].pop(0), 'image 100 .* has no annotation'),
    (lambda d: d['annotations'].append(
        dict(id=7, image_id=100, category_id=1)), 'several annotations'),
    (lambda d: d['annotations'][0].update(category_id=9),
     'category_id 9, not a category'),
    (lambda d: d.pop('images'), r"no \['images'\]"),
])
def test_inaturalist_errors_name_the_entry(change, match, tmp_path):
    data = inat_json(['a.jpg', 'b.jpg'], [0, 1], categories=2)
    change(data)
    path = tmp_path / 'train2018.json'
    path.write_text(json.dumps(data))
    init_default_scope('mmpretrain')
    with pytest.raises(ValueError, match=match):
        DATASETS.build(dict(type='INat2018Dataset', ann_file=str(path)))
