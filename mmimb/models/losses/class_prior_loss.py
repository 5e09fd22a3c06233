"""What mmimb's classification-style losses share.

Logit adjustment, Balanced Softmax, CCAR, LDAM and the softmax focal loss
accept the same targets (hard labels with an optional
ignore index, or soft labels from Mixup/CutMix) and are called the same way
by mmpretrain's ``ClsHead`` (``loss(cls_score, target, avg_factor=N)``) and
by mmseg's ``BaseDecodeHead`` (``loss(seg_logits, seg_label, weight=...,
ignore_index=...)``). This module holds that common part once
(:class:`ElementwiseLoss`), and the class frequencies of the losses built on
a class prior (:class:`ClassPriorLoss`).
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmpretrain.models.losses.utils import weight_reduce_loss
from torch import Tensor

from mmimb.utils import load_class_freq
from .labels import guard_labels

REDUCTIONS = ('none', 'mean', 'sum')


def compute_dtype(logits: Tensor) -> Tensor:
    """``logits`` in at least float32.

    Under fp16/bf16 autocast the head emits half-precision logits; the
    log-softmax, the confidence ``exp(-CE)`` and the weights are computed in
    float32, as autocast does for ``F.cross_entropy`` itself, so that large
    logits neither overflow nor lose the true class's probability.
    """
    if logits.dtype in (torch.float16, torch.bfloat16):
        return logits.float()
    return logits


def class_dim_view(values: Tensor, logits: Tensor) -> Tensor:
    """Reshape per-class ``values`` (C,) to broadcast over ``logits``
    (N, C, *spatial) along the class dimension 1."""
    return values.view(1, -1, *([1] * (logits.dim() - 2)))


def split_target(logits: Tensor, target: Tensor,
                 name: str = 'loss') -> Tuple[Tensor, bool]:
    """Check ``target`` against ``logits`` and tell hard from soft labels.

    Args:
        logits: (N, C) or (N, C, *spatial) scores.
        target: Hard labels (N,) / (N, 1) / (N, *spatial) of an integer
            type, or soft labels of the same shape as ``logits`` (floating).
        name: The loss's name for error messages.

    Returns:
        tuple: The target (hard labels squeezed to (N, *spatial)) and
        whether it holds soft labels.

    Raises:
        ValueError: For any other shape or dtype.
    """
    if logits.dim() < 2:
        raise ValueError(f'{name} expects logits of shape (N, C) or '
                         f'(N, C, H, W), got {tuple(logits.shape)}')
    hard_shape = logits.shape[:1] + logits.shape[2:]
    if target.is_floating_point():
        if target.shape != logits.shape:
            raise ValueError(
                f'{name}: a floating-point target is read as soft labels '
                f'(e.g. from Mixup/CutMix) and must have the shape of the '
                f'logits {tuple(logits.shape)}, got {tuple(target.shape)}; '
                'hard labels must be an integer tensor')
        return target, True
    if logits.dim() == 2 and target.shape == (logits.shape[0], 1):
        target = target.squeeze(1)
    if target.shape != hard_shape:
        raise ValueError(
            f'{name}: hard labels must have shape {tuple(hard_shape)} for '
            f'logits of shape {tuple(logits.shape)}, got '
            f'{tuple(target.shape)}')
    return target.long(), False


def valid_mask(target: Tensor, ignore_index: Optional[int]) -> \
        Optional[Tensor]:
    """Where a hard label is not ``ignore_index``; ``None`` when nothing is
    ignored."""
    if ignore_index is None:
        return None
    return target != ignore_index


def soft_cross_entropy(log_prob: Tensor, target: Tensor,
                       weight: Optional[Tensor] = None) -> Tensor:
    """``-sum_c y_c w_c log p_c`` over the class dimension 1.

    Cross-entropy is linear in the label distribution, so with a Mixup pair
    ``y = lam * y_a + (1 - lam) * y_b`` this equals ``lam * CE(y_a) +
    (1 - lam) * CE(y_b)``, the loss Mixup is defined with; ``weight`` (same
    shape as ``log_prob``) applies a per-class, per-sample weight to each
    term.
    """
    terms = target * log_prob
    if weight is not None:
        terms = terms * weight
    return -terms.sum(1)


def reduce_masked(loss: Tensor, valid: Optional[Tensor],
                  weight: Optional[Tensor], reduction: str,
                  avg_factor: Optional[float]) -> Tensor:
    """Reduce an element-wise loss that is 0 at ignored elements.

    The default ``avg_factor`` of ``'mean'`` is the number of elements
    that are not ignored (at least 1, so that a batch without a single
    valid label gives 0 rather than NaN). An ``avg_factor`` given by the
    caller (mmpretrain's ``ClsHead`` passes the batch size) is used as is.
    """
    if weight is not None:
        weight = weight.to(loss.dtype)
        if weight.shape != loss.shape:
            try:
                weight = weight.expand_as(loss)
            except RuntimeError:
                raise ValueError(
                    f'the loss weight of shape {tuple(weight.shape)} does not '
                    f'match the element-wise loss of shape '
                    f'{tuple(loss.shape)}') from None
    if reduction == 'mean' and avg_factor is None:
        avg_factor = max(loss.numel(), 1) if valid is None else \
            torch.count_nonzero(valid).clamp(min=1)
    return weight_reduce_loss(loss, weight, reduction, avg_factor)


class ElementwiseLoss(nn.Module):
    """Base of mmimb's classification-style losses: subclasses implement
    :meth:`elementwise`; this class checks the inputs, drops ignored
    elements and reduces.

    Args:
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``. Defaults to
            ``'mean'``.
        ignore_index (int, optional): Hard label to leave out of both the
            sum and the mean. The ``ignore_index`` mmseg's decode heads pass
            at call time takes precedence. Defaults to None.
        loss_name (str): Key of the loss in the losses dict of mmseg decode
            heads; must start with ``'loss_'``.
    """

    def __init__(self,
                 loss_weight: float = 1.0,
                 reduction: str = 'mean',
                 ignore_index: Optional[int] = None,
                 loss_name: str = 'loss_prior'):
        super().__init__()
        name = type(self).__name__
        if reduction not in REDUCTIONS:
            raise ValueError(f'{name}: reduction={reduction!r}, expected one '
                             f'of {REDUCTIONS}')
        if not isinstance(loss_name, str) or not loss_name.startswith('loss_'):
            raise ValueError(
                f"{name}: loss_name={loss_name!r} must start with 'loss_' so "
                'that mmengine counts it into the total loss')
        self.loss_weight = loss_weight
        self.reduction = reduction
        self.ignore_index = ignore_index
        self._loss_name = loss_name

    @property
    def loss_name(self) -> str:
        """Key of this loss in mmseg's losses dict."""
        return self._loss_name

    def check_logits(self, cls_score: Tensor) -> None:
        """Refuse logits the loss cannot score (e.g. a wrong class count)."""

    def elementwise(self, logits: Tensor, target: Tensor, soft: bool,
                    ignore_index: Optional[int]) -> Tensor:
        """The unreduced loss, shape (N, *spatial).

        Args:
            logits: (N, C, *spatial), at least float32.
            target: Hard labels (N, *spatial) or soft labels like ``logits``.
            soft: Whether ``target`` holds soft labels.
            ignore_index: Hard label to ignore (``None`` for soft labels);
                the loss must be exactly 0 at ignored positions (as
                ``F.cross_entropy(..., ignore_index=...)`` gives), so that
                the reduction need not mask them again.
        """
        raise NotImplementedError

    def forward(self,
                cls_score: Tensor,
                label: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                ignore_index: Optional[int] = None) -> Tensor:
        """Compute the loss.

        Args:
            cls_score: Logits (N, C) or (N, C, *spatial).
            label: Hard labels (N,) or (N, *spatial), or soft labels of the
                shape of ``cls_score``.
            weight: Element-wise weight, (N,) or (N, *spatial).
            avg_factor: Divisor of the ``'mean'`` reduction; defaults to the
                number of elements that are not ignored.
            reduction_override: Overrides ``reduction`` for this call.
            ignore_index: Overrides the ``ignore_index`` of the constructor.

        Returns:
            Tensor: A scalar, or the element-wise loss for ``'none'``.
        """
        name = type(self).__name__
        reduction = reduction_override or self.reduction
        if reduction not in REDUCTIONS:
            raise ValueError(f'{name}: reduction_override={reduction!r}, '
                             f'expected one of {REDUCTIONS}')
        target, soft = split_target(cls_score, label, name)
        self.check_logits(cls_score)
        logits = compute_dtype(cls_score)
        if ignore_index is None:
            ignore_index = self.ignore_index
        if soft:
            ignore_index = None
        else:
            target, ignore_index = guard_labels(target, logits.shape[1],
                                                ignore_index, name)
        loss = self.elementwise(logits, target, soft, ignore_index)
        valid = None
        if reduction == 'mean' and avg_factor is None:
            valid = valid_mask(target, ignore_index)
        loss = reduce_masked(loss, valid, weight, reduction, avg_factor)
        return loss if self.loss_weight == 1 else self.loss_weight * loss

    def extra_repr(self) -> str:
        return (f'reduction={self.reduction!r}, loss_weight='
                f'{self.loss_weight}, ignore_index={self.ignore_index}, '
                f'loss_name={self.loss_name!r}')


class ClassPriorLoss(ElementwiseLoss):
    """Base of the losses that hold the training set's class frequencies.

    Args:
        class_freq (list | str | Tensor): Frequency or count of every class
            in the training set, or the path of a class-statistics JSON file
            (see :func:`mmimb.utils.load_class_freq`). ``'auto'`` is replaced
            by the training set's frequencies when mmimb's runner builds the
            model.
        loss_weight, reduction, ignore_index, loss_name: See
            :class:`ElementwiseLoss`.
    """

    def __init__(self,
                 class_freq,
                 loss_weight: float = 1.0,
                 reduction: str = 'mean',
                 ignore_index: Optional[int] = None,
                 loss_name: str = 'loss_prior'):
        super().__init__(loss_weight, reduction, ignore_index, loss_name)
        freq = load_class_freq(class_freq,
                               name=f'{type(self).__name__}.class_freq')
        # Not persistent: the frequencies are configuration, and keeping
        # them out of state dicts lets a checkpoint load into a model whose
        # 'auto' frequencies came from another data split.
        self.register_buffer('class_freq', freq, persistent=False)
        self.register_buffer('log_prior', freq.log(), persistent=False)

    @property
    def num_classes(self) -> int:
        return self.class_freq.numel()

    def check_logits(self, cls_score: Tensor) -> None:
        if cls_score.shape[1] != self.num_classes:
            raise ValueError(
                f'{type(self).__name__}: the logits have '
                f'{cls_score.shape[1]} classes but class_freq has '
                f'{self.num_classes} entries')

    def extra_repr(self) -> str:
        return f'num_classes={self.num_classes}, ' + super().extra_repr()
