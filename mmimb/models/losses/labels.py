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
    all in range cost one min-max reduction read back to the host; an
    ``ignore_index`` outside ``[0, C)`` that occurs adds a masked copy of
    the labels and a second reduction.

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
    if _in_range(target, num_classes):
        return
    # Segmentation maps with an ignore_index outside [0, C) take this
    # path on every call; masking costs a fraction of the boolean
    # indexing below (about 6 ms against 60 ms for 8 x 512 x 512 labels).
    if ignore_index is not None and _in_range(
            target.masked_fill(target == ignore_index, 0), num_classes):
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


def _in_range(target: Tensor, num_classes: int) -> bool:
    low, high = torch.aminmax(target)
    return low.item() >= 0 and high.item() < num_classes


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
