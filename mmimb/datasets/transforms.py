"""Data transforms for histopathology.

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
from mmseg.registry import TRANSFORMS


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
