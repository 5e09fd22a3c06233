"""Class-balanced, square-root and progressively balanced samplers: the
class probabilities of Kang et al. (ICLR 2020) computed naively, the
authors' class-aware rounds, and two simulated ranks that split one global
sequence."""
import numpy as np
import pytest
from mmpretrain.datasets import BaseDataset

from mmimb.datasets import (ClassBalancedSampler,
                            ProgressivelyBalancedSampler, SquareRootSampler,
                            class_sampling_probs, progressive_lambda)
from mmimb.datasets import rebalancing_samplers

COUNTS = [60, 30, 12, 5, 2]


class LabelsOnly(BaseDataset):
    """Labels without images (an image load would fail)."""

    def __init__(self, labels):
        self._labels = list(labels)
        super().__init__(
            ann_file='',
            metainfo=dict(classes=[f'c{i}' for i in range(len(COUNTS))]))

    def load_data_list(self):
        return [
            dict(img_path=f'missing/{i}.png', gt_label=int(y))
            for i, y in enumerate(self._labels)
        ]


def dataset(counts=COUNTS, seed=0):
    labels = np.repeat(np.arange(len(counts)), counts)
    np.random.default_rng(seed).shuffle(labels)
    return LabelsOnly(labels)


def naive_probs(counts, q):
    """p_j = n_j^q / sum_i n_i^q (Kang et al. 2020, Eq. 1)."""
    total = sum(n**q for n in counts if n)
    return [n**q / total if n else 0.0 for n in counts]


@pytest.mark.parametrize('q', [0.0, 0.5, 1.0, 0.25])
def test_class_probabilities_match_the_formula(q):
    np.testing.assert_allclose(
        class_sampling_probs(COUNTS, q), naive_probs(COUNTS, q), rtol=1e-12)
    np.testing.assert_allclose(
        class_sampling_probs([4, 0, 1], q), naive_probs([4, 0, 1], q))


def labels_of(ds, indices):
    return ds.get_gt_labels()[np.asarray(indices)]


def test_square_root_sampler_draws_classes_with_sqrt_probabilities():
    ds = dataset()
    sampler = SquareRootSampler(ds, num_samples=40000, seed=1)
    assert len(sampler) == 40000
    np.testing.assert_allclose(sampler.class_probs(),
                               naive_probs(COUNTS, 0.5))
    drawn = np.bincount(labels_of(ds, list(sampler)), minlength=5) / 40000
    p = np.array(naive_probs(COUNTS, 0.5))
    # Four standard deviations of a multinomial share.
    assert (np.abs(drawn - p) < 4 * np.sqrt(p * (1 - p) / 40000)).all()
    assert len(SquareRootSampler(ds, seed=0)) == sum(COUNTS)


def test_class_balanced_sampler_is_the_authors_class_aware_sampling():
    ds = dataset()
    sampler = ClassBalancedSampler(ds, num_samples_cls=4, seed=0)
    # The authors' epoch: the largest class's size times the classes.
    assert len(sampler) == max(COUNTS) * len(COUNTS)
    labels = labels_of(ds, list(sampler))
    assert np.bincount(labels).tolist() == [60] * 5
    # Each round visits every class once, num_samples_cls draws in a row.
    visits = labels.reshape(-1, 4)
    assert (visits == visits[:, :1]).all()
    rounds = visits[:, 0].reshape(-1, 5)
    assert all(sorted(r) == list(range(5)) for r in rounds)
    # Within a class no sample repeats before the class is exhausted.
    indices = np.array(list(sampler))
    for c, n in enumerate(COUNTS):
        taken = indices[labels == c]
        for start in range(0, len(taken) - n + 1, n):
            assert len(set(taken[start:start + n])) == n
    np.testing.assert_allclose(sampler.class_probs(), [0.2] * 5)


def test_progressive_sampler_moves_from_instance_to_class_balanced():
    assert [progressive_lambda(t, 5) for t in range(6)] == \
        [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    assert progressive_lambda(0, 1) == 1.0
    ds = dataset()
    sampler = ProgressivelyBalancedSampler(ds, total_epochs=5, seed=0)
    for t in range(5):
        sampler.set_epoch(t)
        lam = t / 4
        expected = [(1 - lam) * a + lam * b
                    for a, b in zip(naive_probs(COUNTS, 1.0),
                                    naive_probs(COUNTS, 0.0))]
        np.testing.assert_allclose(sampler.class_probs(), expected)
    assert len(sampler) == sum(COUNTS)
    with pytest.raises(ValueError, match='total_epochs'):
        ProgressivelyBalancedSampler(ds, total_epochs=0)


@pytest.mark.parametrize('make', [
    lambda ds, **kw: ClassBalancedSampler(ds, num_samples_cls=2, **kw),
    lambda ds, **kw: SquareRootSampler(ds, **kw),
    lambda ds, **kw: ProgressivelyBalancedSampler(ds, 4, **kw),
],
                         ids=['class-balanced', 'sqrt', 'progressive'])
def test_two_ranks_split_one_global_sequence(make, monkeypatch):
    ds = dataset()
    # 101 draws over two ranks round up to 51 each.
    single = make(ds, num_samples=102, seed=7)
    samplers = []
    for rank in (0, 1):
        monkeypatch.setattr(rebalancing_samplers, 'get_dist_info',
                            lambda rank=rank: (rank, 2))
        samplers.append(make(ds, num_samples=101, seed=7))
    for epoch in (0, 3):
        single.set_epoch(epoch)
        for s in samplers:
            s.set_epoch(epoch)
        shards = [list(s) for s in samplers]
        assert [len(x) for x in shards] == [len(s) for s in samplers] == \
            [51, 51]
        merged = [i for pair in zip(*shards) for i in pair]
        # The ranks take alternate positions of the one-rank sequence.
        assert merged == single.global_indices().tolist()
    first = list(samplers[0])
    samplers[0].set_epoch(4)
    assert list(samplers[0]) != first


def test_bad_arguments_are_refused():
    ds = dataset()
    for make, match in (
        (lambda: ClassBalancedSampler(ds, num_samples_cls=0),
         'num_samples_cls'),
        (lambda: SquareRootSampler(ds, power=2), 'power'),
        (lambda: SquareRootSampler(ds, num_samples=0), 'num_samples'),
    ):
        with pytest.raises(ValueError, match=match):
            make()
