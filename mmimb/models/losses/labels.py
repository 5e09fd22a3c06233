"""Checks of hard labels that every mmimb loss shares.

``F.cross_entropy`` silently ignores its default ignore index -100 and
fails deep inside torch (on CUDA with an opaque device-side assert) for
other labels out of range, so every loss checks its hard labels first.

On the CPU the check is immediate (:func:`check_labels`). On CUDA reading
its result back to the host would synchronise the device in the middle of
every forward pass, so :func:`guard_labels` defers it instead: labels that
are neither in ``[0, C)`` nor the ignore index are counted on the device,
left out of that batch's loss (so that no kernel asserts), and the count is
copied to pinned host memory without blocking; a later call, once the copy
has arrived, raises the clear error. :func:`flush_label_checks` waits for
and raises every pending one (mmimb's runner calls it after training, so a
bad label in the last batch is reported too).
"""
from typing import List, NamedTuple, Optional, Tuple

import torch
from torch import Tensor

# The ignore index F.cross_entropy uses when none is given; a deferred check
# moves bad labels there when the loss has no ignore index of its own.
NO_IGNORE = -100


def check_labels(target: Tensor,
                 num_classes: int,
                 ignore_index: Optional[int],
                 owner: str = '') -> None:
    """Refuse hard labels that are neither in ``[0, C)`` nor
    ``ignore_index``, at once.

    Labels all in range cost one min-max reduction read back to the host;
    an ``ignore_index`` outside ``[0, C)`` that occurs adds a masked copy of
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
        raise ValueError(
            f'{_prefix(owner)}labels {sorted(bad.unique().tolist())[:10]} '
            f'are outside [0, {num_classes}) and are not the ignore_index '
            f'{ignore_index}')


def _prefix(owner: str) -> str:
    return f'{owner}: ' if owner else ''


def _in_range(target: Tensor, num_classes: int) -> bool:
    low, high = torch.aminmax(target)
    return low.item() >= 0 and high.item() < num_classes


class _Pending(NamedTuple):
    """A deferred check: (count, smallest, largest) of the bad labels of one
    call, on its way to the host."""
    stats: Tensor
    event: Optional[object]
    owner: str
    num_classes: int
    ignore_index: Optional[int]


_PENDING: List[_Pending] = []


def _raise_for(record: _Pending) -> None:
    count, low, high = record.stats.tolist()
    if count:
        raise ValueError(
            f'{_prefix(record.owner)}{count} labels (values {low} to {high}) '
            f'are outside [0, {record.num_classes}) and are not the '
            f'ignore_index {record.ignore_index}; found by the deferred '
            'check on the accelerator, so they were left out of the loss of '
            'an earlier batch')


def _report_arrived() -> None:
    """Raise for the first pending check whose result has arrived and found
    bad labels; drop the clean ones. Never waits."""
    while _PENDING and (_PENDING[0].event is None
                        or _PENDING[0].event.query()):
        _raise_for(_PENDING.pop(0))


def flush_label_checks() -> None:
    """Wait for every deferred label check and raise for the first that
    found bad labels.

    Raises:
        ValueError: As :func:`check_labels` would have.
    """
    while _PENDING:
        record = _PENDING.pop(0)
        if record.event is not None:
            record.event.synchronize()
        _raise_for(record)


def guard_labels(target: Tensor,
                 num_classes: int,
                 ignore_index: Optional[int],
                 owner: str = '',
                 defer: Optional[bool] = None) -> Tuple[Tensor, Optional[int]]:
    """Labels a loss can use: checked at once (CPU), or with the check
    deferred (CUDA).

    Args:
        target: Labels (B, ...), integer.
        num_classes: Number of classes C.
        ignore_index: Label excluded everywhere, or ``None``.
        owner: Name of the caller, prefixed to the error message.
        defer: Defer the check; ``None`` defers for CUDA tensors only.

    Returns:
        tuple: ``(target, ignore_index)``. Immediate: both unchanged.
        Deferred: the labels with every bad one replaced by the ignore
        index, which is ``-100`` (``F.cross_entropy``'s) when
        ``ignore_index`` is ``None``; the loss must then ignore that label.

    Raises:
        ValueError: Immediate: for bad labels in ``target``. Deferred: for
            bad labels of an earlier call whose check has arrived.
    """
    if defer is None:
        defer = target.is_cuda
    if not defer:
        check_labels(target, num_classes, ignore_index, owner)
        return target, ignore_index
    _report_arrived()
    # The fill value -100 needs a signed type.
    target = target.long()
    fill = NO_IGNORE if ignore_index is None else ignore_index
    bad = (target < 0) | (target >= num_classes)
    if ignore_index is not None:
        bad &= target != ignore_index
    info = torch.iinfo(target.dtype)
    stats = torch.stack([
        bad.sum(),
        target.masked_fill(~bad, info.max).amin(),
        target.masked_fill(~bad, info.min).amax()
    ]) if target.numel() else torch.zeros(3, dtype=torch.long)
    event = None
    if stats.is_cuda:
        host = torch.empty(stats.shape, dtype=stats.dtype, pin_memory=True)
        stats = host.copy_(stats, non_blocking=True)
        event = torch.cuda.Event()
        event.record()
    _PENDING.append(_Pending(stats, event, owner, num_classes, ignore_index))
    return target.masked_fill(bad, fill), fill


def valid_labels(target: Tensor,
                 num_classes: int,
                 ignore_index: Optional[int],
                 owner: str = '') -> Tensor:
    """Mask of labelled elements after :func:`guard_labels` (same
    arguments): on CUDA, labels that failed the deferred check are not
    labelled.

    Returns:
        Tensor: bool, same shape as ``target``.
    """
    target, ignore_index = guard_labels(target, num_classes, ignore_index,
                                        owner)
    if ignore_index is None:
        return torch.ones_like(target, dtype=torch.bool)
    return target != ignore_index
