"""Class frequencies as the methods consume them: validated, normalised.

DFA's prior and CCAR's weights take a ``class_freq`` argument that may be a
sequence, the JSON file written by ``tools/analysis_tools/class_stats.py``,
or ``'auto'``, which the runner replaces by the training set's frequencies
before the model is built (:func:`resolve_auto_class_freq`).
"""
import json
import os.path as osp
from typing import Callable, Optional, Sequence, Union

import numpy as np
import torch

AUTO = 'auto'

ClassFreq = Union[str, Sequence[float], np.ndarray, torch.Tensor]


def read_class_stats_json(path: str) -> dict:
    """Read a class-statistics JSON file.

    The file is the one written by ``tools/analysis_tools/class_stats.py``:
    a dict with at least ``counts`` or ``frequencies`` (one entry per class)
    and optionally ``classes``. A bare JSON list is read as frequencies.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'class frequency file {path!r} does not exist; write one with '
            '`python tools/analysis_tools/class_stats.py CONFIG --out '
            f'{path}` or pass the frequencies as a list')
    try:
        with open(path) as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f'{path!r} is not valid JSON: {e}') from None
    if isinstance(data, list):
        return dict(frequencies=data)
    if not isinstance(data, dict) or not {'frequencies', 'counts'} & set(data):
        raise ValueError(
            f'{path!r} must hold a list of frequencies or a dict with a '
            f"'frequencies' or 'counts' list, got keys {sorted(data)[:10]}")
    return data


def load_class_counts(counts: Union[str, Sequence[int], np.ndarray],
                      name: str = 'train_class_counts') -> np.ndarray:
    """Training samples per class from a list or a class-statistics JSON.

    Raises:
        ValueError: For an unresolved ``'auto'``, a JSON without ``counts``,
            or entries that are not non-negative integers.
    """
    source = ''
    if isinstance(counts, str):
        if counts == AUTO:
            raise ValueError(
                f"{name}='auto' is replaced by the training set's class "
                "counts by mmimb's runner (tools/train.py, or runner_type="
                "'MMImbRunner'); when building the metric yourself pass the "
                'counts or a class-statistics JSON path')
        source = f' (from {counts!r})'
        data = read_class_stats_json(counts)
        if 'counts' not in data:
            raise ValueError(f'{counts!r} holds no per-class "counts" (only '
                             'frequencies); shot groups need sample counts')
        counts = data['counts']
    array = np.asarray(counts, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f'{name}{source} must be a non-empty 1-D sequence, '
                         f'got shape {array.shape}')
    if not np.isfinite(array).all() or (array < 0).any() or \
            (array != np.round(array)).any():
        raise ValueError(f'{name}{source} must hold non-negative integer '
                         f'counts, got {array.tolist()[:10]}')
    return array.astype(np.int64)


def per_class_vector(values: ClassFreq,
                     name: str,
                     num_classes: Optional[int] = None) -> torch.Tensor:
    """Check per-class values (frequencies, Dice, ...) and return them as a
    float64 tensor of shape (C,).

    Args:
        values: A sequence, array or tensor with one value per class.
        name: Argument name (and source) used in error messages.
        num_classes: Expected number of classes; ``None`` skips the check.

    Raises:
        ValueError: For another shape or length, or non-finite entries.
    """
    if torch.is_tensor(values):
        # numpy reads neither CUDA tensors nor tensors that require grad.
        values = values.detach().cpu()
    values = torch.as_tensor(
        np.asarray(values, dtype=np.float64), dtype=torch.float64)
    if values.ndim != 1 or values.numel() == 0:
        raise ValueError(f'{name} must be a non-empty 1-D sequence, got '
                         f'shape {tuple(values.shape)}')
    if num_classes is not None and values.numel() != num_classes:
        raise ValueError(f'{name} has {values.numel()} entries but the '
                         f'model has num_classes={num_classes}')
    if not torch.isfinite(values).all():
        raise ValueError(f'{name} has non-finite entries: {values.tolist()}')
    return values


def load_class_freq(class_freq: ClassFreq,
                    num_classes: Optional[int] = None,
                    name: str = 'class_freq') -> torch.Tensor:
    """Turn a ``class_freq`` argument into a validated frequency vector.

    Args:
        class_freq: Frequencies or counts per class (normalised to sum to 1),
            or the path of a class-statistics JSON file.
        num_classes: Expected number of classes; ``None`` skips the check.
        name: Argument name used in error messages.

    Returns:
        torch.Tensor: float64 tensor of shape (C,), positive, summing to 1.

    Raises:
        ValueError: For ``'auto'`` that was not resolved, a wrong length,
            negative, zero or non-finite entries.
    """
    source = ''
    if isinstance(class_freq, str):
        if class_freq == AUTO:
            raise ValueError(
                f"{name}='auto' is replaced by the training set's class "
                'frequencies when the model is built by mmimb\'s runner '
                "(tools/train.py, or runner_type='MMImbRunner' in the "
                'config); when building the module yourself pass a list or '
                'a class-statistics JSON path')
        source = f' (from {class_freq!r})'
        data = read_class_stats_json(class_freq)
        class_freq = data.get('frequencies', data.get('counts'))
    freq = per_class_vector(class_freq, f'{name}{source}', num_classes)
    bad = (freq <= 0).nonzero().flatten().tolist()
    if bad:
        raise ValueError(
            f'{name}{source} must be positive for every class, but classes '
            f'{bad} have {[freq[i].item() for i in bad]}; a class that never '
            'occurs in the training set has no defined prior or weight: '
            'remove it from the label set or give it a small count')
    return freq / freq.sum()


def resolve_auto_class_freq(cfg: dict,
                            compute: Callable[[], Sequence[float]],
                            key: str = 'class_freq') -> int:
    """Replace every ``class_freq='auto'`` in a (model) config in place.

    Args:
        cfg: Nested dicts and lists, typically ``cfg.model``.
        compute: Returns the values (frequencies, or counts for another
            ``key``); called at most once, and only when an ``'auto'``
            entry exists.
        key: The argument name to resolve, e.g. ``'train_class_counts'``
            of an evaluator.

    Returns:
        int: The number of entries replaced.
    """
    found = []

    def walk(node):
        if isinstance(node, dict):
            for name, value in node.items():
                if name == key and isinstance(value, str) and value == AUTO:
                    found.append(node)
                else:
                    walk(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                walk(value)

    walk(cfg)
    if found:
        # Python numbers (ints stay ints), so that configs dump cleanly.
        values = np.asarray(compute()).tolist()
        for node in found:
            node[key] = list(values)
    return len(found)
