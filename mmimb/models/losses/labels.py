"""Checks of hard labels that every mmimb loss shares."""
from typing import Optional

import torch
from torch import Tensor


def valid_labels(target: Tensor,
                 num_classes: int,
                 ignore_index: Optional[int],
                 owner: str = '') -> Tensor:
    """Mask of labelled elements; refuses labels outside ``[0, C)``.

    ``F.cross_entropy`` silently ignores its default ignore index -100 and
    fails deep inside torch (or, on CUDA, asynchronously) for other labels
    out of range, so every loss checks its hard labels here first. The
    check costs one host-device synchronisation per call.

    Args:
        target: Labels (B, ...), integer.
        num_classes: Number of classes C.
        ignore_index: Label excluded everywhere, or ``None``.
        owner: Name of the caller, prefixed to the error message.

    Returns:
        Tensor: bool, same shape as ``target``.

    Raises:
        ValueError: Naming the labels that are neither in ``[0, C)`` nor
            ``ignore_index``.
    """
    valid = torch.ones_like(target, dtype=torch.bool) if ignore_index is None \
        else target != ignore_index
    bad = valid & ((target < 0) | (target >= num_classes))
    if bad.any():
        prefix = f'{owner}: ' if owner else ''
        raise ValueError(
            f'{prefix}labels {sorted(set(target[bad].unique().tolist()))} are '
            f'outside [0, {num_classes}) and are not the ignore_index '
            f'{ignore_index}')
    return valid
