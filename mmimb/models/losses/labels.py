"""Checks of hard labels that every mmimb loss shares."""
from typing import Optional

import torch
from torch import Tensor


def check_labels(target: Tensor,
                 num_classes: int,
                 ignore_index: Optional[int],
                 owner: str = '') -> None:
    """Refuse hard labels that are neither in ``[0, C)`` nor
    ``ignore_index``.

    ``F.cross_entropy`` silently ignores its default ignore index -100 and
    fails deep inside torch (or, on CUDA, asynchronously) for other labels
    out of range, so every loss checks its hard labels here first. Labels
    all in range (the common case without ignored elements) cost one
    reduction and one host-device synchronisation.

    Args:
        target: Labels (B, ...), integer.
        num_classes: Number of classes C.
        ignore_index: Label excluded everywhere, or ``None``.
        owner: Name of the caller, prefixed to the error message.

    Raises:
        ValueError: Naming the labels that are neither in ``[0, C)`` nor
            ``ignore_index``.
    """
    if target.numel() == 0:
        return
    low, high = torch.aminmax(target)
    if bool((low >= 0) & (high < num_classes)):
        return
    labelled = target if ignore_index is None else target[
        target != ignore_index]
    bad = labelled[(labelled < 0) | (labelled >= num_classes)]
    if bad.numel():
        prefix = f'{owner}: ' if owner else ''
        raise ValueError(
            f'{prefix}labels {sorted(bad.unique().tolist())[:10]} are '
            f'outside [0, {num_classes}) and are not the ignore_index '
            f'{ignore_index}')


def valid_labels(target: Tensor,
                 num_classes: int,
                 ignore_index: Optional[int],
                 owner: str = '') -> Tensor:
    """Mask of labelled elements, after :func:`check_labels` (same
    arguments).

    Returns:
        Tensor: bool, same shape as ``target``.
    """
    check_labels(target, num_classes, ignore_index, owner)
    if ignore_index is None:
        return torch.ones_like(target, dtype=torch.bool)
    return target != ignore_index
