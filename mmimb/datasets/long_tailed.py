"""Long-tailed subsets of classification datasets (CIFAR-10-LT and the
like).

The standard construction (Cui et al., CVPR 2019; the code of LDAM-DRW,
Cao et al., NeurIPS 2019, used by most later work): class ``i`` of ``C``
keeps ``int(n_max * (1 / IF) ** (i / (C - 1)))`` samples, an exponential
profile from ``n_max`` down to ``n_max / IF``, drawn at random with a fixed
seed. CIFAR-10-LT with imbalance factor 100 keeps 5000, 2997, 1796, 1077,
645, 387, 232, 139, 83 and 50 images (12,406 in all).
"""
import copy
import numbers
from typing import List, Optional, Union

import numpy as np
from mmpretrain.registry import DATASETS

from .sample_labels import single_labels


def wrapped_dataset(dataset: Union[dict, object], wrapper: str,
                    method: str):
    """The dataset a wrapper holds: ``dataset`` itself, or built from its
    config among mmpretrain's datasets, whatever scope the wrapper was built
    from (e.g. as mmimb.LongTailedDataset under mmseg).

    Raises:
        TypeError: If it has no ``metainfo`` or no ``method``, naming
            ``wrapper``.
    """
    if isinstance(dataset, dict):
        dataset = DATASETS.build(
            dict(dataset, _scope_=dataset.get('_scope_', 'mmpretrain')))
    if not hasattr(dataset, method) or not hasattr(dataset, 'metainfo'):
        raise TypeError(f'{wrapper}: dataset must be a dataset config or a '
                        f'dataset, got {type(dataset)}')
    return dataset


def long_tailed_counts(max_per_class: int, imbalance_factor: float,
                       num_classes: int) -> List[int]:
    """Samples per class of the exponential long-tailed profile.

    Class ``i`` gets ``int(max_per_class * (1 / IF) ** (i / (C - 1)))``,
    LDAM-DRW's expression (truncation, not rounding), so the counts match
    the published CIFAR-LT subsets exactly.

    Args:
        max_per_class: Samples of class 0, the most frequent.
        imbalance_factor: Ratio of the first class's count to the last's
            (10, 50, 100, 200 in the literature); 1 keeps the set balanced.
        num_classes: Number of classes.

    Returns:
        list[int]: One count per class, non-increasing.
    """
    if isinstance(imbalance_factor, bool) or not isinstance(
            imbalance_factor, numbers.Real) or not imbalance_factor >= 1:
        raise ValueError(f'imbalance_factor={imbalance_factor!r}: expected a '
                         'number >= 1 (n_max / n_min)')
    if not isinstance(max_per_class, numbers.Integral) or max_per_class < 1:
        raise ValueError(f'max_per_class={max_per_class!r}: expected a '
                         'positive integer')
    if num_classes == 1:
        return [int(max_per_class)]
    ratio = 1.0 / imbalance_factor
    return [
        int(max_per_class * ratio**(i / (num_classes - 1.0)))
        for i in range(num_classes)
    ]


@DATASETS.register_module()
class LongTailedDataset:
    """A long-tailed subset of a single-label classification dataset.

    Keeps, for class ``i`` of ``C``, ``int(n_max * (1 / IF) ** (i /
    (C - 1)))`` of its samples (:func:`long_tailed_counts`), chosen at
    random with ``seed``: the same seed gives the same subset. The sampling
    follows LDAM-DRW's ``IMBALANCECIFAR10`` (a ``numpy`` random state seeded
    once, one shuffle per class in class order, the first ``n_i`` indices
    kept, classes concatenated), so on a source in the same order (the
    official CIFAR binaries, as mmpretrain's ``CIFAR10`` reads them) it
    selects the same images.

    It is an mmengine-style dataset wrapper: ``.dataset`` is the wrapped
    dataset, and ``metainfo``, ``__len__``, ``get_data_info``,
    ``get_cat_ids`` and ``get_gt_labels`` (labels without decoding any
    image) describe the subset.

    Args:
        dataset (dict | BaseDataset): The balanced (or any) source dataset,
            or its config (built in mmpretrain's DATASETS).
        imbalance_factor (float): ``n_max / n_min``; 1 keeps ``n_max`` per
            class.
        seed (int): Seed of the selection. Defaults to 0 (LDAM-DRW's).
        max_per_class (int, optional): ``n_max``, the count of class 0.
            Defaults to the smallest class size of the source (5000 for
            CIFAR-10), so that every class can supply its share.
        lazy_init (bool): Defer loading the source's annotations until
            first use. Defaults to False.
    """

    def __init__(self,
                 dataset: Union[dict, object],
                 imbalance_factor: float,
                 seed: int = 0,
                 max_per_class: Optional[int] = None,
                 lazy_init: bool = False):
        dataset = wrapped_dataset(dataset, 'LongTailedDataset',
                                  '__getitem__')
        # Check the arguments now rather than after loading the source.
        long_tailed_counts(1 if max_per_class is None else max_per_class,
                           imbalance_factor, 1)
        self.dataset = dataset
        self.imbalance_factor = float(imbalance_factor)
        self.seed = int(seed)
        self.max_per_class = max_per_class
        self._metainfo = dataset.metainfo
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    @property
    def metainfo(self) -> dict:
        return copy.deepcopy(self._metainfo)

    def full_init(self) -> None:
        """Select the subset (once)."""
        if self._fully_initialized:
            return
        if hasattr(self.dataset, 'full_init'):
            self.dataset.full_init()
        labels = single_labels(self.dataset, 'LongTailedDataset')
        if labels.size == 0:
            raise ValueError('LongTailedDataset: the source dataset '
                             f'{type(self.dataset).__name__} is empty')
        classes = self._metainfo.get('classes')
        num_classes = len(classes) if classes else int(labels.max()) + 1
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(
                f'LongTailedDataset: labels of {type(self.dataset).__name__} '
                f'span {labels.min()}..{labels.max()} but the dataset has '
                f'{num_classes} classes')
        available = np.bincount(labels, minlength=num_classes)
        empty = np.flatnonzero(available == 0).tolist()
        if empty:
            raise ValueError(
                f'LongTailedDataset: classes {empty} have no samples in '
                f'{type(self.dataset).__name__}; every class needs at least '
                'one')
        n_max = int(available.min()) if self.max_per_class is None \
            else self.max_per_class
        counts = long_tailed_counts(n_max, self.imbalance_factor,
                                    num_classes)
        short = [(c, counts[c], int(available[c]))
                 for c in range(num_classes) if counts[c] > available[c]]
        if short:
            raise ValueError(
                'LongTailedDataset: max_per_class='
                f'{self.max_per_class} asks for more samples than exist: '
                + ', '.join(f'class {c} needs {need}, has {have}'
                            for c, need, have in short[:5]))
        if min(counts) < 1:
            raise ValueError(
                f'LongTailedDataset: imbalance_factor={self.imbalance_factor}'
                f' with n_max={n_max} leaves classes without samples '
                f'(counts {counts}); lower the factor')
        rng = np.random.RandomState(self.seed)
        indices = []
        for cls, count in enumerate(counts):
            members = np.flatnonzero(labels == cls)
            rng.shuffle(members)
            indices.append(members[:count])
        self.indices = np.concatenate(indices).astype(np.int64)
        self.class_counts = counts
        self._labels = labels[self.indices]
        self._fully_initialized = True

    def _check_init(self) -> None:
        if not self._fully_initialized:
            self.full_init()

    def get_gt_labels(self) -> np.ndarray:
        """Labels of the subset, in its order, without loading images."""
        self._check_init()
        return self._labels.copy()

    def get_cat_ids(self, idx: int) -> List[int]:
        self._check_init()
        return [int(self._labels[idx])]

    def get_data_info(self, idx: int) -> dict:
        self._check_init()
        return self.dataset.get_data_info(int(self.indices[idx]))

    def __getitem__(self, idx: int):
        self._check_init()
        return self.dataset[int(self.indices[idx])]

    def __len__(self) -> int:
        self._check_init()
        return len(self.indices)

    def __repr__(self) -> str:
        counts = getattr(self, 'class_counts', 'not initialised')
        return (f'{type(self).__name__}(dataset={type(self.dataset).__name__}'
                f', imbalance_factor={self.imbalance_factor}, seed='
                f'{self.seed}, class_counts={counts})')
