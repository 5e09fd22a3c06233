from .seg_dice_loss import SegDiceLoss, soft_dice_loss
from .seg_focal_loss import SegFocalLoss, softmax_focal_loss, valid_labels
from .seg_loss_base import SegLossBase

__all__ = [
    'SegDiceLoss', 'SegFocalLoss', 'SegLossBase', 'soft_dice_loss',
    'softmax_focal_loss', 'valid_labels'
]
