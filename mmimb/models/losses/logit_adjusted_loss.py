"""Logit-adjusted cross-entropy (Menon et al., ICLR 2021) and Balanced
Softmax (Ren et al., NeurIPS 2020).

Both train on logits shifted by the log class prior,
``CE(z + tau * log(pi), y)``; Balanced Softmax is the case ``tau = 1``
(``log n_c`` and ``log pi_c`` differ by a constant, which the softmax
ignores). Predictions use the unshifted logits, so the model is pushed
towards the balanced error.
"""
from typing import Optional

import torch.nn.functional as F
from mmengine.registry import MODELS
from torch import Tensor

from .class_prior_loss import (ClassPriorLoss, class_dim_view, compute_dtype,
                               soft_cross_entropy, split_target)
from .labels import NO_IGNORE, guard_labels


def adjust_logits(logits: Tensor, log_prior: Tensor,
                  tau: float = 1.0) -> Tensor:
    """``logits + tau * log_prior`` along the class dimension 1.

    Args:
        logits: (N, C) or (N, C, *spatial).
        log_prior: (C,) log class frequencies.
        tau: Scale of the adjustment; 0 returns ``logits`` unchanged.
    """
    if tau == 0:
        return logits
    return logits + class_dim_view(tau * log_prior.to(logits.dtype), logits)


def prior_cross_entropy(logits: Tensor,
                        target: Tensor,
                        soft: bool,
                        ignore_index: Optional[int] = None) -> Tensor:
    """Element-wise cross-entropy for hard or soft labels.

    Args:
        logits: (N, C, *spatial), already adjusted if wanted.
        target: Hard labels (N, *spatial) or soft labels like ``logits``.
        soft: Whether ``target`` holds soft labels.
        ignore_index: Hard label whose elements get loss 0.

    Returns:
        Tensor: (N, *spatial).
    """
    if soft:
        return soft_cross_entropy(F.log_softmax(logits, dim=1), target)
    return F.cross_entropy(
        logits,
        target,
        ignore_index=NO_IGNORE if ignore_index is None else ignore_index,
        reduction='none')


def logit_adjusted_loss(logits: Tensor,
                        target: Tensor,
                        log_prior: Tensor,
                        tau: float = 1.0,
                        ignore_index: Optional[int] = None) -> Tensor:
    """Element-wise logit-adjusted cross-entropy
    ``CE(logits + tau * log_prior, target)``.

    Args:
        logits: (N, C) or (N, C, *spatial).
        target: Hard labels (N,) / (N, *spatial), or soft labels of the
            shape of ``logits``.
        log_prior: (C,) log class frequencies.
        tau: Temperature of the adjustment; 1 is Balanced Softmax.
        ignore_index: Hard label whose elements get loss 0.

    Returns:
        Tensor: (N,) or (N, *spatial).
    """
    target, soft = split_target(logits, target, 'logit_adjusted_loss')
    if not soft:
        target, ignore_index = guard_labels(
            target, logits.shape[1], ignore_index, 'logit_adjusted_loss')
    return prior_cross_entropy(
        adjust_logits(compute_dtype(logits), log_prior, tau), target, soft,
        ignore_index)


@MODELS.register_module()
class LogitAdjustedLoss(ClassPriorLoss):
    """Logit-adjusted cross-entropy (Menon et al., "Long-tail learning via
    logit adjustment", ICLR 2021): ``CE(z + tau * log(pi), y)``.

    Works for classification (logits (N, C)) and segmentation (logits
    (N, C, H, W), ``ignore_index`` pixels left out of the sum and the mean);
    soft labels (N, C) from Mixup/CutMix give ``-sum_c y_c log p~_c`` with
    ``p~`` the adjusted softmax.

    Args:
        class_freq (list | str | Tensor): Class frequencies or counts of the
            training set, a class-statistics JSON path, or ``'auto'``.
        tau (float): Temperature of the adjustment. Defaults to 1.0 (the
            paper's choice; equal to Balanced Softmax).
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``.
        ignore_index (int, optional): Hard label to ignore.
        loss_name (str): Name in mmseg's losses dict. Defaults to
            ``'loss_la'``.
    """

    def __init__(self,
                 class_freq,
                 tau: float = 1.0,
                 loss_weight: float = 1.0,
                 reduction: str = 'mean',
                 ignore_index: Optional[int] = None,
                 loss_name: str = 'loss_la'):
        super().__init__(class_freq, loss_weight, reduction, ignore_index,
                         loss_name)
        self.tau = float(tau)

    def elementwise(self, logits: Tensor, target: Tensor, soft: bool,
                    ignore_index: Optional[int]) -> Tensor:
        return prior_cross_entropy(
            adjust_logits(logits, self.log_prior, self.tau), target, soft,
            ignore_index)

    def extra_repr(self) -> str:
        return f'tau={self.tau}, ' + super().extra_repr()


@MODELS.register_module()
class BalancedSoftmaxLoss(LogitAdjustedLoss):
    """Balanced Softmax (Ren et al., "Balanced Meta-Softmax for
    Long-Tailed Visual Recognition", NeurIPS 2020): cross-entropy of
    ``softmax(z + log(n))``, i.e. :class:`LogitAdjustedLoss` with
    ``tau = 1``.

    Args:
        class_freq (list | str | Tensor): Class frequencies or counts of the
            training set, a class-statistics JSON path, or ``'auto'``.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``.
        ignore_index (int, optional): Hard label to ignore.
        loss_name (str): Name in mmseg's losses dict. Defaults to
            ``'loss_bs'``.
    """

    def __init__(self,
                 class_freq,
                 loss_weight: float = 1.0,
                 reduction: str = 'mean',
                 ignore_index: Optional[int] = None,
                 loss_name: str = 'loss_bs'):
        super().__init__(class_freq, 1.0, loss_weight, reduction,
                         ignore_index, loss_name)
