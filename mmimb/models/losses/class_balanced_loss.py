"""Class-balanced re-weighting by the effective number of samples (Cui et
al., "Class-Balanced Loss Based on Effective Number of Samples", CVPR 2019),
for any loss.

Class ``c`` with ``n_c`` training samples gets the weight

    w_c = (1 - beta) / (1 - beta ** n_c),   normalised so that sum_c w_c = C

(the authors' code, richardaecn/class-balanced-loss ``cifar_main.py``, and
the re-weighting of LDAM-DRW). ``beta = 0`` gives 1 for every class and
``beta -> 1`` inverse class frequency. :class:`ClassBalancedLoss` wraps any
registered loss that takes an element-wise ``weight`` (mmimb's CCAR, logit
adjustment, LDAM and focal losses, mmpretrain's and mmseg's
``CrossEntropyLoss``) and passes it ``w_y`` for every sample; the deferred
re-weighting of LDAM-DRW switches it on from a given epoch (``DRWHook``).
"""
import inspect
import math
import numbers
from typing import Optional

import torch
import torch.nn as nn
from mmengine.registry import MODELS
from torch import Tensor

from mmimb.utils import load_class_counts
from .class_prior_loss import split_target

NORMALIZATIONS = ('mean', 'weight_sum')


def effective_number_weights(class_counts, beta: float = 0.9999,
                             name: str = 'class_counts') -> Tensor:
    """Cui et al.'s class weights ``(1 - beta) / (1 - beta ** n_c)``,
    normalised to sum to the number of classes.

    Args:
        class_counts: (C,) training samples per class: a list, array or
            class-statistics JSON path with ``counts``.
        beta: In ``[0, 1)``; Cui et al. use 0.9, 0.99, 0.999, 0.9999,
            LDAM-DRW 0.9999. Defaults to 0.9999.
        name: Argument name for error messages.

    Returns:
        Tensor: float64, (C,).

    Raises:
        ValueError: For ``beta`` outside ``[0, 1)`` or a class without
            samples (its weight would be infinite).
    """
    if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or \
            not 0 <= beta < 1:
        raise ValueError(f'beta={beta!r}: expected a number in [0, 1) (0: '
                         'no re-weighting, towards 1: inverse frequency)')
    counts = torch.as_tensor(
        load_class_counts(class_counts, name), dtype=torch.float64)
    empty = (counts == 0).nonzero().flatten().tolist()
    if empty:
        raise ValueError(
            f'{name}: classes {empty} have no training samples, so their '
            'class-balanced weight is infinite; remove them from the label '
            'set')
    if beta == 0:
        weights = torch.ones_like(counts)
    else:
        # (1 - beta ** n) / (1 - beta), accurate for beta close to 1.
        weights = (1 - beta) / -torch.expm1(counts * math.log(beta))
    return weights * (len(counts) / weights.sum())


@MODELS.register_module()
class ClassBalancedLoss(nn.Module):
    """Any loss, with every sample weighted by its class's effective-number
    weight (see :func:`effective_number_weights`).

    The wrapped loss is called with ``weight=w_y`` (times any element-wise
    weight the caller passes); the arguments of mmpretrain's ``ClsHead``
    (``avg_factor``) and of mmseg's decode heads (``ignore_index``) go
    through unchanged.

    Args:
        loss (dict | nn.Module): The loss to weight (a config dict or a
            module); it must accept a ``weight`` argument.
        class_counts (list | str): Training samples per class, a
            class-statistics JSON path with ``counts``, or ``'auto'``
            (mmimb's runner fills in the training set's counts).
        beta (float): See :func:`effective_number_weights`. Defaults to
            0.9999.
        normalize (str): Divisor of the ``'mean'`` reduction. ``'mean'``:
            the caller's (mmpretrain's heads pass the batch size), i.e.
            ``sum_i w_i l_i / N`` as Cui et al.'s code; ``'weight_sum'``:
            ``sum_i w_i l_i / sum_i w_i`` over the labelled elements, as
            PyTorch's ``CrossEntropyLoss(weight=...)`` and LDAM-DRW.
            Defaults to ``'mean'``.
        enabled (bool): Apply the weights; ``False`` calls the wrapped loss
            unchanged. ``DRWHook`` sets it during training. Defaults to
            True.

    Hard labels only: a soft (Mixup/CutMix) label mixes classes inside the
    loss, which one weight per sample cannot express, so it is refused.
    """

    def __init__(self,
                 loss,
                 class_counts,
                 beta: float = 0.9999,
                 normalize: str = 'mean',
                 enabled: bool = True):
        super().__init__()
        self.loss = MODELS.build(loss) if isinstance(loss, dict) else loss
        if 'weight' not in inspect.signature(self.loss.forward).parameters:
            raise ValueError(
                f'ClassBalancedLoss: {type(self.loss).__name__} takes no '
                'element-wise weight argument, so it cannot be re-weighted')
        if normalize not in NORMALIZATIONS:
            raise ValueError(f'ClassBalancedLoss: normalize={normalize!r}, '
                             f'expected one of {NORMALIZATIONS}')
        weights = effective_number_weights(
            class_counts, beta, name='ClassBalancedLoss.class_counts')
        self.register_buffer('class_weight', weights.float(), persistent=False)
        self.beta = float(beta)
        self.normalize = normalize
        self.enabled = bool(enabled)

    @property
    def loss_name(self) -> str:
        """The wrapped loss's name (for mmseg's losses dict)."""
        return getattr(self.loss, 'loss_name', 'loss_cb')

    def forward(self,
                cls_score: Tensor,
                label: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                **kwargs) -> Tensor:
        """The wrapped loss with class-balanced element weights.

        Args:
            cls_score: Logits (N, C) or (N, C, *spatial).
            label: Hard labels (N,) or (N, *spatial).
            weight: Element-wise weight, multiplied in.
            avg_factor: Divisor of the mean (replaced by the sum of the
                weights with ``normalize='weight_sum'``).
            reduction_override: Passed on.
            **kwargs: Passed on (e.g. mmseg's ``ignore_index``).
        """
        if reduction_override is not None:
            kwargs['reduction_override'] = reduction_override
        if not self.enabled:
            return self.loss(
                cls_score, label, weight=weight, avg_factor=avg_factor,
                **kwargs)
        target, soft = split_target(cls_score, label, 'ClassBalancedLoss')
        if soft:
            raise ValueError(
                'ClassBalancedLoss: soft labels (Mixup/CutMix) mix classes '
                'inside the loss, which a weight per sample cannot express; '
                'use hard labels')
        num_classes = self.class_weight.numel()
        if cls_score.shape[1] != num_classes:
            raise ValueError(
                f'ClassBalancedLoss: the logits have {cls_score.shape[1]} '
                f'classes but class_counts has {num_classes} entries')
        # Out-of-range labels are left to the wrapped loss's own check.
        class_weight = self.class_weight.to(cls_score.device)[target.clamp(
            0, num_classes - 1)]
        if weight is not None:
            class_weight = class_weight * weight
        reduction = reduction_override or getattr(self.loss, 'reduction',
                                                  'mean')
        if self.normalize == 'weight_sum' and reduction == 'mean':
            ignore_index = kwargs.get('ignore_index',
                                      getattr(self.loss, 'ignore_index', None))
            labelled = class_weight if ignore_index is None else \
                class_weight * (target != ignore_index)
            avg_factor = labelled.sum().clamp(min=torch.finfo(
                labelled.dtype).tiny)
        return self.loss(
            cls_score,
            label,
            weight=class_weight,
            avg_factor=avg_factor,
            **kwargs)

    def extra_repr(self) -> str:
        return (f'beta={self.beta}, normalize={self.normalize!r}, '
                f'enabled={self.enabled}')
