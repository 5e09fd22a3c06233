"""A classification dataset decoded once into one uint8 tensor, served as
sample indices, for training whose augmentation runs on the device."""
import copy
from typing import List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.dataset import Compose
from mmpretrain.registry import DATASETS, TRANSFORMS
from mmpretrain.structures import DataSample

from .long_tailed import wrapped_dataset
from .sample_labels import single_labels

LOAD_PIPELINE = (dict(type='LoadImageFromFile'), dict(type='PackInputs'))


@DATASETS.register_module()
class ImageBankDataset:
    """A classification dataset whose images are decoded once, into one
    uint8 tensor, and whose items are sample indices.

    ``images`` (N, C, H, W) holds every sample's image as ``pipeline`` gives
    it (by default ``LoadImageFromFile`` + ``PackInputs``: BGR, no
    augmentation); it is decoded on first use, not when the dataset is built
    or its classes are counted. An item is ``dict(inputs=<index>,
    data_samples=DataSample(gt_label=...))``, so a data loader moves a few
    bytes per sample; :class:`~mmimb.engine.ImageBankHook` puts ``images``
    on the model's device and
    :class:`~mmimb.models.ImageBankClsDataPreprocessor` gathers, augments
    and normalises each batch there. With small images (CIFAR: 12,406
    images of 32x32, 38 MB) the CPU then neither decodes nor augments
    during training (docs/gpu_pack.md).

    Like mmengine's dataset wrappers, ``.dataset`` is the wrapped dataset
    and ``metainfo``, ``__len__``, ``get_data_info``, ``get_cat_ids`` and
    ``get_gt_labels`` describe it.

    Args:
        dataset (dict | BaseDataset): A single-label classification dataset
            (wrappers such as ``LongTailedDataset`` included) or its config
            (built in mmpretrain's DATASETS). Its own pipeline is not used.
        pipeline (Sequence[dict]): Transforms from ``get_data_info(i)`` to a
            packed ``inputs`` uint8 tensor (C, H, W), the same size for
            every sample. Defaults to ``LoadImageFromFile`` and
            ``PackInputs``; for in-memory data (mmpretrain's ``CIFAR10``)
            ``[dict(type='PackInputs')]``.
        lazy_init (bool): Defer loading the source's annotations until first
            use. Defaults to False.
    """

    def __init__(self,
                 dataset: Union[dict, object],
                 pipeline: Sequence[dict] = LOAD_PIPELINE,
                 lazy_init: bool = False):
        dataset = wrapped_dataset(dataset, 'ImageBankDataset',
                                  'get_data_info')
        self.dataset = dataset
        self.pipeline = Compose([
            TRANSFORMS.build(dict(t, _scope_=t.get('_scope_', 'mmpretrain')))
            if isinstance(t, dict) else t for t in pipeline
        ])
        self._labels: Optional[np.ndarray] = None
        self._images: Optional[torch.Tensor] = None
        if not lazy_init:
            self.full_init()

    @property
    def metainfo(self) -> dict:
        return copy.deepcopy(self.dataset.metainfo)

    def full_init(self) -> None:
        """Load the source's annotations and labels (no image)."""
        if self._labels is not None:
            return
        if hasattr(self.dataset, 'full_init'):
            self.dataset.full_init()
        self._labels = single_labels(self.dataset, 'ImageBankDataset')

    @property
    def images(self) -> torch.Tensor:
        """All images, (N, C, H, W) uint8, decoded on first access."""
        if self._images is None:
            self.full_init()
            self._images = self._decode()
        return self._images

    def _decode(self) -> torch.Tensor:
        if not len(self):
            raise ValueError(f'ImageBankDataset: {type(self.dataset).__name__}'
                             ' is empty: no image to decode')
        first = None
        out = None
        for idx in range(len(self)):
            image = self.pipeline(self.dataset.get_data_info(idx))['inputs']
            if out is None:
                first = image
                out = torch.empty((len(self), *image.shape), dtype=torch.uint8)
            if not torch.is_tensor(image) or image.dtype != torch.uint8 \
                    or image.shape != first.shape:
                raise ValueError(
                    f'ImageBankDataset: sample {idx} '
                    f'({self.dataset.get_data_info(idx).get("img_path", "")})'
                    f' is {getattr(image, "dtype", type(image))} '
                    f'{tuple(getattr(image, "shape", ()))}; every image must '
                    f'be uint8 {tuple(first.shape)} (like sample 0) for one '
                    'bank; resize them in the pipeline')
            out[idx] = image
        return out

    def get_gt_labels(self) -> np.ndarray:
        self.full_init()
        return self._labels.copy()

    def get_cat_ids(self, idx: int) -> List[int]:
        self.full_init()
        return [int(self._labels[idx])]

    def get_data_info(self, idx: int) -> dict:
        return self.dataset.get_data_info(idx)

    def __getitem__(self, idx: int) -> dict:
        self.full_init()
        idx = int(idx)
        if not -len(self) <= idx < len(self):
            raise IndexError(f'ImageBankDataset: index {idx} out of range '
                             f'for {len(self)} samples')
        idx %= len(self)
        sample = DataSample().set_gt_label(int(self._labels[idx]))
        sample.set_metainfo(dict(sample_idx=idx))
        return dict(inputs=torch.tensor(idx), data_samples=sample)

    def __len__(self) -> int:
        self.full_init()
        return len(self._labels)

    def __repr__(self) -> str:
        state = 'decoded' if self._images is not None else 'not decoded'
        return (f'{type(self).__name__}(dataset={type(self.dataset).__name__}'
                f', {len(self)} samples, images {state})')
