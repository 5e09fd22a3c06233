"""SyntheticTissueDataset and TissueGenerator: determinism, frequencies that
follow the spec whatever the difficulty, difficulty as colour distance,
metadata, and errors for bad specs."""
import numpy as np
import pytest
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS

import mmimb  # noqa: F401
from mmimb.datasets import SyntheticTissueDataset, TissueGenerator
from mmimb.datasets.synthetic_tissue import DEFAULT_CLASS_SPECS

SPECS = [
    dict(name='common', freq=0.55, difficulty=0.0),
    dict(name='medium', freq=0.30, difficulty=0.0),
    dict(name='rare', freq=0.10, difficulty=0.0),
    dict(name='rarest', freq=0.05, difficulty=0.0),
]


def with_difficulty(difficulty):
    return [dict(s, difficulty=d) for s, d in zip(SPECS, difficulty)]


def pixel_frequencies(generator, n):
    counts = sum(
        np.bincount(generator(i)[1].ravel(), minlength=len(generator.specs))
        for i in range(n))
    return counts / counts.sum()


def test_deterministic_per_seed_and_index():
    a = TissueGenerator(img_size=48, seed=7)
    b = TissueGenerator(img_size=48, seed=7)
    for index in (0, 5, 123):
        img_a, label_a = a(index)
        img_b, label_b = b(index)
        np.testing.assert_array_equal(img_a, img_b)
        np.testing.assert_array_equal(label_a, label_b)
    # Order of calls does not matter.
    np.testing.assert_array_equal(a(3)[0], TissueGenerator(
        img_size=48, seed=7)(3)[0])
    assert not np.array_equal(a(0)[1], a(1)[1])
    assert not np.array_equal(a(0)[0], TissueGenerator(img_size=48,
                                                       seed=8)(0)[0])
    img, label = a(0)
    assert img.shape == (48, 48, 3) and img.dtype == np.uint8
    assert label.shape == (48, 48) and label.dtype == np.uint8


def test_frequencies_follow_spec_whatever_the_difficulty():
    easy = TissueGenerator(with_difficulty([0, 0, 0, 0]), img_size=64)
    hard = TissueGenerator(with_difficulty([1, 0.2, 0.9, 1]), img_size=64)
    # Difficulty changes appearance only: the label maps are the same.
    for index in range(5):
        np.testing.assert_array_equal(easy(index)[1], hard(index)[1])
        assert not np.array_equal(easy(index)[0], hard(index)[0])
    freq = pixel_frequencies(hard, 200)
    spec = np.array([s['freq'] for s in SPECS])
    np.testing.assert_allclose(freq, spec, rtol=0.15)
    assert list(np.argsort(freq)) == list(np.argsort(spec))


def test_rare_class_can_be_common_class_hard():
    specs = [dict(name='bg', freq=0.6, difficulty=0.0),
             dict(name='common_hard', freq=0.35, difficulty=0.9),
             dict(name='rare_easy', freq=0.05, difficulty=0.0)]
    generator = TissueGenerator(specs, img_size=64, noise_std=0.0)
    colors = generator.colors
    # Difficulty d moves a class's colour a fraction d towards class 0's.
    own = np.array([s['color'] for s in generator.specs], np.float32)
    np.testing.assert_allclose(colors[1], 0.1 * own[1] + 0.9 * own[0],
                               rtol=1e-6)
    np.testing.assert_allclose(colors[2], own[2])
    img, label = generator(0)
    means = [img[label == k].reshape(-1, 3).mean(0) for k in range(3)]
    assert np.abs(means[1] - means[0]).sum() < np.abs(means[2] -
                                                      means[0]).sum()
    freq = pixel_frequencies(generator, 100)
    assert freq[2] < 0.1 < freq[1]


def test_dataset_metadata_and_samples():
    init_default_scope('mmseg')
    ds = DATASETS.build(
        dict(type='SyntheticTissueDataset', num_samples=3, img_size=32,
             seed=2, pipeline=[dict(type='PackSegInputs')]))
    meta = ds.metainfo
    assert meta['classes'] == tuple(s['name'] for s in DEFAULT_CLASS_SPECS)
    assert meta['class_freq'] == [s['freq'] for s in DEFAULT_CLASS_SPECS]
    assert meta['class_difficulty'] == [
        s['difficulty'] for s in DEFAULT_CLASS_SPECS]
    assert len(meta['palette']) == len(meta['classes'])
    assert len(ds) == 3
    img, label = TissueGenerator(img_size=32, seed=2)(1)
    sample = ds[1]
    # Images are BGR like those LoadImageFromFile reads.
    np.testing.assert_array_equal(
        sample['inputs'].permute(1, 2, 0).numpy(), img[..., ::-1])
    np.testing.assert_array_equal(
        sample['data_samples'].gt_sem_seg.data[0].numpy(), label)


@pytest.mark.parametrize('specs, message', [
    ([dict(name='a', freq=1.0, difficulty=0.0)], 'at least 2 classes'),
    ([dict(name='a', freq=0.5, difficulty=0.0),
      dict(name='b', freq=0.4, difficulty=0.0)], 'sum to 0.9000'),
    ([dict(name='a', freq=0.5, difficulty=0.0),
      dict(name='b', freq=0.5, difficulty=1.5)], r"\('b'\) has difficulty=1.5"),
    ([dict(name='a', freq=1.0, difficulty=0.0),
      dict(name='b', freq=0.0, difficulty=0.0)], r"\('b'\) has freq=0.0"),
    ([dict(name='a', freq=0.5, difficulty=0.0),
      dict(name='b', freq=0.5)], r"class_specs\[1\] lacks \['difficulty'\]"),
])
def test_bad_specs_are_refused(specs, message):
    with pytest.raises(ValueError, match=message):
        SyntheticTissueDataset(class_specs=specs, num_samples=1)


def test_bad_sample_count_is_refused():
    with pytest.raises(ValueError, match='num_samples must be >= 1'):
        SyntheticTissueDataset(num_samples=0)


def test_confuser_by_name_or_index():
    specs = [dict(name='a', freq=0.5, difficulty=0.0, color=(200, 0, 0)),
             dict(name='b', freq=0.3, difficulty=0.0, color=(0, 200, 0)),
             dict(name='c', freq=0.2, difficulty=0.5, color=(0, 0, 200),
                  confuser='b')]
    generator = TissueGenerator(specs, img_size=16)
    np.testing.assert_allclose(generator.colors[2], (0, 100, 100))
    by_index = TissueGenerator([*specs[:2], dict(specs[2], confuser=1)],
                               img_size=16)
    np.testing.assert_array_equal(by_index.colors, generator.colors)


@pytest.mark.parametrize('confuser', ['z', 2, 5, True])
def test_bad_confuser_is_refused(confuser):
    specs = [dict(name='a', freq=0.5, difficulty=0.0),
             dict(name='b', freq=0.3, difficulty=0.0),
             dict(name='c', freq=0.2, difficulty=0.5, confuser=confuser)]
    with pytest.raises(ValueError, match=r"class_specs\[2\] \('c'\) has "
                       'confuser='):
        TissueGenerator(specs)


def test_render_paints_a_given_label_map():
    specs = [dict(name='a', freq=0.6, difficulty=0.0, color=(200, 40, 40),
                  dots=0.0),
             dict(name='b', freq=0.4, difficulty=0.0, color=(40, 40, 200),
                  dots=0.0)]
    generator = TissueGenerator(specs, img_size=64, seed=4)
    label = np.zeros((64, 64), np.uint8)
    label[:, 32:] = 1
    img = generator.render(label, np.random.default_rng(1))
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8
    # Each half has its class's colour, up to noise and stain jitter.
    np.testing.assert_allclose(img[:, :32].reshape(-1, 3).mean(0),
                               (200, 40, 40), atol=12)
    np.testing.assert_allclose(img[:, 32:].reshape(-1, 3).mean(0),
                               (40, 40, 200), atol=12)
    np.testing.assert_array_equal(
        img, generator.render(label, np.random.default_rng(1)))
    # Generated samples are rendered from their own layout.
    sample, sample_label = generator(3)
    rng = np.random.default_rng((4, 3))
    np.testing.assert_array_equal(sample_label, generator._layout(rng))
    np.testing.assert_array_equal(sample, generator.render(sample_label, rng))
