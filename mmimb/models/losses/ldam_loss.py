"""Label-distribution-aware margin loss (LDAM; Cao et al., NeurIPS 2019).

Cross-entropy with the true class's logit lowered by a margin that grows
for rarer classes, ``Delta_c = K / n_c ** (1/4)``:

    L = CE(s * (z - Delta_y e_y), y)

As in the authors' code (kaidic/LDAM-DRW, ``losses.py``), ``K`` makes the
largest margin (that of the rarest class) ``max_margin = 0.5``, ``z`` are
the cosine similarities of a normalised linear classifier (their
``NormedLinear``; mmimb's ``CosineLinearClsHead``) and ``s = 30`` scales
them. The deferred re-weighting (DRW) of LDAM-DRW is a separate piece,
usable by any loss: ``ClassBalancedLoss`` switched on by ``DRWHook``.
"""
import numbers
from typing import Optional

import torch.nn.functional as F
from mmengine.registry import MODELS
from torch import Tensor

from mmimb.utils import load_class_freq
from mmimb.utils.class_freq import ClassFreq
from .class_prior_loss import ClassPriorLoss
from .labels import NO_IGNORE


def ldam_margins(class_freq: ClassFreq, max_margin: float = 0.5) -> Tensor:
    """Per-class margins ``Delta_c`` proportional to ``n_c ** (-1/4)``, the
    largest equal to ``max_margin``.

    Counts and frequencies give the same margins (the normalisation to
    ``max_margin`` cancels the total).

    Args:
        class_freq: (C,) positive counts or frequencies (a list, tensor or
            class-statistics JSON path).
        max_margin: Margin of the rarest class. Defaults to 0.5.

    Returns:
        Tensor: float64, (C,).
    """
    if isinstance(max_margin, bool) or not isinstance(
            max_margin, numbers.Real) or not max_margin > 0:
        raise ValueError(f'max_margin={max_margin!r}: expected a number > 0')
    freq = load_class_freq(class_freq, name='ldam_margins.class_freq')
    margins = freq.pow(-0.25)
    return margins * (max_margin / margins.max())


def ldam_loss(logits: Tensor,
              target: Tensor,
              margins: Tensor,
              scale: float = 30.0,
              ignore_index: Optional[int] = None) -> Tensor:
    """Element-wise LDAM loss ``CE(scale * (z - Delta_y e_y), y)``.

    Args:
        logits: (N, C) or (N, C, *spatial): cosine similarities ``z``.
        target: Hard labels (N,) or (N, *spatial), in ``[0, C)`` or
            ``ignore_index``.
        margins: (C,) from :func:`ldam_margins`.
        scale: ``s``. Defaults to 30 (the authors').
        ignore_index: Hard label whose elements get loss 0.

    Returns:
        Tensor: (N,) or (N, *spatial).
    """
    ignored = None if ignore_index is None else target == ignore_index
    safe = target if ignored is None else target.masked_fill(ignored, 0)
    margin = margins.to(logits.dtype)[safe].unsqueeze(1)
    shifted = logits.scatter_add(1, safe.unsqueeze(1), -margin)
    return F.cross_entropy(
        scale * shifted,
        target,
        ignore_index=NO_IGNORE if ignore_index is None else ignore_index,
        reduction='none')


@MODELS.register_module()
class LDAMLoss(ClassPriorLoss):
    """LDAM loss (Cao et al., "Learning Imbalanced Datasets with
    Label-Distribution-Aware Margin Loss", NeurIPS 2019), see
    :func:`ldam_loss`.

    Expects cosine-similarity logits (``CosineLinearClsHead``), as the
    authors train it. Hard labels only: with Mixup/CutMix labels the margin
    has no single true class, so soft labels are refused.

    Args:
        class_freq (list | str | Tensor): Class counts or frequencies of the
            training set, a class-statistics JSON path, or ``'auto'``.
        max_margin (float): Margin of the rarest class. Defaults to 0.5.
        scale (float): Scale ``s`` of the logits. Defaults to 30.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``.
        ignore_index (int, optional): Hard label to ignore.
        loss_name (str): Name in mmseg's losses dict. Defaults to
            ``'loss_ldam'``.
    """

    def __init__(self,
                 class_freq,
                 max_margin: float = 0.5,
                 scale: float = 30.0,
                 loss_weight: float = 1.0,
                 reduction: str = 'mean',
                 ignore_index: Optional[int] = None,
                 loss_name: str = 'loss_ldam'):
        super().__init__(class_freq, loss_weight, reduction, ignore_index,
                         loss_name)
        if isinstance(scale, bool) or not isinstance(
                scale, numbers.Real) or not scale > 0:
            raise ValueError(f'LDAMLoss: scale={scale!r}, expected a number '
                             '> 0')
        self.max_margin = float(max_margin)
        self.scale = float(scale)
        self.register_buffer(
            'margins',
            ldam_margins(self.class_freq, max_margin),
            persistent=False)

    def elementwise(self, logits: Tensor, target: Tensor, soft: bool,
                    ignore_index: Optional[int]) -> Tensor:
        if soft:
            raise ValueError(
                'LDAMLoss: soft labels (Mixup/CutMix) have no single true '
                'class to take the margin from; use hard labels')
        return ldam_loss(logits, target, self.margins, self.scale,
                         ignore_index)

    def extra_repr(self) -> str:
        return (f'max_margin={self.max_margin}, scale={self.scale}, ' +
                super().extra_repr())
