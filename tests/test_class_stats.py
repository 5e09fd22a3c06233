"""class_frequencies and tools/analysis_tools/class_stats.py: counts against
naive counts, wrappers, workers, the cache, errors, and the runner's
class_freq='auto'."""
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.dataset import ConcatDataset, RepeatDataset
from mmengine.registry import init_default_scope
from PIL import Image

import mmimb  # noqa: F401
from mmimb.datasets import class_stats as class_stats_module
from mmimb.datasets import class_frequencies
from mmimb.engine import resolve_config
from mmimb.utils import load_class_freq, read_class_stats_json

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / 'configs' / '_base_' / 'datasets'


def naive_pixel_counts(ann_dir: Path, num_classes: int) -> np.ndarray:
    counts = np.zeros(num_classes, np.int64)
    for path in sorted(ann_dir.glob('*.png')):
        for value in np.asarray(Image.open(path)).ravel().tolist():
            if value != 255:
                counts[value] += 1
    return counts


def bcss_cfg(data_root: Path, split: str = 'train') -> ConfigDict:
    cfg = Config.fromfile(str(BASE / 'bcss.py'))
    ds = cfg[f'{split}_dataloader'].dataset
    ds.data_root = str(data_root)
    return ds


@pytest.fixture
def cache(tmp_path) -> str:
    return str(tmp_path / 'cache')


def test_segmentation_counts_match_naive_count(converted_bcss, cache):
    stats = class_frequencies(bcss_cfg(converted_bcss), cache_dir=cache,
                              default_scope='mmseg')
    expected = naive_pixel_counts(converted_bcss / 'ann_dir' / 'train', 5)
    assert stats.kind == 'pixel'
    assert stats.counts.dtype == np.int64
    np.testing.assert_array_equal(stats.counts, expected)
    assert stats.frequencies.dtype == np.float64
    np.testing.assert_allclose(stats.frequencies, expected / expected.sum())
    assert stats.classes == ('tumor', 'stroma', 'inflammatory', 'necrosis',
                             'other')
    assert stats.num_images == len(
        list((converted_bcss / 'ann_dir' / 'train').glob('*.png')))


def test_workers_cache_and_no_image_reads(tmp_path, converted_bcss,
                                          monkeypatch):
    root = tmp_path / 'data'
    shutil.copytree(converted_bcss / 'ann_dir', root / 'ann_dir')
    # Only labels are read: the image folder may hold nothing at all.
    (root / 'img_dir' / 'train').mkdir(parents=True)
    for p in (root / 'ann_dir' / 'train').glob('*.png'):
        (root / 'img_dir' / 'train' / p.name).write_bytes(b'')
    cache = str(tmp_path / 'cache')
    serial = class_frequencies(bcss_cfg(root), cache_dir=cache,
                               default_scope='mmseg')
    parallel = class_frequencies(bcss_cfg(root), num_workers=2,
                                 cache_dir=str(tmp_path / 'other'),
                                 default_scope='mmseg')
    np.testing.assert_array_equal(serial.counts, parallel.counts)
    assert serial.fingerprint == parallel.fingerprint
    assert len(list(Path(cache).glob('*.json'))) == 1

    def no_counting(*args, **kwargs):
        raise AssertionError('counted again instead of using the cache')

    monkeypatch.setattr(class_stats_module, '_count_pixels', no_counting)
    cached = class_frequencies(bcss_cfg(root), cache_dir=cache,
                               default_scope='mmseg')
    np.testing.assert_array_equal(cached.counts, serial.counts)
    # Another pipeline reads the same labels: same fingerprint.
    cfg = bcss_cfg(root)
    cfg.pipeline = cfg.pipeline[:2]
    assert class_frequencies(cfg, cache_dir=cache,
                             default_scope='mmseg').fingerprint == \
        serial.fingerprint
    monkeypatch.undo()

    label_path = sorted((root / 'ann_dir' / 'train').glob('*.png'))[0]
    label = np.asarray(Image.open(label_path)).copy()
    label[:] = 0
    Image.fromarray(label).save(label_path)
    changed = class_frequencies(bcss_cfg(root), cache_dir=cache,
                                default_scope='mmseg')
    assert changed.fingerprint != serial.fingerprint
    np.testing.assert_array_equal(
        changed.counts, naive_pixel_counts(root / 'ann_dir' / 'train', 5))


def test_cache_dir_from_environment(converted_bcss, tmp_path, monkeypatch):
    monkeypatch.setenv('MMIMB_CACHE_DIR', str(tmp_path / 'env_cache'))
    stats = class_frequencies(bcss_cfg(converted_bcss), default_scope='mmseg')
    assert (tmp_path / 'env_cache' / f'{stats.fingerprint}.json').is_file()


def test_wrappers_count_the_index_stream(converted_bcss, cache):
    init_default_scope('mmseg')
    from mmseg.registry import DATASETS
    train = DATASETS.build(bcss_cfg(converted_bcss))
    val = DATASETS.build(bcss_cfg(converted_bcss, 'val'))
    base = class_frequencies(train, cache_dir=cache).counts
    val_counts = class_frequencies(val, cache_dir=cache).counts
    repeated = class_frequencies(RepeatDataset(train, times=3),
                                 cache_dir=cache)
    np.testing.assert_array_equal(repeated.counts, 3 * base)
    assert repeated.num_images == 3 * len(train)
    both = class_frequencies(ConcatDataset([train, val]), cache_dir=cache)
    np.testing.assert_array_equal(both.counts, base + val_counts)


def test_bdsa_codes_are_mapped_and_unknown_values_named(
        tmp_path, dataset_fixtures, cache):
    root = dataset_fixtures.write_bdsa_folder(tmp_path)
    cfg = Config.fromfile(str(BASE / 'bdsa.py')).train_dataloader.dataset
    cfg.data_root = str(root)
    stats = class_frequencies(cfg, cache_dir=cache, default_scope='mmseg')
    codes = {0: 0, 31: 1, 63: 2, 95: 3, 127: 4}
    expected = np.zeros(5, np.int64)
    for path in (root / 'ann_dir' / 'train').glob('*.png'):
        for value in np.asarray(Image.open(path)).ravel().tolist():
            if value in codes:
                expected[codes[value]] += 1
    np.testing.assert_array_equal(stats.counts, expected)

    bad = root / 'ann_dir' / 'train' / '0.png'
    label = np.asarray(Image.open(bad)).copy()
    label[0, 0] = 200
    Image.fromarray(label).save(bad)
    with pytest.raises(ValueError, match=r"0\.png.*\[200\]"):
        class_frequencies(cfg, cache_dir=cache, default_scope='mmseg')


def test_synthetic_tissue_counts_generated_labels(cache):
    cfg = dict(type='SyntheticTissueDataset', num_samples=6, img_size=32,
               seed=3)
    stats = class_frequencies(cfg, cache_dir=cache, default_scope='mmseg')
    from mmimb.datasets import TissueGenerator
    generator = TissueGenerator(img_size=32, seed=3)
    expected = sum(
        np.bincount(generator(i)[1].ravel(), minlength=5) for i in range(6))
    np.testing.assert_array_equal(stats.counts, expected)
    assert len(list(Path(cache).glob('*.json'))) == 1
    other_seed = class_frequencies(dict(cfg, seed=4), cache_dir=cache,
                                   default_scope='mmseg')
    assert other_seed.fingerprint != stats.fingerprint
    parallel = class_frequencies(dict(cfg, num_samples=40), num_workers=2,
                                 cache_dir=cache, default_scope='mmseg')
    serial = class_frequencies(
        dict(cfg, num_samples=40), cache_dir=str(Path(cache) / 'x'),
        default_scope='mmseg')
    np.testing.assert_array_equal(parallel.counts, serial.counts)


def write_cls_annotations(path: Path, labels, classes) -> None:
    path.write_text(json.dumps(dict(
        metainfo=dict(classes=list(classes)),
        data_list=[dict(img_path=f'missing/{i}.jpg', gt_label=int(label))
                   for i, label in enumerate(labels)])))


class IndexSubset:
    """A minimal mmengine-style wrapper keeping an index subset (as a
    long-tailed sampling wrapper does): no get_gt_labels, no get_cat_ids."""

    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, list(indices)
        self.metainfo = dataset.metainfo

    def __len__(self):
        return len(self.indices)

    def get_data_info(self, idx):
        return self.dataset.get_data_info(self.indices[idx])


def test_classification_sample_counts(tmp_path, cache):
    labels = [0, 1, 1, 2, 2, 2, 2, 0, 2]
    ann = tmp_path / 'ann.json'
    write_cls_annotations(ann, labels, ('a', 'b', 'c'))
    cfg = dict(type='BaseDataset', ann_file=str(ann), pipeline=[])
    stats = class_frequencies(cfg, default_scope='mmpretrain',
                              cache_dir=cache)
    assert stats.kind == 'sample'
    np.testing.assert_array_equal(stats.counts, [2, 2, 5])
    assert stats.classes == ('a', 'b', 'c')
    init_default_scope('mmpretrain')
    from mmpretrain.registry import DATASETS
    dataset = DATASETS.build(cfg)
    subset = class_frequencies(IndexSubset(dataset, [1, 3, 4, 4]))
    np.testing.assert_array_equal(subset.counts, [0, 1, 3])
    balanced = class_frequencies(
        DATASETS.build(dict(type='ClassBalancedDataset', dataset=cfg,
                            oversample_thr=0.5)))
    resampled = DATASETS.build(
        dict(type='ClassBalancedDataset', dataset=cfg, oversample_thr=0.5))
    naive = np.zeros(3, np.int64)
    for i in range(len(resampled)):
        naive[resampled.get_data_info(i)['gt_label']] += 1
    np.testing.assert_array_equal(balanced.counts, naive)
    assert balanced.counts[1] > 2


def test_errors(tmp_path, converted_bcss, cache):
    with pytest.raises(ValueError, match='num_classes=3'):
        class_frequencies(bcss_cfg(converted_bcss), num_classes=3,
                          cache_dir=cache, default_scope='mmseg')
    with pytest.raises(ValueError, match='NoSuchDataset'):
        class_frequencies(dict(type='NoSuchDataset'), cache_dir=cache)
    empty = tmp_path / 'empty'
    for sub in ('img_dir/train', 'ann_dir/train'):
        (empty / sub).mkdir(parents=True)
    with pytest.raises(ValueError, match='not empty'):
        class_frequencies(bcss_cfg(empty), cache_dir=cache,
                          default_scope='mmseg')
    ann = tmp_path / 'ann.json'
    write_cls_annotations(ann, [0, 3], ('a', 'b'))
    with pytest.raises(ValueError, match=r'\[3\]'):
        class_frequencies(dict(type='BaseDataset', ann_file=str(ann)),
                          default_scope='mmpretrain')


def test_json_is_read_by_load_class_freq(converted_bcss, tmp_path, cache):
    stats = class_frequencies(bcss_cfg(converted_bcss), cache_dir=cache,
                              default_scope='mmseg')
    path = tmp_path / 'sub' / 'stats.json'
    stats.to_json(str(path))
    data = read_class_stats_json(str(path))
    assert {'classes', 'counts', 'frequencies', 'kind', 'ignore_index',
            'num_images', 'fingerprint'} <= set(data)
    freq = load_class_freq(str(path), num_classes=5)
    np.testing.assert_allclose(freq.numpy(), stats.frequencies)


def test_runner_resolves_auto_from_the_training_set(tiny_seg_config,
                                                    monkeypatch, tmp_path):
    monkeypatch.setenv('MMIMB_CACHE_DIR', str(tmp_path / 'cache'))
    cfg = Config.fromfile(str(tiny_seg_config))
    cfg.model.decode_head.class_freq = 'auto'
    resolved = resolve_config(cfg)
    expected = class_frequencies(cfg.train_dataloader.dataset,
                                 default_scope='mmseg').frequencies
    np.testing.assert_allclose(resolved.model.decode_head.class_freq,
                               expected)
    assert torch.isclose(
        load_class_freq(resolved.model.decode_head.class_freq, 5).sum(),
        torch.tensor(1.0, dtype=torch.float64))


def test_class_stats_tool(tiny_seg_config, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv('MMIMB_CACHE_DIR', str(tmp_path / 'cache'))
    spec = importlib.util.spec_from_file_location(
        'class_stats_tool', ROOT / 'tools' / 'analysis_tools' /
        'class_stats.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out, png = tmp_path / 'freq.json', tmp_path / 'freq.png'
    stats = tool.main([str(tiny_seg_config), '--out', str(out), '--plot',
                       str(png)])
    printed = capsys.readouterr().out
    for name in stats.classes:
        assert name in printed
    assert png.stat().st_size > 1000
    np.testing.assert_allclose(
        load_class_freq(str(out), 5).numpy(), stats.frequencies)
    with pytest.raises(SystemExit):
        tool.run_cli(lambda: tool.main([str(tiny_seg_config), '--cfg-options',
                                        'train_dataloader.dataset.'
                                        'num_samples=0']))
    assert 'error:' in capsys.readouterr().err
