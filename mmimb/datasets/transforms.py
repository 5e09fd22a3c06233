"""Data transforms for histopathology.

:class:`LoadCodedAnnotations` is mmseg's ``LoadAnnotations`` that refuses
label values its ``label_map`` does not list (mmseg passes them through to
the loss unchanged).

Tissue has no canonical orientation, so the 8 symmetries of the square
(90-degree rotations and flips) are label-preserving. mmseg's
``RandomRotate`` interpolates (it rotates by any angle and fills corners) and
its ``RandomRotFlip`` always pairs an exact rotation with a flip and leaves
``img_shape`` stale on non-square inputs; :class:`RandomRotate90` is the
exact, interpolation-free rotation.
"""
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import TRANSFORMS

from .conversion import IGNORE_INDEX


@TRANSFORMS.register_module()
class LoadCodedAnnotations(LoadAnnotations):
    """mmseg's ``LoadAnnotations`` for label images holding codes that the
    dataset's ``label_map`` turns into class indices: a value the map does
    not list (nor 255, ignore) is an error naming the file, where mmseg
    would pass it through unchanged.

    Required keys: ``seg_map_path``, ``label_map`` (None skips the check),
    ``reduce_zero_label``. Added keys: as ``LoadAnnotations``.

    Args:
        **kwargs: ``LoadAnnotations`` arguments.
    """

    def _load_seg_map(self, results: dict) -> None:
        label_map = results.get('label_map')
        results['label_map'] = None
        super()._load_seg_map(results)
        results['label_map'] = label_map
        if label_map is None:
            return
        raw = results['gt_seg_map']
        present = np.flatnonzero(np.bincount(raw.ravel(), minlength=256))
        unknown = [int(v) for v in present
                   if v not in label_map and v != IGNORE_INDEX]
        if unknown:
            raise ValueError(
                f"label image {results['seg_map_path']!r} holds values "
                f'{unknown} that are not label codes; expected '
                f'{sorted(label_map)} (or {IGNORE_INDEX}, ignore)')
        table = np.arange(256, dtype=np.uint8)
        table[list(label_map)] = list(label_map.values())
        results['gt_seg_map'] = table[raw]


@TRANSFORMS.register_module()
class RandomRotate90(BaseTransform):
    """Rotate the image and every segmentation map by a multiple of 90
    degrees (counter-clockwise), pixel-exact.

    Required keys: ``img``; optional ``seg_fields`` (e.g. ``gt_seg_map``).
    Modified keys: ``img``, ``img_shape``, the maps in ``seg_fields``.
    Added keys: ``rotate90_k`` (number of quarter turns applied).

    With ``prob=0.75`` (the default) each of the 4 orientations is equally
    likely; together with horizontal and vertical ``RandomFlip`` at 0.5 the
    pipeline draws uniformly from the 8 symmetries of the square.

    Args:
        prob: Probability of rotating; a rotation then turns by 1, 2 or 3
            quarter turns with equal probability.
    """

    def __init__(self, prob: float = 0.75) -> None:
        if not 0 <= prob <= 1:
            raise ValueError(f'RandomRotate90 prob={prob}: expected a '
                             'probability in [0, 1]')
        self.prob = prob

    @cache_randomness
    def _quarter_turns(self) -> int:
        if np.random.rand() >= self.prob:
            return 0
        return int(np.random.randint(1, 4))

    def transform(self, results: dict) -> dict:
        k = self._quarter_turns()
        results['rotate90_k'] = k
        if k == 0:
            return results
        results['img'] = np.ascontiguousarray(np.rot90(results['img'], k))
        for key in results.get('seg_fields', []):
            results[key] = np.ascontiguousarray(np.rot90(results[key], k))
        results['img_shape'] = results['img'].shape[:2]
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(prob={self.prob})'
