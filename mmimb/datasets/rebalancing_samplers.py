"""Samplers that re-balance the classes of a single-label dataset (Kang et
al., "Decoupling Representation and Classifier for Long-Tailed
Recognition", ICLR 2020, section 3):

    p_j = n_j ** q / sum_i n_i ** q

the probability that a draw comes from class ``j``, with ``q = 1``
instance-balanced (natural), ``q = 0`` class-balanced and ``q = 1/2``
square-root sampling; progressively balanced sampling moves from ``q = 1``
to ``q = 0`` over training,
``p_j(t) = (1 - lam_t) p_j(q=1) + lam_t p_j(q=0)``.

Within a class, samples are taken in a random order, reshuffled each time
the class is exhausted (the authors' ``RandomCycleIter``), so a class
repeats only once all of its samples have been seen.

Distributed training: every rank draws the same sequence for the epoch
(one generator seeded with ``seed + epoch``, the seed shared across ranks
as mmengine's ``DefaultSampler`` does) and keeps every ``world_size``-th
index from its rank on, so the ranks see disjoint positions of one global
sequence whose length is rounded up to a multiple of ``world_size``.
"""
import math
import numbers
from typing import Iterator, List, Optional

import numpy as np
import torch
from mmengine.dist import get_dist_info, sync_random_seed
from mmpretrain.registry import DATA_SAMPLERS
from torch.utils.data import Sampler

from .sample_labels import single_labels


def class_sampling_probs(counts, power: float) -> np.ndarray:
    """``p_j = n_j ** power / sum_i n_i ** power``; 0 for empty classes.

    Args:
        counts: (C,) samples per class.
        power: ``q``: 1 instance-balanced, 0 class-balanced, 0.5 square
            root.

    Returns:
        np.ndarray: float64 (C,), summing to 1.
    """
    counts = np.asarray(counts, dtype=np.float64)
    weights = np.where(counts > 0, counts, 1.0)**power * (counts > 0)
    return weights / weights.sum()


def progressive_lambda(epoch: int, total_epochs: int) -> float:
    """The class-balanced share ``lam_t`` of progressively balanced sampling
    at ``epoch`` (0-based): ``epoch / (total_epochs - 1)``, 0 in the first
    epoch and 1 in the last, as the authors' sampler
    (``np.linspace(0, 1, epochs)[epoch]``; the paper writes ``t / T``).
    Epochs past the end stay at 1."""
    if total_epochs == 1:
        return 1.0
    return min(epoch / (total_epochs - 1), 1.0)


class ClassRebalancingSampler(Sampler):
    """Base of the re-balancing samplers: subclasses choose the class of
    every draw (:meth:`class_sequence`); this class picks the samples and
    shards the sequence across ranks.

    Args:
        dataset: A single-label classification dataset (labels are read
            without loading images, as ``class_frequencies`` does).
        num_samples (int, optional): Draws per epoch over all ranks.
            Defaults to :meth:`default_length`.
        seed (int, optional): Seed shared by all ranks; ``None`` draws one
            and shares it (mmengine's ``sync_random_seed``).
    """

    def __init__(self,
                 dataset,
                 num_samples: Optional[int] = None,
                 seed: Optional[int] = None):
        name = type(self).__name__
        labels = single_labels(dataset, name)
        if labels.size == 0:
            raise ValueError(f'{name}: the dataset is empty')
        classes = (getattr(dataset, 'metainfo', None) or {}).get('classes')
        num_classes = max(len(classes) if classes else 0,
                          int(labels.max()) + 1)
        if labels.min() < 0:
            raise ValueError(f'{name}: negative label {labels.min()} in '
                             f'{type(dataset).__name__}')
        self.counts = np.bincount(labels, minlength=num_classes)
        self.members: List[np.ndarray] = [
            np.flatnonzero(labels == c) for c in range(num_classes)
        ]
        if num_samples is None:
            num_samples = self.default_length()
        if isinstance(num_samples, bool) or not isinstance(
                num_samples, numbers.Integral) or num_samples < 1:
            raise ValueError(f'{name}: num_samples={num_samples!r}, expected '
                             'a positive integer')
        self.rank, self.world_size = get_dist_info()
        self.num_samples = math.ceil(num_samples / self.world_size)
        self.total_size = self.num_samples * self.world_size
        self.seed = sync_random_seed() if seed is None else int(seed)
        self.epoch = 0

    def default_length(self) -> int:
        """Draws per epoch when ``num_samples`` is not given: the dataset
        size."""
        return int(self.counts.sum())

    def class_sequence(self, generator: torch.Generator,
                       size: int) -> np.ndarray:
        """The class of each of ``size`` draws."""
        raise NotImplementedError

    def global_indices(self) -> np.ndarray:
        """This epoch's sequence of dataset indices, all ranks together."""
        gen = torch.Generator().manual_seed(self.seed + self.epoch)
        classes = self.class_sequence(gen, self.total_size)
        indices = np.empty(self.total_size, dtype=np.int64)
        for c in np.unique(classes):
            slots = np.flatnonzero(classes == c)
            members = self.members[c]
            rounds = -(-len(slots) // len(members))
            order = torch.cat([
                torch.randperm(len(members), generator=gen)
                for _ in range(rounds)
            ])[:len(slots)].numpy()
            indices[slots] = members[order]
        return indices

    def __iter__(self) -> Iterator[int]:
        indices = self.global_indices()
        return iter(indices[self.rank:self.total_size:self.world_size]
                    .tolist())

    def __len__(self) -> int:
        """Draws per epoch on this rank."""
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Called by mmengine's ``DistSamplerSeedHook`` (and the infinite
        iterator of iteration-based loops) before each epoch."""
        self.epoch = epoch

    def class_probs(self) -> np.ndarray:
        """The probability of each class in this epoch's draws."""
        raise NotImplementedError


def _multinomial(probs: np.ndarray, generator: torch.Generator,
                 size: int) -> np.ndarray:
    return torch.multinomial(
        torch.as_tensor(probs), size, replacement=True,
        generator=generator).numpy()


@DATA_SAMPLERS.register_module()
class ClassBalancedSampler(ClassRebalancingSampler):
    """Class-balanced sampling (``q = 0``) as the authors' class-aware
    sampler (classifier-balancing ``data/ClassAwareSampler.py``): classes
    are visited in a random order, reshuffled after every full round, and
    each visit takes ``num_samples_cls`` consecutive samples of the class,
    so every class gets exactly the same number of draws per round.

    Args:
        dataset: A single-label classification dataset.
        num_samples_cls (int): Samples per class visit. Defaults to 1 (the
            authors' default; their cRT and LWS configs use 4).
        num_samples (int, optional): Draws per epoch. Defaults to the
            largest class's size times the number of non-empty classes
            (the authors' epoch).
        seed (int, optional): See :class:`ClassRebalancingSampler`.
    """

    def __init__(self,
                 dataset,
                 num_samples_cls: int = 1,
                 num_samples: Optional[int] = None,
                 seed: Optional[int] = None):
        if isinstance(num_samples_cls, bool) or not isinstance(
                num_samples_cls, numbers.Integral) or num_samples_cls < 1:
            raise ValueError(f'ClassBalancedSampler: num_samples_cls='
                             f'{num_samples_cls!r}, expected a positive '
                             'integer')
        self.num_samples_cls = int(num_samples_cls)
        super().__init__(dataset, num_samples, seed)

    def default_length(self) -> int:
        return int(self.counts.max()) * int((self.counts > 0).sum())

    def class_probs(self) -> np.ndarray:
        return class_sampling_probs(self.counts, 0.0)

    def class_sequence(self, generator: torch.Generator,
                       size: int) -> np.ndarray:
        present = np.flatnonzero(self.counts > 0)
        per_round = len(present) * self.num_samples_cls
        rounds = -(-size // per_round)
        visits = [
            present[torch.randperm(len(present), generator=generator)]
            for _ in range(rounds)
        ]
        return np.repeat(np.concatenate(visits),
                         self.num_samples_cls)[:size]


@DATA_SAMPLERS.register_module()
class SquareRootSampler(ClassRebalancingSampler):
    """Square-root sampling (``q = 1/2``; Mahajan et al. 2018, as compared
    by Kang et al.): each draw's class is chosen independently with
    ``p_j = n_j ** power / sum_i n_i ** power``.

    Args:
        dataset: A single-label classification dataset.
        power (float): ``q``, in [0, 1]. Defaults to 0.5.
        num_samples (int, optional): Draws per epoch. Defaults to the
            dataset size (the authors').
        seed (int, optional): See :class:`ClassRebalancingSampler`.
    """

    def __init__(self,
                 dataset,
                 power: float = 0.5,
                 num_samples: Optional[int] = None,
                 seed: Optional[int] = None):
        if isinstance(power, bool) or not isinstance(
                power, numbers.Real) or not 0 <= power <= 1:
            raise ValueError(f'SquareRootSampler: power={power!r}, expected '
                             'a number in [0, 1]')
        self.power = float(power)
        super().__init__(dataset, num_samples, seed)

    def class_probs(self) -> np.ndarray:
        return class_sampling_probs(self.counts, self.power)

    def class_sequence(self, generator: torch.Generator,
                       size: int) -> np.ndarray:
        return _multinomial(self.class_probs(), generator, size)


@DATA_SAMPLERS.register_module()
class ProgressivelyBalancedSampler(ClassRebalancingSampler):
    """Progressively balanced sampling (Kang et al. 2020): in epoch ``t`` a
    draw's class follows ``(1 - lam_t) p(q=1) + lam_t p(q=0)`` with
    ``lam_t`` from :func:`progressive_lambda`, instance-balanced in the
    first epoch and class-balanced in the last.

    Args:
        dataset: A single-label classification dataset.
        total_epochs (int): Epochs of the training (the config's
            ``train_cfg.max_epochs``).
        num_samples (int, optional): Draws per epoch. Defaults to the
            dataset size (the authors').
        seed (int, optional): See :class:`ClassRebalancingSampler`.
    """

    def __init__(self,
                 dataset,
                 total_epochs: int,
                 num_samples: Optional[int] = None,
                 seed: Optional[int] = None):
        if isinstance(total_epochs, bool) or not isinstance(
                total_epochs, numbers.Integral) or total_epochs < 1:
            raise ValueError(f'ProgressivelyBalancedSampler: total_epochs='
                             f'{total_epochs!r}, expected a positive integer')
        self.total_epochs = int(total_epochs)
        super().__init__(dataset, num_samples, seed)

    def class_probs(self) -> np.ndarray:
        lam = progressive_lambda(self.epoch, self.total_epochs)
        return (1 - lam) * class_sampling_probs(self.counts, 1.0) + \
            lam * class_sampling_probs(self.counts, 0.0)

    def class_sequence(self, generator: torch.Generator,
                       size: int) -> np.ndarray:
        return _multinomial(self.class_probs(), generator, size)
