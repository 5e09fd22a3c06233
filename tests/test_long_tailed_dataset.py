"""LongTailedDataset: the published CIFAR-LT counts, LDAM-DRW's selection,
determinism, the wrapper interface and class statistics through it."""
import numpy as np
import pytest
from mmengine.registry import init_default_scope
from mmpretrain.datasets import BaseDataset

from mmimb.datasets import (LongTailedDataset, class_frequencies,
                            long_tailed_counts)

# Counts of the standard subsets (Cao et al. 2019 and later work).
CIFAR10_LT_IF100 = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
CIFAR10_LT_IF10 = [5000, 3871, 2997, 2320, 1796, 1391, 1077, 834, 645, 500]


@pytest.mark.parametrize('n_max,classes,factor,total', [
    (5000, 10, 10, 20431),
    (5000, 10, 50, 13996),
    (5000, 10, 100, 12406),
    (5000, 10, 200, 11203),
    (500, 100, 10, 19573),
    (500, 100, 50, 12608),
    (500, 100, 100, 10847),
    (500, 100, 200, 9502),
])
def test_published_cifar_lt_sizes(n_max, classes, factor, total):
    counts = long_tailed_counts(n_max, factor, classes)
    assert sum(counts) == total
    assert counts[0] == n_max and counts[-1] == n_max // factor
    assert counts == sorted(counts, reverse=True)


def test_cifar10_lt_counts():
    assert long_tailed_counts(5000, 100, 10) == CIFAR10_LT_IF100
    assert long_tailed_counts(5000, 10, 10) == CIFAR10_LT_IF10
    assert long_tailed_counts(7, 1, 3) == [7, 7, 7]


class InMemoryDataset(BaseDataset):
    """An mmpretrain dataset of labels only; loading an image would fail,
    which shows that the wrapper never loads one to count."""

    def __init__(self, labels, **kwargs):
        self._labels = list(labels)
        classes = tuple(f'c{i}' for i in range(max(self._labels) + 1))
        super().__init__(
            ann_file='', metainfo=dict(classes=classes), **kwargs)

    def load_data_list(self):
        return [
            dict(img_path=f'missing/{i}.png', gt_label=int(label))
            for i, label in enumerate(self._labels)
        ]


def cifar_like(per_class=5000, num_classes=10, seed=0):
    labels = np.repeat(np.arange(num_classes), per_class)
    np.random.RandomState(seed).shuffle(labels)
    return InMemoryDataset(labels)


def ldam_selection(labels, counts, seed):
    """LDAM-DRW's IMBALANCECIFAR10.gen_imbalanced_data, verbatim in
    spirit: global seed, one shuffle per class in class order."""
    np.random.seed(seed)
    selected = []
    for cls, count in zip(np.unique(labels), counts):
        idx = np.where(labels == cls)[0]
        np.random.shuffle(idx)
        selected.extend(idx[:count].tolist())
    return selected


def test_cifar10_lt_if100_exact_counts_and_ldam_selection():
    source = cifar_like()
    subset = LongTailedDataset(source, imbalance_factor=100, seed=0)
    labels = subset.get_gt_labels()
    assert np.bincount(labels).tolist() == CIFAR10_LT_IF100
    assert len(subset) == 12406 and subset.class_counts == CIFAR10_LT_IF100
    assert subset.indices.tolist() == ldam_selection(
        source.get_gt_labels(), CIFAR10_LT_IF100, 0)


def test_same_seed_same_subset_other_seed_other_subset():
    source = cifar_like(per_class=300)
    first = LongTailedDataset(source, imbalance_factor=10, seed=3)
    again = LongTailedDataset(cifar_like(per_class=300), 10, seed=3)
    other = LongTailedDataset(source, imbalance_factor=10, seed=4)
    assert first.indices.tolist() == again.indices.tolist()
    assert first.indices.tolist() != other.indices.tolist()
    assert np.bincount(other.get_gt_labels()).tolist() == \
        np.bincount(first.get_gt_labels()).tolist()


def test_wrapper_interface_describes_the_subset():
    source = cifar_like(per_class=40, num_classes=4)
    subset = LongTailedDataset(source, imbalance_factor=8)
    assert subset.class_counts == [40, 20, 10, 5]
    assert subset.dataset is source
    assert subset.metainfo['classes'] == ('c0', 'c1', 'c2', 'c3')
    for i in (0, 17, len(subset) - 1):
        info = subset.get_data_info(i)
        assert info == source.get_data_info(int(subset.indices[i]))
        assert [info['gt_label']] == subset.get_cat_ids(i)
        assert info['gt_label'] == subset.get_gt_labels()[i]
    # Unique source samples only.
    assert len(set(subset.indices.tolist())) == len(subset)


def test_built_from_config_and_counted_by_class_frequencies():
    init_default_scope('mmpretrain')
    from mmpretrain.registry import DATASETS
    DATASETS.register_module(module=InMemoryDataset, force=True)
    labels = np.repeat(np.arange(5), 100).tolist()
    cfg = dict(
        type='LongTailedDataset',
        imbalance_factor=20,
        seed=1,
        dataset=dict(type='InMemoryDataset', labels=labels))
    subset = DATASETS.build(cfg)
    expected = long_tailed_counts(100, 20, 5)
    assert np.bincount(subset.get_gt_labels()).tolist() == expected
    for target in (subset, cfg):
        stats = class_frequencies(target, default_scope='mmpretrain')
        assert stats.counts.tolist() == expected
        np.testing.assert_allclose(stats.frequencies,
                                   np.array(expected) / sum(expected))


def test_uneven_source_defaults_to_the_smallest_class():
    labels = [0] * 50 + [1] * 30 + [2] * 80
    subset = LongTailedDataset(InMemoryDataset(labels), imbalance_factor=3)
    assert subset.class_counts == [30, 17, 10]
    with pytest.raises(ValueError, match='class 0 needs 60, has 50'):
        LongTailedDataset(
            InMemoryDataset(labels), imbalance_factor=3, max_per_class=60)


@pytest.mark.parametrize('kwargs,match', [
    (dict(imbalance_factor=0.5), 'imbalance_factor'),
    (dict(imbalance_factor=100, max_per_class=10), 'without samples'),
    (dict(imbalance_factor=10, max_per_class=0), 'max_per_class'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LongTailedDataset(cifar_like(per_class=20, num_classes=3), **kwargs)


def test_class_without_samples_is_rejected():
    source = InMemoryDataset([0, 0, 2, 2])
    with pytest.raises(ValueError, match=r'classes \[1\] have no samples'):
        LongTailedDataset(source, imbalance_factor=1)
