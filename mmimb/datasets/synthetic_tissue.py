"""H&E-like synthetic tissue with class frequency and difficulty set apart.

Real histopathology data cannot separate the two reasons a class is hard to
segment: being rare and looking like something else. This generator sets them
independently per class, so a claim such as "the learned DFA bias tracks
difficulty, not frequency" can be checked against ground truth.

The generative model (ours; documented in docs/datasets.md):

* Layout. Each class k has a smooth random field (low-resolution noise,
  bicubically upsampled). Classes from rarest to most common take the pixels
  where their field is highest among those still free: those above a
  threshold that a fraction ``f_k`` of a 1-in-16 grid sample (every 4th row
  and column) exceeds, so about ``f_k * H * W`` of them (not exactly), with
  ``f_k`` the class frequency jittered per image by a log-normal factor
  (``freq_jitter``); the most common class takes the rest. Regions are
  therefore blobs of realistic size, and the expected pixel frequency of
  class k is close to ``f_k``.
* Appearance. A class has a mean colour and a density of dark "nuclei"
  dots. Its difficulty ``d_k`` in [0, 1] moves both a fraction ``d_k`` of
  the way towards those of its confuser class (``confuser`` in its spec;
  by default class 0 for every class but 0, class 1 for class 0): 0 keeps
  its own look, 1 makes it indistinguishable. Every pixel gets Gaussian
  noise and every image a small stain jitter.

``d_k`` is a setting, not a measure: how hard a class is to tell apart
depends on its own look too. :func:`~mmimb.datasets.appearance_overlap`
measures it, as the error of the best linear classifier of small patches
between two classes, and :func:`~mmimb.datasets.calibrate_difficulty` sets
``d_k`` to reach a measured target.
"""
import math
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

DEFAULT_CLASS_SPECS = (
    dict(name='stroma', freq=0.50, difficulty=0.0,
         color=(232, 160, 196), dots=0.02),
    dict(name='tumor', freq=0.30, difficulty=0.6,
         color=(150, 82, 170), dots=0.15),
    dict(name='lymphocytes', freq=0.04, difficulty=0.0,
         color=(80, 48, 140), dots=0.40),
    dict(name='necrosis', freq=0.04, difficulty=0.6,
         color=(236, 206, 214), dots=0.06),
    dict(name='fat', freq=0.12, difficulty=0.3,
         color=(250, 244, 250), dots=0.0),
)
# Colours for classes a user adds without giving one (H&E-like hues).
_EXTRA_COLORS = ((200, 120, 180), (120, 60, 150), (245, 225, 235),
                 (170, 100, 190), (215, 140, 200), (100, 50, 120))
_DOT_COLOR = np.array((60, 20, 90), dtype=np.float32)
# Label colours for drawing masks: distinct, unlike the tissue colours.
_PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40),
            (148, 103, 189), (140, 86, 75), (227, 119, 194), (127, 127, 127),
            (188, 189, 34), (23, 190, 207))


def _confuser_index(spec: dict, k: int, names: List[str]) -> int:
    confuser = spec.get('confuser', 1 if k == 0 else 0)
    index = names.index(confuser) if confuser in names else confuser
    if not isinstance(index, int) or isinstance(index, bool) or \
            not 0 <= index < len(names) or index == k:
        raise ValueError(
            f"class_specs[{k}] ({spec['name']!r}) has confuser="
            f'{confuser!r}; expected the name or index of another class '
            f'(one of {names})')
    return index


def _validate_specs(class_specs: Sequence[dict]) -> List[dict]:
    if len(class_specs) < 2:
        raise ValueError('SyntheticTissueDataset needs at least 2 classes, '
                         f'got {len(class_specs)}')
    specs = []
    for k, spec in enumerate(class_specs):
        missing = {'name', 'freq', 'difficulty'} - set(spec)
        if missing:
            raise ValueError(f'class_specs[{k}] lacks {sorted(missing)}; '
                             'each class needs name, freq and difficulty')
        if not spec['freq'] > 0:
            raise ValueError(f"class_specs[{k}] ({spec['name']!r}) has freq="
                             f"{spec['freq']}; expected a positive number")
        if not 0 <= spec['difficulty'] <= 1:
            raise ValueError(
                f"class_specs[{k}] ({spec['name']!r}) has difficulty="
                f"{spec['difficulty']}; expected a value in [0, 1]")
        full = dict(color=_EXTRA_COLORS[k % len(_EXTRA_COLORS)], dots=0.1)
        full.update(spec)
        specs.append(full)
    names = [s['name'] for s in specs]
    for k, spec in enumerate(specs):
        spec['confuser'] = _confuser_index(spec, k, names)
    total = sum(s['freq'] for s in specs)
    if not math.isclose(total, 1.0, rel_tol=1e-3):
        raise ValueError(f'class_specs frequencies sum to {total:.4f}; '
                         'expected 1')
    return specs


class TissueGenerator:
    """Deterministic generator of (image, label) pairs.

    Args:
        class_specs: One dict per class with ``name``, ``freq`` (expected
            pixel fraction, summing to 1 over classes) and ``difficulty`` in
            [0, 1]; optional ``color`` (RGB), ``dots`` (dot density) and
            ``confuser`` (name or index of the class ``difficulty`` moves
            it towards).
        img_size: Side of the square images.
        seed: Dataset seed; image ``i`` depends only on ``(seed, i)``.
        noise_std: Per-pixel Gaussian noise, in 0-255 units.
        freq_jitter: Standard deviation of the per-image log-normal factor
            on each class frequency.
        field_res: Resolution of the smooth layout fields; larger gives
            smaller blobs.

    ``generator(index)`` returns an RGB uint8 image (H, W, 3) and a uint8
    label map (H, W).
    """

    def __init__(self,
                 class_specs: Sequence[dict] = DEFAULT_CLASS_SPECS,
                 img_size: int = 256,
                 seed: int = 0,
                 noise_std: float = 14.0,
                 freq_jitter: float = 0.3,
                 field_res: int = 6):
        self.specs = _validate_specs(class_specs)
        self.img_size = img_size
        self.seed = seed
        self.noise_std = noise_std
        self.freq_jitter = freq_jitter
        self.field_res = field_res
        self.freq = np.array([s['freq'] for s in self.specs])
        self.difficulty = np.array([s['difficulty'] for s in self.specs])
        own_color = np.array([s['color'] for s in self.specs], np.float32)
        own_dots = np.array([s['dots'] for s in self.specs], np.float32)
        confuser = np.array([s['confuser'] for s in self.specs])
        d = self.difficulty.astype(np.float32)[:, None]
        self.colors = (1 - d) * own_color + d * own_color[confuser]
        self.dots = (1 - d[:, 0]) * own_dots + d[:, 0] * own_dots[confuser]
        # Rarest first, so that rare classes get exact, compact regions.
        self.order = np.argsort(self.freq, kind='stable')
        self.noise_bank = noise_std * np.random.default_rng(
            (seed, 2**31)).standard_normal((2 * img_size, 2 * img_size, 3),
                                           dtype=np.float32)

    @property
    def class_names(self) -> Tuple[str, ...]:
        return tuple(s['name'] for s in self.specs)

    def _layout(self, rng: np.random.Generator) -> np.ndarray:
        size, num = self.img_size, len(self.specs)
        freq = self.freq * np.exp(self.freq_jitter * rng.standard_normal(num))
        freq = freq / freq.sum()
        coarse = rng.standard_normal(
            (self.field_res, self.field_res, num)).astype(np.float32)
        # One resize for all classes (OpenCV takes up to 512 channels).
        fields = cv2.resize(
            coarse, (size, size), interpolation=cv2.INTER_CUBIC).reshape(
                size, size, num)
        label = np.full((size, size), self.order[-1], dtype=np.uint8)
        free = np.ones((size, size), dtype=bool)
        for k in self.order[:-1]:
            field = fields[..., k].copy()
            field[~free] = -np.inf
            # The threshold comes from a 1-in-16 grid sample of the pixels:
            # exact counts are not needed, only the expected frequency.
            sample = field[::4, ::4].ravel()
            n = int(round(freq[k] * sample.size))
            if n == 0:
                continue
            threshold = np.partition(sample, sample.size - n)[sample.size - n]
            chosen = field >= threshold
            label[chosen] = k
            free &= ~chosen
        return label

    def _noise(self, rng: np.random.Generator) -> np.ndarray:
        # A crop of a fixed noise bank at a random offset: i.i.d. noise per
        # image at a fraction of the cost of drawing 3 * H * W normals.
        size = self.img_size
        y, x = rng.integers(0, size, 2)
        return self.noise_bank[y:y + size, x:x + size]

    def __call__(self, index: int) -> Tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng((self.seed, index))
        label = self._layout(rng)
        return self.render(label, rng), label

    def render(self, label: np.ndarray,
               rng: np.random.Generator) -> np.ndarray:
        """Paint the RGB uint8 image (H, W, 3) of a label map (H, W) of
        side ``img_size``."""
        size = self.img_size
        stain = 1 + 0.04 * rng.standard_normal(3).astype(np.float32)
        lut = np.zeros((256, 1, 3), np.uint8)
        lut[:len(self.colors), 0] = np.clip(self.colors * stain, 0, 255)
        img = cv2.LUT(cv2.merge([label] * 3), lut).astype(np.float32)
        dots = rng.random((size, size), dtype=np.float32) < self.dots[label]
        dot_mask = cv2.GaussianBlur(dots.astype(np.float32), (3, 3), 0.8)
        img += dot_mask[..., None] * 2.0 * (_DOT_COLOR - img)
        img += self._noise(rng)
        return np.clip(img, 0, 255).astype(np.uint8)


@DATASETS.register_module()
class SyntheticTissueDataset(BaseSegDataset):
    """Generated H&E-like tissue segmentation with known class statistics.

    Images are produced on the fly from ``(seed, index)`` (no files), in
    BGR order like images read by ``LoadImageFromFile``, with their label
    maps already in ``gt_seg_map``: pipelines start after the loading steps.
    ``metainfo`` carries ``class_freq`` (nominal pixel frequency) and
    ``class_difficulty`` per class.

    Args:
        num_samples: Number of images.
        img_size: Side of the square images.
        seed: Seed of the dataset; use different seeds for train and val.
        class_specs: See :class:`TissueGenerator`; defaults to 5 classes
            with a common-easy, common-hard, rare-easy, rare-hard and a
            medium class.
        noise_std, freq_jitter, field_res: See :class:`TissueGenerator`.
        pipeline: Transforms applied after generation.
        **kwargs: Other :class:`BaseSegDataset` arguments.
    """

    METAINFO = dict(
        classes=tuple(s['name'] for s in DEFAULT_CLASS_SPECS),
        palette=[list(c) for c in _PALETTE[:len(DEFAULT_CLASS_SPECS)]])

    def __init__(self,
                 num_samples: int = 100,
                 img_size: int = 256,
                 seed: int = 0,
                 class_specs: Sequence[dict] = DEFAULT_CLASS_SPECS,
                 noise_std: float = 14.0,
                 freq_jitter: float = 0.3,
                 field_res: int = 6,
                 pipeline: Optional[list] = None,
                 **kwargs):
        if num_samples < 1:
            raise ValueError(f'num_samples must be >= 1, got {num_samples}')
        self.num_samples = num_samples
        self.generator = TissueGenerator(class_specs, img_size, seed,
                                         noise_std, freq_jitter, field_res)
        metainfo = dict(
            classes=self.generator.class_names,
            palette=[
                list(_PALETTE[k % len(_PALETTE)])
                for k in range(len(self.generator.specs))
            ],
            class_freq=self.generator.freq.tolist(),
            class_difficulty=self.generator.difficulty.tolist())
        metainfo.update(kwargs.pop('metainfo', None) or {})
        super().__init__(
            pipeline=pipeline or [], metainfo=metainfo, **kwargs)

    @classmethod
    def get_label_map(cls, new_classes=None):
        # Labels are generated in the order of ``class_specs``: never remap.
        return None

    def load_data_list(self) -> List[dict]:
        return [
            dict(
                sample_idx=i,
                img_path=f'synthetic_tissue/seed{self.generator.seed}/{i}.png',
                seg_map_path=None,
                label_map=None,
                reduce_zero_label=False,
                seg_fields=[]) for i in range(self.num_samples)
        ]

    def get_data_info(self, idx: int) -> dict:
        info = super().get_data_info(idx)
        img, label = self.generator(info['sample_idx'])
        info.update(
            img=np.ascontiguousarray(img[..., ::-1]),
            gt_seg_map=label,
            ori_shape=label.shape,
            img_shape=label.shape,
            seg_fields=['gt_seg_map'])
        return info
