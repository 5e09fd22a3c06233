"""CIFAR-10-LT configs end to end: class_freq='auto' and
train_class_counts='auto' resolved from the long-tailed subset, and a short
training run of CCAR through tools/train.py on a folder-per-class
fixture."""
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from toolrun import check_ok, run_tool

from mmimb.datasets import long_tailed_counts
from mmimb.engine import resolve_config

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / 'tests' / 'data' / 'configs' / 'tiny_cifar_lt_ccar.py'
CLASSES = ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog',
           'horse', 'ship', 'truck')
TINY_COUNTS = long_tailed_counts(8, 4, 10)


@pytest.fixture(scope='module')
def cifar_folders(tmp_path_factory):
    """data/cifar10-like folders: 8 training and 2 test images per class,
    each class a different colour."""
    root = tmp_path_factory.mktemp('cifar10')
    rng = np.random.default_rng(0)
    for split, per_class in (('train', 8), ('test', 2)):
        for c, name in enumerate(CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                img = rng.integers(0, 60, (32, 32, 3)) + 19 * c
                cv2.imwrite(str(folder / f'{i:04d}.jpg'),
                            img.astype(np.uint8))
    return root


def data_root_options(root):
    return [
        f'train_dataloader.dataset.dataset.data_root={root}',
        f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}',
    ]


def test_auto_statistics_come_from_the_long_tailed_subset(
        cifar_folders, tmp_path, monkeypatch):
    monkeypatch.setenv('MMIMB_CACHE_DIR', str(tmp_path / 'cache'))
    cfg = Config.fromfile(str(TINY))
    cfg.merge_from_dict(
        dict(o.split('=', 1) for o in data_root_options(cifar_folders)))
    resolved = resolve_config(cfg)
    freq = np.array(resolved.model.head.loss.class_freq)
    np.testing.assert_allclose(freq,
                               np.array(TINY_COUNTS) / sum(TINY_COUNTS))
    for key in ('val_evaluator', 'test_evaluator'):
        assert resolved[key].train_class_counts == TINY_COUNTS
    assert cfg.model.head.loss.class_freq == 'auto'


def test_train_ccar_through_tools_train(cifar_folders, tmp_path):
    work_dir = tmp_path / 'work'
    # TensorBoard beside the local files, as configs/README.md shows.
    user = tmp_path / TINY.name
    user.write_text(f"_base_ = [{str(TINY)!r}]\n"
                    'visualizer = dict(vis_backends=['
                    "dict(type='LocalVisBackend'), "
                    "dict(type='TensorboardVisBackend')])\n")
    check_ok(
        run_tool(
            'tools/train.py',
            user,
            '--work-dir',
            work_dir,
            '--cfg-options',
            *data_root_options(cifar_folders),
            env=dict(MMIMB_CACHE_DIR=str(tmp_path / 'cache'))))
    assert (work_dir / 'iter_3.pth').is_file()
    # save_best of the CIFAR-LT runtime.
    assert (work_dir / 'best_lt_top1_iter_3.pth').is_file()
    assert list(work_dir.glob('*/vis_data/events.out.tfevents.*'))
    dumped = Config.fromfile(str(work_dir / TINY.name))
    freq = np.array(dumped.model.head.loss.class_freq)
    np.testing.assert_allclose(freq,
                               np.array(TINY_COUNTS) / sum(TINY_COUNTS))
    log = next(work_dir.glob('*/*.log')).read_text()
    assert 'loss:' in log and 'lt/balanced_accuracy' in log


def test_real_cifar10_jpg_folders_sort_in_the_standard_class_order(
        shared_data):
    archive = shared_data / 'cifar10-jpg.tar.gz'
    if not archive.is_file():
        pytest.skip(f'{archive} is absent')
    counts = {}
    with tarfile.open(archive) as tar:
        for member in tar:
            parts = Path(member.name).parts
            if member.isfile() and len(parts) == 4:
                key = parts[1:3]
                counts[key] = counts.get(key, 0) + 1
    cfg = Config.fromfile(
        str(ROOT / 'configs' / '_base_' / 'datasets' / 'cifar10_jpg.py'))
    for split, per_class in (('train', 5000), ('test', 1000)):
        folders = sorted(name for s, name in counts if s == split)
        # CustomDataset numbers sorted folders; the config names classes.
        assert tuple(folders) == cfg.cifar10_classes == CLASSES
        assert {counts[(split, f)] for f in folders} == {per_class}
