"""Softmax focal loss for classification heads (Lin et al., ICCV 2017, in
its multi-class softmax form).

mmpretrain's ``FocalLoss`` is the sigmoid (one-vs-all) form and mmimb's
``SegFocalLoss`` lives in mmseg's scope; this one is registered in
mmengine's root ``MODELS`` and takes what mmimb's other losses take: hard
labels with an ignore index, soft labels from Mixup/CutMix, ``avg_factor``.
The per-class ``alpha`` of the focal loss is the class-balanced wrapper's
job (``ClassBalancedLoss``, Cui et al.'s class-balanced focal loss).
"""
import numbers
from typing import Optional

import torch.nn.functional as F
from mmengine.registry import MODELS
from torch import Tensor

from .class_prior_loss import ElementwiseLoss
from .seg_focal_loss import focal_term


def check_gamma(gamma: float, owner: str) -> float:
    """``gamma`` as a float, or a clear error if it is not >= 0."""
    if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real) or \
            not gamma >= 0:
        raise ValueError(f'{owner}: gamma={gamma!r}, expected a number >= 0 '
                         '(0 is cross-entropy)')
    return float(gamma)


def focal_elementwise(logits: Tensor, target: Tensor, soft: bool,
                      gamma: float,
                      ignore_index: Optional[int] = None) -> Tensor:
    """Element-wise softmax focal loss ``-(1 - p_t) ** gamma log p_t``.

    Args:
        logits: (N, C, *spatial).
        target: Hard labels (N, *spatial), or soft labels like ``logits``
            (then ``-sum_c y_c (1 - p_c) ** gamma log p_c``, linear in the
            labels like Mixup's loss).
        soft: Whether ``target`` holds soft labels.
        gamma: Focusing parameter; 0 gives cross-entropy.
        ignore_index: Hard label whose elements get loss 0.

    Returns:
        Tensor: (N, *spatial).
    """
    log_prob = F.log_softmax(logits, dim=1)
    if soft:
        return (target * focal_term(log_prob, gamma)).sum(1)
    ignored = None if ignore_index is None else target == ignore_index
    safe = target if ignored is None else target.masked_fill(ignored, 0)
    loss = focal_term(log_prob.gather(1, safe.unsqueeze(1)).squeeze(1), gamma)
    return loss if ignored is None else loss.masked_fill(ignored, 0)


@MODELS.register_module()
class SoftmaxFocalLoss(ElementwiseLoss):
    """Softmax focal loss ``-(1 - p_t) ** gamma log p_t`` for classification
    (and segmentation) heads.

    Shapes: logits (N, C) with labels (N,) or soft labels (N, C); or
    logits (N, C, H, W) with labels (N, H, W).

    Args:
        gamma (float): Focusing parameter; 0 is cross-entropy. Defaults to
            2.0 (Lin et al.; LDAM-DRW's focal baseline uses 1.0).
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``.
        ignore_index (int, optional): Hard label to ignore.
        loss_name (str): Name in mmseg's losses dict. Defaults to
            ``'loss_focal'``.
    """

    def __init__(self,
                 gamma: float = 2.0,
                 loss_weight: float = 1.0,
                 reduction: str = 'mean',
                 ignore_index: Optional[int] = None,
                 loss_name: str = 'loss_focal'):
        super().__init__(loss_weight, reduction, ignore_index, loss_name)
        self.gamma = check_gamma(gamma, type(self).__name__)

    def elementwise(self, logits: Tensor, target: Tensor, soft: bool,
                    ignore_index: Optional[int]) -> Tensor:
        return focal_elementwise(logits, target, soft, self.gamma,
                                 ignore_index)

    def extra_repr(self) -> str:
        return f'gamma={self.gamma}, ' + super().extra_repr()
