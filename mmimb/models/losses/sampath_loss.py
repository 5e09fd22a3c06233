"""SAM-Path's training loss (``SAMLoss`` in SAM-Path's and the DFA reference
code's ``losses.py``), reproduced term by term.

The decoder predicts C + 1 masks: mask 0 for SAM-Path's class 0, the pixels
outside the annotated region that the loss ignores, and masks 1..C for the
C classes. With ``x`` the logits and ``t`` the one-hot labels of classes
0..C (ignored pixels labelled 0):

- ignored pixels: their logits are multiplied by 0 (so they pass no
  gradient) and labelled class 0, as the reference does;
- focal: MONAI's ``FocalLoss(include_background=False)``, a *sigmoid*
  (per-class binary) focal loss with gamma 2 and no alpha on the logits of
  masks 1..C, averaged over every (image, class, pixel) element, the
  ignored pixels included (each adds ``log(2) / 4`` and no gradient);
- Dice: MONAI's ``DiceLoss(include_background=False)`` on the *softmax*
  over all C + 1 masks, per image and class 1..C,
  ``1 - (2 sum p t + 1e-5) / (sum p + sum t + 1e-5)``, averaged over images
  and classes (an ignored pixel adds ``1 / (C + 1)`` to every class's
  ``sum p``);
- IoU: the mean squared error between the predicted IoU of classes 1..C
  and the IoU of the thresholded softmax (``p >= 0.5``) with the labels,
  per image (``intersection / (union + 1e-7)``).

``ignored_pixels='exclude'`` leaves ignored pixels out of every sum and
mean instead (our variant, not the reference's).
"""
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor, nn

from .labels import valid_labels

IGNORED_PIXELS = ('reference', 'exclude')
DICE_SMOOTH = 1e-5  # MONAI's smooth_nr and smooth_dr
IOU_EPS = 1e-7


def sampath_targets(masks: Tensor, target: Tensor,
                    ignore_index: Optional[int]):
    """The logits and one-hot labels SAM-Path's loss sees.

    Args:
        masks: (B, C + 1, H, W) logits, mask 0 for the ignored class.
        target: (B, H, W) labels in [0, C) or ``ignore_index``.
        ignore_index: Label of the pixels SAM-Path calls class 0.

    Returns:
        tuple: logits with ignored pixels zeroed (float32), one-hot labels
        (B, C + 1, H, W) with ignored pixels in class 0, and the (B, H, W)
        mask of labelled pixels.
    """
    num_classes = masks.shape[1] - 1
    valid = valid_labels(target, num_classes, ignore_index, 'SAMPathLoss')
    logits = masks.float() * valid.unsqueeze(1)
    labels = torch.where(valid, target + 1, torch.zeros_like(target)).long()
    onehot = F.one_hot(labels, num_classes + 1).movedim(-1, 1).float()
    return logits, onehot, valid


def sampath_focal_loss(logits: Tensor,
                       onehot: Tensor,
                       valid: Optional[Tensor] = None,
                       gamma: float = 2.0) -> Tensor:
    """Sigmoid focal loss of masks 1..C, mean over images, classes and
    pixels (over labelled pixels only if ``valid`` is given).

    Args:
        logits: (B, C + 1, H, W).
        onehot: (B, C + 1, H, W) in {0, 1}.
        valid: (B, H, W) bool, or ``None`` for every pixel.
        gamma: Focusing parameter.
    """
    x, t = logits[:, 1:], onehot[:, 1:]
    bce = F.binary_cross_entropy_with_logits(x, t, reduction='none')
    # (1 - p_t) ** gamma, computed in log space as MONAI does
    loss = (F.logsigmoid(-x * (2 * t - 1)) * gamma).exp() * bce
    if valid is None:
        return loss.mean()
    loss = loss * valid.unsqueeze(1)
    return loss.sum() / (torch.count_nonzero(valid) * x.shape[1]).clamp(min=1)


def sampath_dice_loss(logits: Tensor,
                      onehot: Tensor,
                      valid: Optional[Tensor] = None) -> Tensor:
    """``1 - Dice`` of the softmax over all C + 1 masks, per image and class
    1..C, averaged (sums over labelled pixels only if ``valid`` is given)."""
    probs = logits.softmax(dim=1)[:, 1:]
    t = onehot[:, 1:]
    if valid is not None:
        probs = probs * valid.unsqueeze(1)
    inter = (probs * t).sum((2, 3))
    denom = probs.sum((2, 3)) + t.sum((2, 3))
    return (1 - (2 * inter + DICE_SMOOTH) / (denom + DICE_SMOOTH)).mean()


def sampath_iou_targets(logits: Tensor,
                        onehot: Tensor,
                        valid: Optional[Tensor] = None) -> Tensor:
    """IoU per image and class 1..C of the thresholded softmax
    (``p >= 0.5``) with the labels, shape (B, C); no gradient."""
    with torch.no_grad():
        pred = (logits.softmax(dim=1)[:, 1:] >= 0.5).float()
        t = onehot[:, 1:]
        if valid is not None:
            pred = pred * valid.unsqueeze(1)
        inter = (pred * t).sum((2, 3))
        union = pred.sum((2, 3)) + t.sum((2, 3)) - inter
        return inter / (union + IOU_EPS)


@MODELS.register_module()
class SAMPathLoss(nn.Module):
    """SAM-Path's loss: ``focal_weight * focal + dice_weight * Dice +
    iou_weight * MSE(IoU)`` on C + 1 masks whose mask 0 is the ignored
    class (see the module docstring for each term).

    Defaults are SAM-Path's and DFA's BCSS weights. ``DFAHead`` with
    ``token_layout='sam'`` calls it.

    Args:
        focal_weight: Weight of the sigmoid focal term.
        dice_weight: Weight of the Dice term.
        iou_weight: Weight of the IoU-prediction MSE (0 leaves it out).
        gamma: Focusing parameter of the focal term.
        ignored_pixels: ``'reference'`` (ignored pixels enter the means and
            the Dice sums as SAM-Path's code has them) or ``'exclude'``.
    """

    def __init__(self,
                 focal_weight: float = 0.25,
                 dice_weight: float = 0.75,
                 iou_weight: float = 0.0625,
                 gamma: float = 2.0,
                 ignored_pixels: str = 'reference'):
        super().__init__()
        if ignored_pixels not in IGNORED_PIXELS:
            raise ValueError(f'ignored_pixels={ignored_pixels!r}; expected '
                             f'one of {IGNORED_PIXELS}')
        self.focal_weight = focal_weight
        self.dice_weight = dice_weight
        self.iou_weight = iou_weight
        self.gamma = gamma
        self.ignored_pixels = ignored_pixels

    def forward(self,
                masks: Tensor,
                target: Tensor,
                iou_pred: Optional[Tensor] = None,
                ignore_index: Optional[int] = 255) -> Dict[str, Tensor]:
        """
        Args:
            masks: (B, C + 1, H, W) logits, mask 0 for the ignored class.
            target: (B, H, W) labels in [0, C) or ``ignore_index``.
            iou_pred: (B, C) predicted IoU of classes 0..C-1 (needed when
                ``iou_weight`` is not 0).
            ignore_index: Label of the ignored pixels.

        Returns:
            dict: ``loss_focal``, ``loss_dice`` and (with an IoU weight)
            ``loss_iou``, each weighted.
        """
        logits, onehot, valid = sampath_targets(masks, target, ignore_index)
        mask = valid if self.ignored_pixels == 'exclude' else None
        losses = dict(
            loss_focal=self.focal_weight *
            sampath_focal_loss(logits, onehot, mask, self.gamma),
            loss_dice=self.dice_weight *
            sampath_dice_loss(logits, onehot, mask))
        if self.iou_weight:
            if iou_pred is None:
                raise ValueError('SAMPathLoss with iou_weight='
                                 f'{self.iou_weight} needs iou_pred')
            iou = sampath_iou_targets(logits, onehot, mask)
            losses['loss_iou'] = self.iou_weight * F.mse_loss(
                iou_pred.float(), iou)
        return losses
