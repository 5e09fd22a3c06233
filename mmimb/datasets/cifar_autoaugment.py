"""AutoAugment's CIFAR-10 policy (Cubuk et al., CVPR 2019) as BALMS trains
with it: DeepVoltaire's ``CIFAR10Policy`` (the implementation BALMS copies,
its ``data/autoaugment.py``) in mmpretrain's transforms.

25 sub-policies of two operations, each with its probability and a
magnitude index ``i`` of 0..9 that DeepVoltaire's tables map to: shear
``0.3 i / 9``, translate ``150 / 331 * i / 9`` of the side, rotate
``30 i / 9`` degrees counter-clockwise only (negative angles for mmcv, whose
positive angles turn clockwise), colour / contrast / sharpness / brightness
factors ``1 +- 0.9 i / 9``, posterize ``round(linspace(8, 4, 10))[i]`` bits,
solarize at ``256 - 256 i / 9``; geometric operations fill with grey (128).
Our reading: OpenCV (mmcv) rather than PIL applies the operations.
"""
from typing import Optional

from mmpretrain.datasets.transforms import AutoAugment
from mmpretrain.registry import TRANSFORMS

# yapf: disable
CIFAR10_POLICY = [
    [dict(type='Invert', prob=0.1),
     dict(type='Contrast', magnitude=0.9 / 9 * 6, prob=0.2)],
    [dict(type='Rotate', angle=-30 / 9 * 2, prob=0.7, random_negative_prob=0.),
     dict(
         type='Translate',
         magnitude=150 / 331 / 9 * 9,
         prob=0.3,
         direction='horizontal')],
    [dict(type='Sharpness', magnitude=0.9 / 9 * 1, prob=0.8),
     dict(type='Sharpness', magnitude=0.9 / 9 * 3, prob=0.9)],
    [dict(type='Shear', magnitude=0.3 / 9 * 8, prob=0.5, direction='vertical'),
     dict(
         type='Translate',
         magnitude=150 / 331 / 9 * 9,
         prob=0.7,
         direction='vertical')],
    [dict(type='AutoContrast', prob=0.5),
     dict(type='Equalize', prob=0.9)],
    [dict(type='Shear', magnitude=0.3 / 9 * 7, prob=0.2, direction='vertical'),
     dict(type='Posterize', bits=5, prob=0.3)],
    [dict(type='ColorTransform', magnitude=0.9 / 9 * 3, prob=0.4),
     dict(type='Brightness', magnitude=0.9 / 9 * 7, prob=0.6)],
    [dict(type='Sharpness', magnitude=0.9 / 9 * 9, prob=0.3),
     dict(type='Brightness', magnitude=0.9 / 9 * 9, prob=0.7)],
    [dict(type='Equalize', prob=0.6),
     dict(type='Equalize', prob=0.5)],
    [dict(type='Contrast', magnitude=0.9 / 9 * 7, prob=0.6),
     dict(type='Sharpness', magnitude=0.9 / 9 * 5, prob=0.6)],
    [dict(type='ColorTransform', magnitude=0.9 / 9 * 7, prob=0.7),
     dict(
         type='Translate',
         magnitude=150 / 331 / 9 * 8,
         prob=0.5,
         direction='horizontal')],
    [dict(type='Equalize', prob=0.3),
     dict(type='AutoContrast', prob=0.4)],
    [dict(
         type='Translate',
         magnitude=150 / 331 / 9 * 3,
         prob=0.4,
         direction='vertical'),
     dict(type='Sharpness', magnitude=0.9 / 9 * 6, prob=0.2)],
    [dict(type='Brightness', magnitude=0.9 / 9 * 6, prob=0.9),
     dict(type='ColorTransform', magnitude=0.9 / 9 * 8, prob=0.2)],
    [dict(type='Solarize', thr=256 - 256 / 9 * 2, prob=0.5),
     dict(type='Invert', prob=0.0)],
    [dict(type='Equalize', prob=0.2),
     dict(type='AutoContrast', prob=0.6)],
    [dict(type='Equalize', prob=0.2),
     dict(type='Equalize', prob=0.6)],
    [dict(type='ColorTransform', magnitude=0.9 / 9 * 9, prob=0.9),
     dict(type='Equalize', prob=0.6)],
    [dict(type='AutoContrast', prob=0.8),
     dict(type='Solarize', thr=256 - 256 / 9 * 8, prob=0.2)],
    [dict(type='Brightness', magnitude=0.9 / 9 * 3, prob=0.1),
     dict(type='ColorTransform', magnitude=0.9 / 9 * 0, prob=0.7)],
    [dict(type='Solarize', thr=256 - 256 / 9 * 5, prob=0.4),
     dict(type='AutoContrast', prob=0.9)],
    [dict(
         type='Translate',
         magnitude=150 / 331 / 9 * 9,
         prob=0.9,
         direction='vertical'),
     dict(
         type='Translate',
         magnitude=150 / 331 / 9 * 9,
         prob=0.7,
         direction='vertical')],
    [dict(type='AutoContrast', prob=0.9),
     dict(type='Solarize', thr=256 - 256 / 9 * 3, prob=0.8)],
    [dict(type='Equalize', prob=0.8),
     dict(type='Invert', prob=0.1)],
    [dict(
         type='Translate',
         magnitude=150 / 331 / 9 * 9,
         prob=0.7,
         direction='vertical'),
     dict(type='AutoContrast', prob=0.9)],
]
# yapf: enable


@TRANSFORMS.register_module()
class CIFAR10AutoAugment(AutoAugment):
    """mmpretrain's ``AutoAugment`` with :data:`CIFAR10_POLICY`: one of the
    25 sub-policies, chosen uniformly, per image.

    Args:
        hparams (dict, optional): Defaults for the operations. Defaults to
            ``dict(pad_val=128)`` (DeepVoltaire's grey fill).
    """

    def __init__(self, hparams: Optional[dict] = None):
        # The operations are mmpretrain's, whatever scope builds this.
        super().__init__(
            policies=[[dict(op, _scope_='mmpretrain') for op in sub]
                      for sub in CIFAR10_POLICY],
            hparams=dict(pad_val=128) if hparams is None else hparams)
