"""The histopathology dataset classes, their base configs and RandomRotate90."""
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, TRANSFORMS

import mmimb  # noqa: F401
from mmimb.datasets.bcss import BCSS_CODES, DEFAULT_GROUPING

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / 'configs' / '_base_' / 'datasets'


@pytest.fixture(autouse=True)
def mmseg_scope():
    init_default_scope('mmseg')


def rotate_ccw_naive(a: np.ndarray, k: int) -> np.ndarray:
    """Quarter turns counter-clockwise, by index arithmetic."""
    for _ in range(k):
        h, w = a.shape[:2]
        out = np.empty((w, h) + a.shape[2:], a.dtype)
        for i in range(w):
            for j in range(h):
                out[i, j] = a[j, w - 1 - i]
        a = out
    return a


@pytest.mark.parametrize('k', [1, 2, 3])
def test_random_rotate90_is_pixel_exact_on_image_and_mask(k, monkeypatch):
    rng = np.random.default_rng(k)
    img = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    seg = rng.integers(0, 5, (5, 7), dtype=np.uint8)
    transform = TRANSFORMS.build(dict(type='RandomRotate90', prob=1.0))
    monkeypatch.setattr(np.random, 'randint', lambda low, high: k)
    out = transform(
        dict(img=img.copy(), gt_seg_map=seg.copy(), img_shape=(5, 7),
             seg_fields=['gt_seg_map']))
    assert out['rotate90_k'] == k
    np.testing.assert_array_equal(out['img'], rotate_ccw_naive(img, k))
    np.testing.assert_array_equal(out['gt_seg_map'], rotate_ccw_naive(seg, k))
    assert out['img_shape'] == out['img'].shape[:2] == (
        (7, 5) if k % 2 else (5, 7))
    assert out['img'].flags['C_CONTIGUOUS']


def test_random_rotate90_draws_all_orientations_and_respects_prob():
    transform = TRANSFORMS.build(dict(type='RandomRotate90'))
    np.random.seed(0)
    img = np.zeros((2, 2, 3), np.uint8)
    ks = [transform(dict(img=img, seg_fields=[]))['rotate90_k']
          for _ in range(400)]
    counts = np.bincount(ks, minlength=4)
    assert (counts > 60).all(), counts
    never = TRANSFORMS.build(dict(type='RandomRotate90', prob=0.0))
    assert all(never(dict(img=img, seg_fields=[]))['rotate90_k'] == 0
               for _ in range(50))
    with pytest.raises(ValueError, match='prob=1.5'):
        TRANSFORMS.build(dict(type='RandomRotate90', prob=1.5))


def _write_pair(root: Path, split: str, name: str, label: np.ndarray):
    for sub, arr in (('img_dir', np.zeros(label.shape + (3, ), np.uint8)),
                     ('ann_dir', label)):
        folder = root / sub / split
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f'{name}.png'), arr)


def _load_labels(ds) -> list:
    return [ds[i]['gt_seg_map'] for i in range(len(ds))]


@pytest.mark.parametrize('metainfo, expected', [
    (None, [[0, 1, 2], [3, 4, 255]]),
    (dict(classes=('white_matter', 'grey_matter')),
     [[255, 1, 0], [255, 255, 255]]),
])
def test_bdsa_maps_published_codes(tmp_path, metainfo, expected):
    _write_pair(tmp_path, 'train', 'a',
                np.array([[0, 31, 63], [95, 127, 191]], np.uint8))
    ds = DATASETS.build(
        dict(type='BDSADataset', data_root=str(tmp_path),
             data_prefix=dict(img_path='img_dir/train',
                              seg_map_path='ann_dir/train'),
             metainfo=metainfo,
             pipeline=[dict(type='LoadAnnotations')]))
    np.testing.assert_array_equal(_load_labels(ds)[0], expected)
    assert len(ds.metainfo['palette']) == len(ds.metainfo['classes'])


def test_bdsa_without_codes_reads_indices(tmp_path):
    _write_pair(tmp_path, 'train', 'a', np.array([[0, 4], [2, 3]], np.uint8))
    ds = DATASETS.build(
        dict(type='BDSADataset', data_root=str(tmp_path), label_codes=None,
             data_prefix=dict(img_path='img_dir/train',
                              seg_map_path='ann_dir/train'),
             pipeline=[dict(type='LoadAnnotations')]))
    np.testing.assert_array_equal(_load_labels(ds)[0], [[0, 4], [2, 3]])


@pytest.mark.parametrize('label_codes, label, bad', [
    ('default', [[0, 31, 63], [95, 200, 191]], [200]),
    ('default', [[0, 31, 3], [95, 127, 191]], [3]),
    (None, [[0, 4], [7, 3]], [7]),
])
@pytest.mark.parametrize('loader', ['train_dataloader', 'test_dataloader'])
def test_bdsa_base_config_refuses_unknown_label_values(
        tmp_path, label_codes, label, bad, loader):
    _write_pair(tmp_path, 'train', 'a', np.array(label, np.uint8))
    dataset = Config.fromfile(str(BASE / 'bdsa.py'))[loader].dataset
    dataset.update(data_root=str(tmp_path),
                   data_prefix=dict(img_path='img_dir/train',
                                    seg_map_path='ann_dir/train'))
    if label_codes is None:
        dataset.label_codes = None
    ds = DATASETS.build(dataset)
    seg_map = str(tmp_path / 'ann_dir' / 'train' / 'a.png')
    with pytest.raises(ValueError,
                       match=re.escape(seg_map) + '.*' + re.escape(str(bad))):
        ds[0]


def test_bdsa_base_config_maps_known_codes(tmp_path):
    _write_pair(tmp_path, 'test', 'a',
                np.array([[0, 31, 63], [95, 127, 191]], np.uint8))
    dataset = Config.fromfile(str(BASE / 'bdsa.py')).test_dataloader.dataset
    dataset.data_root = str(tmp_path)
    ds = DATASETS.build(dataset)
    np.testing.assert_array_equal(
        ds[0]['data_samples'].gt_sem_seg.data[0].numpy(),
        [[0, 1, 2], [3, 4, 255]])


def test_bcss_default_grouping_covers_every_code_once():
    codes = [c for group in DEFAULT_GROUPING.values() for c in group]
    assert sorted(codes) == sorted(BCSS_CODES.values())
    assert DEFAULT_GROUPING['ignore'] == [0, 7]
    classes = DATASETS.get('BCSSDataset').METAINFO['classes']
    assert list(classes) == [k for k in DEFAULT_GROUPING if k != 'ignore']


@pytest.mark.parametrize('name, dataset_type, num_classes, root', [
    ('bcss', 'BCSSDataset', 5, 'data/bcss'),
    ('crag', 'CRAGDataset', 2, 'data/crag'),
    ('bdsa', 'BDSADataset', 5, 'data/bdsa'),
    ('ebhi_seg', 'EBHISegDataset', 7, 'data/ebhi_seg'),
])
def test_base_configs(name, dataset_type, num_classes, root):
    cfg = Config.fromfile(str(BASE / f'{name}.py'))
    cls = DATASETS.get(dataset_type)
    assert len(cls.METAINFO['classes']) == len(
        cls.METAINFO['palette']) == num_classes
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        ds = cfg[loader].dataset
        assert ds.type == dataset_type and ds.data_root == root
        steps = [step['type'] for step in ds.pipeline]
        assert 'Resize' not in steps and 'RandomResize' not in steps
        for step in ds.pipeline:
            assert TRANSFORMS.get(step['type']) is not None, step
    train_steps = [s['type'] for s in cfg.train_dataloader.dataset.pipeline]
    for step in ('RandomFlip', 'RandomRotate90', 'PhotoMetricDistortion',
                 'RandomCrop'):
        assert step in train_steps
    crop = next(s for s in cfg.train_dataloader.dataset.pipeline
                if s['type'] == 'RandomCrop')
    assert tuple(crop['crop_size']) == tuple(cfg.crop_size)
    assert cfg.test_dataloader.dataset.data_prefix.img_path == 'img_dir/test'
    assert cfg.val_evaluator.type == 'IoUMetric'
    assert set(cfg.val_evaluator.iou_metrics) == {'mIoU', 'mDice'}
