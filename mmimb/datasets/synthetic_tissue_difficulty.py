"""How hard the generated tissue classes are to tell apart, measured.

A class's ``difficulty`` setting moves its look towards its confuser's; how
confusable two classes then are depends on their own looks too. This module
measures it the same way for every pair of classes: images painted in
stripes of every class are cut into ``patch`` x ``patch`` squares (8 px: the
stride of the CPU DFA model's image tokens), each square is described by the
mean and the standard deviation of its three colour channels (colour and
texture: the nuclei dots raise the spread), and the error of the best linear
classifier of those 6 numbers between two classes (Fisher's linear
discriminant with the pooled covariance, fitted on the squares of half of
the images, tested on the other half, equal priors) is their *overlap*: 0
for classes a linear rule separates, 0.5 for indistinguishable ones. A
class's measured difficulty is its largest overlap with any other class.
Single pixels (``patch=1``, the 3 colour values) give the harder per-pixel
overlap.
"""
from typing import Dict, List, Optional, Sequence

import numpy as np

from .synthetic_tissue import TissueGenerator


def _stripe_features(images: np.ndarray, num_classes: int,
                     patch: int) -> list:
    """Per class, the features of the patch x patch squares that lie wholly
    inside its stripe of ``images`` (n, H, W, 3): (M, 6) mean and standard
    deviation per channel, or (M, 3) colours for ``patch=1``."""
    n, size = images.shape[:2]
    rows = size // patch
    width = size // num_classes
    features = []
    for k in range(num_classes):
        first = -(-k * width // patch)  # ceil: the first square inside
        last = ((k + 1) * width) // patch
        squares = images[:, :rows * patch, first * patch:last * patch]
        squares = squares.astype(np.float64).reshape(
            n, rows, patch, last - first, patch, 3).transpose(
                0, 1, 3, 2, 4, 5).reshape(-1, patch * patch, 3)
        features.append(squares[:, 0] if patch == 1 else np.concatenate(
            [squares.mean(1), squares.std(1)], axis=1))
    return features


def linear_overlap(train_a: np.ndarray, train_b: np.ndarray,
                   test_a: np.ndarray, test_b: np.ndarray) -> float:
    """Test error of Fisher's linear discriminant between two classes,
    fitted on ``train_a`` and ``train_b`` (rows are samples), measured on
    ``test_a`` and ``test_b`` with equal priors."""
    mean_a, mean_b = train_a.mean(0), train_b.mean(0)
    pooled = np.cov(np.concatenate([train_a - mean_a, train_b - mean_b]).T)
    pooled = np.atleast_2d(pooled) + 1e-6 * np.eye(train_a.shape[1])
    w = np.linalg.solve(pooled, mean_a - mean_b)
    threshold = w @ (mean_a + mean_b) / 2
    return float(0.5 * ((test_a @ w < threshold).mean() +
                        (test_b @ w >= threshold).mean()))


def appearance_overlap(generator: TissueGenerator,
                       patch: int = 8,
                       num_images: int = 32,
                       seed: int = 0) -> np.ndarray:
    """Pairwise overlap of the classes' looks.

    Every image is painted in vertical stripes, one per class, so that all
    classes share its stain jitter as they do in a generated sample; the
    squares of the first half of the images fit the classifier, those of
    the second half measure its error.

    Args:
        generator: The generator whose classes are measured (its image size,
            noise, dots and stain jitter are used as they are).
        patch: Side of the squares the classifier sees (1: single pixels).
        num_images: Images painted (at least 2).
        seed: Seed of the painted images (independent of the dataset's).

    Returns:
        np.ndarray: (C, C) symmetric overlaps in [0, 0.5] (linear-classifier
        test error between classes i and j), with NaN on the diagonal.

    Raises:
        ValueError: If a class's stripe (``img_size // C`` px) cannot hold a
            whole square.
    """
    size, num = generator.img_size, len(generator.specs)
    width = size // num
    if width < 2 * patch - 1:
        raise ValueError(
            f'appearance_overlap: stripes of {width} px ({num} classes in '
            f'{size} px images) cannot hold a whole {patch} px square; '
            f'use img_size >= {num * (2 * patch - 1)} or a smaller patch')
    if num_images < 2:
        raise ValueError(f'appearance_overlap: num_images={num_images}; '
                         'expected at least 2 (half fit, half test)')
    label = np.minimum(np.arange(size) // width, num - 1).astype(np.uint8)
    label = np.broadcast_to(label, (size, size))
    images = np.stack([
        generator.render(label, np.random.default_rng((seed, i)))
        for i in range(num_images)
    ])
    half = num_images // 2
    fit = _stripe_features(images[:half], num, patch)
    test = _stripe_features(images[half:], num, patch)
    overlap = np.full((num, num), np.nan)
    for i in range(num):
        for j in range(i + 1, num):
            overlap[i, j] = overlap[j, i] = linear_overlap(
                fit[i], fit[j], test[i], test[j])
    return overlap


def measured_difficulty(overlap: np.ndarray) -> np.ndarray:
    """Each class's largest overlap with another class, (C, )."""
    return np.nanmax(overlap, axis=1)


def calibrate_difficulty(class_specs: Sequence[dict],
                         targets: Dict[str, float],
                         patch: int = 8,
                         tolerance: float = 0.005,
                         **generator_kwargs) -> List[dict]:
    """Set the ``difficulty`` of the named classes so that their overlap
    with their confuser is the target.

    The overlap grows with the difficulty (the look moves towards the
    confuser's), so each class's setting is found by bisection on [0, 1].

    Args:
        class_specs: As for :class:`TissueGenerator`.
        targets: Class name -> target overlap with its confuser, in
            (0, 0.5).
        patch: Square side of :func:`appearance_overlap`.
        tolerance: Stop when the overlap is this close to the target.
        **generator_kwargs: Other :class:`TissueGenerator` arguments
            (``img_size``, ``noise_std``, ...).

    Returns:
        list[dict]: Copies of the specs with the calibrated difficulties
        (rounded to 3 decimals).

    Raises:
        ValueError: For an unknown class, a target outside (0, 0.5), or a
            target the class cannot reach even at difficulty 1.
    """
    specs = [dict(s) for s in class_specs]
    names = [s['name'] for s in specs]
    for name, target in targets.items():
        if name not in names:
            raise ValueError(f'calibrate_difficulty: unknown class {name!r}; '
                             f'classes are {names}')
        if not 0 < target < 0.5:
            raise ValueError(f'calibrate_difficulty: target {target} for '
                             f'{name!r}; expected a value in (0, 0.5)')
        k = names.index(name)

        def overlap_at(d: float) -> float:
            specs[k]['difficulty'] = d
            generator = TissueGenerator(specs, **generator_kwargs)
            confuser = generator.specs[k]['confuser']
            return appearance_overlap(generator, patch)[k, confuser]

        low, high = 0.0, 1.0
        if overlap_at(high) < target - tolerance:
            raise ValueError(
                f'calibrate_difficulty: {name!r} reaches only overlap '
                f'{overlap_at(high):.3f} at difficulty 1, below the target '
                f'{target}')
        d = 0.5
        for _ in range(20):
            d = (low + high) / 2
            got = overlap_at(d)
            if abs(got - target) <= tolerance:
                break
            low, high = (d, high) if got < target else (low, d)
        specs[k]['difficulty'] = round(d, 3)
    return specs


def overlap_table(generator: TissueGenerator,
                  patches: Sequence[int] = (1, 8),
                  num_images: Optional[int] = None) -> str:
    """A markdown table: each class's frequency, difficulty setting,
    confuser, overlap with it and measured difficulty, per square size."""
    kwargs = {} if num_images is None else dict(num_images=num_images)
    overlaps = {p: appearance_overlap(generator, p, **kwargs)
                for p in patches}
    names = generator.class_names
    head = ['class', 'freq', 'difficulty setting', 'confuser']
    for p in patches:
        what = 'pixel' if p == 1 else f'{p}x{p} patch'
        head += [f'{what} overlap with confuser',
                 f'{what} measured difficulty (nearest class)']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + ' --- |' * len(head)]
    for k, spec in enumerate(generator.specs):
        # The confuser matters only for a class its difficulty moves.
        confuser = spec['confuser'] if spec['difficulty'] > 0 else None
        cells = [spec['name'], f"{spec['freq']:.3f}",
                 f"{spec['difficulty']:.3f}",
                 '—' if confuser is None else names[confuser]]
        for p in patches:
            nearest = int(np.nanargmax(overlaps[p][k]))
            cells += ['—' if confuser is None else
                      f'{overlaps[p][k, confuser]:.3f}',
                      f'{overlaps[p][k, nearest]:.3f} ({names[nearest]})']
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)
