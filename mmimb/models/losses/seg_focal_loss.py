"""Softmax focal loss for dense multi-class prediction, ignoring labels.

mmseg's ``FocalLoss`` fails on the CPU for multi-class input (mmseg issue
3249); this one is plain PyTorch and averages over non-ignored pixels only.
The classification version, :class:`~mmimb.models.losses.SoftmaxFocalLoss`,
computes the same focal term (:func:`focal_term`).
"""
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor

from .labels import valid_labels
from .seg_loss_base import SegLossBase


def focal_term(log_prob: Tensor, gamma: float) -> Tensor:
    """``-(1 - p) ** gamma * log p`` from ``log p``, element-wise.

    ``1 - p`` is computed as ``-expm1(log p)`` (accurate when ``p`` is
    close to 1) and kept at least the dtype's smallest normal number: at a
    saturated ``p = 1`` the derivative of ``(1 - p) ** gamma`` is infinite
    for ``gamma < 1`` and the chain rule would multiply it by the zero
    derivative of ``p``, giving NaN; the floor leaves the value unchanged
    (the loss is 0 there either way) and the gradient finite (the true
    gradient there is 0).

    Args:
        log_prob: Log-probabilities, any shape.
        gamma: Focusing parameter, >= 0; 0 gives ``-log p``.
    """
    if gamma == 0:
        return -log_prob
    one_minus_p = torch.expm1(log_prob).neg().clamp(
        min=torch.finfo(log_prob.dtype).tiny)
    return -one_minus_p.pow(gamma) * log_prob


def softmax_focal_loss(logits: Tensor,
                       target: Tensor,
                       gamma: float = 2.0,
                       class_weight: Optional[Tensor] = None,
                       weight: Optional[Tensor] = None,
                       ignore_index: Optional[int] = 255,
                       reduction: str = 'mean') -> Tensor:
    """Focal loss ``-alpha_t (1 - p_t) ** gamma log p_t`` with ``p_t`` the
    softmax probability of the true class.

    Args:
        logits: (B, C, ...) scores.
        target: (B, ...) labels.
        gamma: Focusing parameter; 0 gives cross-entropy.
        class_weight: Optional (C,) weights ``alpha``.
        weight: Optional per-pixel weights, shape of ``target``.
        ignore_index: Label whose pixels contribute nothing.
        reduction: ``'mean'`` (over non-ignored pixels; 0 if there are
            none), ``'sum'`` or ``'none'``.

    Returns:
        Tensor: scalar, or per pixel (shape of ``target``) for ``'none'``.
    """
    valid = valid_labels(target, logits.shape[1], ignore_index)
    target = target.where(valid, torch.zeros_like(target)).long()
    logp_t = F.log_softmax(logits.float(), dim=1).gather(
        1, target.unsqueeze(1)).squeeze(1)
    loss = focal_term(logp_t, gamma)
    if class_weight is not None:
        loss = loss * class_weight.to(loss)[target]
    if weight is not None:
        loss = loss * weight
    loss = loss * valid
    if reduction == 'none':
        return loss
    if reduction == 'sum':
        return loss.sum()
    if reduction == 'mean':
        return loss.sum() / torch.count_nonzero(valid).clamp(min=1)
    raise ValueError(f"reduction={reduction!r}; expected 'mean', 'sum' or "
                     "'none'")


@MODELS.register_module()
class SegFocalLoss(SegLossBase):
    """Softmax focal loss for segmentation, correct on the CPU and with
    ignored pixels (see :func:`softmax_focal_loss`).

    Args:
        gamma: Focusing parameter.
        class_weight: Per-class weights ``alpha`` (list or file path as in
            mmseg).
        loss_weight: Multiplier of the loss.
        loss_name: Key in the loss dict; must start with ``loss_``.
    """

    def __init__(self,
                 gamma: float = 2.0,
                 class_weight: Optional[Union[Sequence[float], str]] = None,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_focal'):
        super().__init__(class_weight, loss_weight, loss_name)
        self.gamma = gamma

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                ignore_index: Optional[int] = 255,
                **kwargs) -> Tensor:
        return self.loss_weight * softmax_focal_loss(
            pred, target, self.gamma, self.class_weight_tensor(), weight,
            ignore_index)
