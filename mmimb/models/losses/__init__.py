from .ccar_loss import CCARLoss, ccar_loss, ccar_weight
from .class_prior_loss import ClassPriorLoss
from .labels import check_labels, valid_labels
from .logit_adjusted_loss import (BalancedSoftmaxLoss, LogitAdjustedLoss,
                                  adjust_logits, logit_adjusted_loss)
from .sampath_loss import (SAMPathLoss, sampath_dice_loss, sampath_focal_loss,
                           sampath_iou_targets, sampath_targets)
from .seg_dice_loss import SegDiceLoss, soft_dice_loss
from .seg_focal_loss import SegFocalLoss, softmax_focal_loss
from .seg_loss_base import SegLossBase

__all__ = [
    'BalancedSoftmaxLoss', 'CCARLoss', 'ClassPriorLoss', 'LogitAdjustedLoss',
    'SAMPathLoss', 'sampath_dice_loss', 'sampath_focal_loss',
    'sampath_iou_targets', 'sampath_targets',
    'SegDiceLoss', 'SegFocalLoss', 'SegLossBase', 'adjust_logits',
    'ccar_loss', 'ccar_weight', 'logit_adjusted_loss', 'soft_dice_loss',
    'softmax_focal_loss', 'valid_labels', 'check_labels'
]
