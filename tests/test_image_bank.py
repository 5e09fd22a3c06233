"""The device-side data path (ImageBankDataset, ImageBankHook,
ImageBankClsDataPreprocessor, random_crop_flip): the same augmentation
distribution as the CPU pipeline, the same evaluation batches, and a
training run."""
from pathlib import Path

import numpy as np
import pytest
import torch
from cifar_folders import write_cifar_folders
from mmengine.config import Config
from mmengine.dataset import Compose, default_collate
from mmengine.registry import init_default_scope
from mmpretrain.registry import DATASETS, MODELS, TRANSFORMS
from scipy.stats import chi2_contingency, chisquare

from mmimb.datasets import ImageBankDataset, class_frequencies
from mmimb.engine import build_runner, load_config
from mmimb.models import ImageBankClsDataPreprocessor, random_crop_flip

ROOT = Path(__file__).resolve().parents[1]
JPG_BASE = ROOT / 'configs' / '_base_' / 'datasets' / 'cifar10_jpg.py'
TINY = ROOT / 'tests' / 'data' / 'configs' / 'tiny_cifar_lt_bank.py'
SIZE, PAD = 32, 4


def probe_image() -> np.ndarray:
    """(H, W, 3) uint8 whose pixels name their position: channel 0 is
    8 x row, channel 1 is 8 x column, channel 2 is 255 (0 only in padding)."""
    i, j = np.meshgrid(np.arange(SIZE), np.arange(SIZE), indexing='ij')
    return np.stack([8 * i, 8 * j, np.full_like(i, 255)], -1).astype(np.uint8)


def crop_params(out: np.ndarray):
    """(row offset, column offset, flipped) of an augmented probe (C, H, W),
    read off its centre pixel, which every crop keeps inside the image."""
    c = SIZE // 2
    row, col = int(out[0, c, c]) // 8, int(out[1, c, c]) // 8
    flipped = int(out[1, c, c + 1]) < int(out[1, c, c])
    dx = col - (SIZE - 1 - c) + PAD if flipped else col - c + PAD
    return row - c + PAD, dx, flipped


def expected_crop(img_chw: np.ndarray, dy: int, dx: int, flipped: bool):
    padded = np.pad(img_chw, ((0, 0), (PAD, PAD), (PAD, PAD)))
    window = padded[:, dy:dy + SIZE, dx:dx + SIZE]
    return window[:, :, ::-1] if flipped else window


def cell(dy: int, dx: int, flipped: bool) -> int:
    span = 2 * PAD + 1
    return (dy * span + dx) * 2 + int(flipped)


def counts_and_check(outputs, img_chw) -> np.ndarray:
    """Histogram of (dy, dx, flip) over ``outputs``, after checking that
    each output is exactly the crop its parameters name."""
    counts = np.zeros((2 * PAD + 1)**2 * 2, dtype=np.int64)
    for out in outputs:
        dy, dx, flipped = crop_params(out)
        np.testing.assert_array_equal(
            out, expected_crop(img_chw, dy, dx, flipped))
        counts[cell(dy, dx, flipped)] += 1
    return counts


def test_crop_flip_has_the_distribution_of_the_cpu_pipeline():
    n = 4000
    img = probe_image()
    img_chw = img.transpose(2, 0, 1)
    # The training pipeline of the CIFAR configs after loading: RandomCrop
    # (32, padding 4), RandomFlip (0.5, horizontal), PackInputs.
    init_default_scope('mmpretrain')
    cpu = Compose([TRANSFORMS.build(t) for t in
                   Config.fromfile(JPG_BASE).train_pipeline[1:]])
    np.random.seed(0)
    cpu_out = [cpu(dict(img=img.copy()))['inputs'].numpy()
               for _ in range(n)]
    batch = torch.from_numpy(img_chw).expand(n, -1, -1, -1)
    device_out = random_crop_flip(
        batch, PAD, 0.5, generator=torch.Generator().manual_seed(0)).numpy()
    assert device_out.dtype == np.uint8 and device_out.shape == (n, 3, 32, 32)
    cpu_counts = counts_and_check(cpu_out, img_chw)
    device_counts = counts_and_check(device_out, img_chw)
    # Each uniform over the 81 offsets x 2 flips, and the two alike.
    assert chisquare(device_counts).pvalue > 1e-3
    assert chisquare(cpu_counts).pvalue > 1e-3
    assert chi2_contingency(np.stack([cpu_counts, device_counts])).pvalue \
        > 1e-3
    assert device_counts.reshape(-1, 2).sum(0)[1] / n == pytest.approx(
        0.5, abs=0.03)


def test_crop_flip_identity_and_bad_arguments():
    images = torch.randint(0, 256, (5, 3, 8, 6), dtype=torch.uint8)
    assert torch.equal(random_crop_flip(images, 0, 0.0), images)
    assert torch.equal(random_crop_flip(images, 0, 1.0), images.flip(-1))
    for args in ((images[0], 4), (images, -1), (images, 2.0),
                 (images, 4, 1.5)):
        with pytest.raises(ValueError, match='random_crop_flip'):
            random_crop_flip(*args)


@pytest.fixture(scope='module')
def cifar_root(tmp_path_factory) -> Path:
    return write_cifar_folders(tmp_path_factory.mktemp('cifar10'))


def _preprocessor(**kwargs):
    cfg = Config.fromfile(JPG_BASE).data_preprocessor
    return MODELS.build(dict(cfg, **kwargs))


def test_bank_batches_equal_the_cpu_pipeline(cifar_root):
    """Evaluation batches from the bank, and training batches without
    augmentation, are bit for bit those of the CPU pipeline and mmpretrain's
    ClsDataPreprocessor."""
    init_default_scope('mmpretrain')
    source = dict(type='CustomDataset', data_root=str(cifar_root),
                  data_prefix='train',
                  pipeline=Config.fromfile(JPG_BASE).test_pipeline)
    bank = ImageBankDataset(dict(source))
    plain = DATASETS.build(source)
    indices = [5, 0, 17, 3, 79, 42]
    reference = _preprocessor(type='ClsDataPreprocessor')(
        default_collate([plain[i] for i in indices]), False)
    device_side = _preprocessor(type='ImageBankClsDataPreprocessor',
                                crop_padding=4, flip_prob=0.5)
    device_side.set_bank('eval', bank.images)
    device_side.set_bank('train', bank.images)
    batch = default_collate([bank[i] for i in indices])
    assert batch['inputs'].tolist() == indices
    out = device_side(batch, False)
    assert torch.equal(out['inputs'], reference['inputs'])
    assert [s.gt_label.item() for s in out['data_samples']] == \
        [s.gt_label.item() for s in reference['data_samples']]
    no_aug = _preprocessor(type='ImageBankClsDataPreprocessor')
    no_aug.set_bank('train', bank.images)
    train = no_aug(default_collate([bank[i] for i in indices]), True)
    assert torch.equal(train['inputs'], reference['inputs'])
    # pseudo_collate (a list of 0-d indices) reads the same rows.
    listed = dict(batch, inputs=list(batch['inputs']))
    assert torch.equal(device_side(listed, False)['inputs'],
                       reference['inputs'])


def test_counting_classes_decodes_nothing(cifar_root):
    bank = ImageBankDataset(
        dict(type='CustomDataset', data_root=str(cifar_root),
             data_prefix='train', pipeline=[]))
    stats = class_frequencies(bank)
    assert list(stats.counts) == [8] * 10
    assert 'not decoded' in repr(bank)
    assert bank.get_cat_ids(9) == [int(bank.get_gt_labels()[9])]


def test_bank_errors(cifar_root, tmp_path):
    init_default_scope('mmpretrain')
    bank = ImageBankDataset(
        dict(type='CustomDataset', data_root=str(cifar_root),
             data_prefix='test'))
    batch = default_collate([bank[i] for i in range(3)])
    with pytest.raises(RuntimeError, match="dict.type='ImageBankHook'"):
        _preprocessor(type='ImageBankClsDataPreprocessor')(batch, True)
    small = _preprocessor(type='ImageBankClsDataPreprocessor')
    small.set_bank('eval', bank.images[:2])
    with pytest.raises(IndexError, match='out of the eval bank of 2'):
        small(batch, False)
    with pytest.raises(ValueError, match='uint8 tensor'):
        small.set_bank('eval', bank.images.float())
    with pytest.raises(IndexError, match='out of range'):
        bank[len(bank)]
    # One image of another size cannot join the bank.
    import cv2
    odd = Path(tmp_path) / 'odd'
    for name in ('a', 'b'):
        (odd / name).mkdir(parents=True)
    cv2.imwrite(str(odd / 'a' / '0.jpg'), np.zeros((32, 32, 3), np.uint8))
    cv2.imwrite(str(odd / 'b' / '0.jpg'), np.zeros((30, 32, 3), np.uint8))
    mixed = ImageBankDataset(dict(type='CustomDataset', data_root=str(odd)))
    with pytest.raises(ValueError, match=r'sample 1 .*b/0.jpg.* \(3, 30, 32'):
        mixed.images


def test_training_reads_the_bank(cifar_root, tmp_path):
    """A config with cifar10_lt_if100_bank.py among its bases trains and
    evaluates with the whole train and test sets on the model's device."""
    from mmimb.cli.train import parse_args
    options = [
        f'train_dataloader.dataset.dataset.dataset.data_root={cifar_root}',
        f'val_dataloader.dataset.dataset.data_root={cifar_root}',
        f'test_dataloader.dataset.dataset.data_root={cifar_root}',
    ]
    cfg = load_config(str(TINY), parse_args(
        [str(TINY), '--work-dir', str(tmp_path), '--cfg-options', *options]))
    runner = build_runner(cfg, 'train')
    seen = []
    preprocessor = runner.model.data_preprocessor
    preprocessor.register_forward_pre_hook(
        lambda module, args: seen.append(args[0]['inputs']))
    runner.train()
    metrics = runner.test()
    assert isinstance(preprocessor, ImageBankClsDataPreprocessor)
    assert len(preprocessor._banks['train']) == len(
        runner.train_dataloader.dataset)
    assert len(preprocessor._banks['eval']) == 20
    assert all(x.dtype == torch.int64 and x.dim() == 1 for x in seen)
    assert 0 <= metrics['lt/top1'] <= 100
