"""Class priors that initialise (or fix) the Dynamic Focal Attention bias.

A prior ``p`` has one value per class and enters the attention logits as an
additive bias, so ``p_c = log w_c`` scales the attention every pixel pays to
class c's token by ``w_c`` before renormalisation. All priors here give rare
(or hard) classes larger values than common (or easy) ones.

Logs of 0 are avoided by a documented clamp: the argument of every log
(``1 - f``, ``f``, ``1 - Dice``) is clamped to at least ``PRIOR_EPS``, which
bounds every prior by ``gamma * |log PRIOR_EPS|`` (27.6 for gamma 2), well
inside the fp16 range.
"""
import json
import os.path as osp
from typing import Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor

from mmimb.utils import load_class_freq, per_class_vector

PRIOR_EPS = 1e-6
PRIORS = ('focal', 'inverse_log_freq', 'difficulty')

ArrayLike = Union[str, Sequence[float], np.ndarray, Tensor]


def _as_unit_interval(values: ArrayLike,
                      name: str,
                      num_classes: Optional[int] = None) -> Tensor:
    values = per_class_vector(values, name, num_classes)
    if (values < 0).any() or (values > 1).any():
        raise ValueError(f'{name} must hold values in [0, 1], got '
                         f'{values.tolist()}')
    return values


def focal_prior(freq: ArrayLike, gamma: float = 2.0) -> Tensor:
    """Focal-style frequency prior ``gamma * log(1 - f_c)`` (DFA reference
    code).

    Args:
        freq: Pixel frequency per class, each in [0, 1].
        gamma: Focusing strength.

    Returns:
        Tensor: float64, shape (C,).
    """
    freq = _as_unit_interval(freq, 'freq')
    return gamma * torch.log((1 - freq).clamp(min=PRIOR_EPS))


def inverse_log_freq_prior(freq: ArrayLike) -> Tensor:
    """Inverse log-frequency prior ``-log f_c``.

    Args:
        freq: Pixel frequency per class, each in [0, 1].

    Returns:
        Tensor: float64, shape (C,).
    """
    freq = _as_unit_interval(freq, 'freq')
    return -torch.log(freq.clamp(min=PRIOR_EPS))


def difficulty_prior(dice: ArrayLike, gamma: float = 2.0) -> Tensor:
    """Difficulty prior ``gamma * log(1 - Dice_c)`` from a baseline model's
    per-class Dice (HCFA): easy classes get large negative values, a class
    the baseline misses entirely (Dice 0) gets 0.

    Args:
        dice: Per-class Dice in [0, 1] (not percent).
        gamma: Focusing strength.

    Returns:
        Tensor: float64, shape (C,).
    """
    dice = _as_unit_interval(dice, 'dice')
    return gamma * torch.log((1 - dice).clamp(min=PRIOR_EPS))


def load_class_dice(class_dice: ArrayLike,
                    num_classes: Optional[int] = None) -> Tensor:
    """Read per-class Dice from a sequence or from the JSON file written by
    ``tools/analysis_tools/class_difficulty.py`` (key ``dice``).

    Returns:
        Tensor: float64, shape (C,), values in [0, 1].
    """
    source = ''
    if isinstance(class_dice, str):
        if not osp.isfile(class_dice):
            raise FileNotFoundError(
                f'class_dice file {class_dice!r} does not exist; write one '
                'with `python tools/analysis_tools/class_difficulty.py '
                f'CONFIG CHECKPOINT --out {class_dice}`')
        with open(class_dice) as f:
            data = json.load(f)
        if not isinstance(data, dict) or 'dice' not in data:
            raise ValueError(f'{class_dice!r} must be a JSON dict with a '
                             "'dice' list (one value per class)")
        source = f' (from {class_dice!r})'
        class_dice = data['dice']
    return _as_unit_interval(class_dice, f'class_dice{source}', num_classes)


def class_prior(prior: Union[str, Sequence[float]],
                num_classes: int,
                class_freq: Optional[ArrayLike] = None,
                class_dice: Optional[ArrayLike] = None,
                gamma: float = 2.0) -> Tensor:
    """Build the prior vector a DFA bias starts from.

    Args:
        prior: ``'focal'``, ``'inverse_log_freq'``, ``'difficulty'`` or an
            explicit sequence of ``num_classes`` values.
        num_classes: Number of classes C.
        class_freq: Frequencies for the frequency priors: a sequence, or a
            class-statistics JSON path (see :func:`mmimb.utils.
            load_class_freq`).
        class_dice: Per-class Dice for ``'difficulty'``: a sequence or the
            JSON path written by ``class_difficulty.py``.
        gamma: Focusing strength of ``'focal'`` and ``'difficulty'``.

    Returns:
        Tensor: float64, shape (C,), finite.
    """
    if num_classes < 2:
        raise ValueError(f'a class prior needs num_classes >= 2, got '
                         f'{num_classes}')
    if not isinstance(prior, str):
        values = torch.as_tensor(np.asarray(prior, dtype=np.float64))
        if values.shape != (num_classes, ) or not torch.isfinite(
                values).all():
            raise ValueError(
                f'an explicit prior must be {num_classes} finite values, got '
                f'{values.tolist()}')
        return values
    if prior not in PRIORS:
        raise ValueError(f'prior={prior!r}; expected one of {PRIORS} or a '
                         'list of per-class values')
    if prior == 'difficulty':
        if class_dice is None:
            raise ValueError("prior='difficulty' needs class_dice: per-class "
                             'Dice of a baseline, as a list or the JSON '
                             'written by tools/analysis_tools/'
                             'class_difficulty.py')
        return difficulty_prior(load_class_dice(class_dice, num_classes),
                                gamma)
    if class_freq is None:
        raise ValueError(f'prior={prior!r} needs class_freq (a list, a '
                         "class-statistics JSON path, or 'auto' in a config "
                         'run by tools/train.py)')
    freq = load_class_freq(class_freq, num_classes, name='class_freq')
    if prior == 'focal':
        return focal_prior(freq, gamma)
    return inverse_log_freq_prior(freq)
