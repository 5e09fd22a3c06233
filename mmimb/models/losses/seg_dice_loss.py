"""Soft Dice loss for dense multi-class prediction, ignoring labels.

mmseg's ``DiceLoss`` counts ignored pixels in its prediction sums; here they
are excluded from every sum.
"""
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor

from .labels import valid_labels
from .seg_loss_base import SegLossBase


def soft_dice_loss(logits: Tensor,
                   target: Tensor,
                   smooth: float = 1.0,
                   exponent: int = 1,
                   per_image: bool = True,
                   class_weight: Optional[Tensor] = None,
                   weight: Optional[Tensor] = None,
                   ignore_index: Optional[int] = 255) -> Tensor:
    """``1 - Dice`` of the softmax probabilities, averaged over classes::

        Dice_c = (2 sum p_c t_c + smooth) / (sum p_c^e + sum t_c^e + smooth)

    with sums over the non-ignored pixels of each image (``per_image``) or
    of the whole batch.

    Args:
        logits: (B, C, ...) scores.
        target: (B, ...) labels.
        smooth: Added to numerator and denominator; a class absent from
            target and prediction then has Dice 1.
        exponent: ``e`` in the denominator (1: Dice, 2: V-Net style).
        per_image: Dice per image, then averaged, or one Dice over the
            batch.
        class_weight: Optional (C,) weights of the class average.
        weight: Optional per-pixel weights, shape of ``target``.
        ignore_index: Label whose pixels enter no sum.

    Returns:
        Tensor: scalar.
    """
    num_classes = logits.shape[1]
    valid = valid_labels(target, num_classes, ignore_index)
    pixel_weight = valid.float() if weight is None else valid * weight
    pixel_weight = pixel_weight.unsqueeze(1)
    target = target.where(valid, torch.zeros_like(target)).long()
    onehot = F.one_hot(target, num_classes).movedim(-1, 1).float()
    probs = F.softmax(logits.float(), dim=1)
    dims = tuple(range(2, logits.dim()))
    if not per_image:
        dims = (0, ) + dims
    inter = (probs * onehot * pixel_weight).sum(dims)
    denom = (probs.pow(exponent) * pixel_weight).sum(dims) + \
        (onehot * pixel_weight).sum(dims)
    loss = 1 - (2 * inter + smooth) / (denom + smooth)
    if class_weight is None:
        return loss.mean()
    class_weight = class_weight.to(loss)
    return (loss * class_weight).sum(-1).mean() / class_weight.sum()


@MODELS.register_module()
class SegDiceLoss(SegLossBase):
    """Soft Dice loss for segmentation that excludes ignored pixels from
    every sum (see :func:`soft_dice_loss`).

    Args:
        smooth: Smoothing term.
        exponent: Exponent of the prediction sum in the denominator.
        per_image: Dice per image (else over the batch).
        class_weight: Per-class weights of the class average (list or file
            path as in mmseg).
        loss_weight: Multiplier of the loss.
        loss_name: Key in the loss dict; must start with ``loss_``.
    """

    def __init__(self,
                 smooth: float = 1.0,
                 exponent: int = 1,
                 per_image: bool = True,
                 class_weight: Optional[Union[Sequence[float], str]] = None,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_dice'):
        super().__init__(class_weight, loss_weight, loss_name)
        self.smooth = smooth
        self.exponent = exponent
        self.per_image = per_image

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                ignore_index: Optional[int] = 255,
                **kwargs) -> Tensor:
        return self.loss_weight * soft_dice_loss(
            pred, target, self.smooth, self.exponent, self.per_image,
            self.class_weight_tensor(), weight, ignore_index)
