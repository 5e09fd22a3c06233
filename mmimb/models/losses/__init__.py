from .ccar_loss import (CCARLoss, ccar_loss, ccar_weight, class_weight_ratio,
                        weight_frequencies)
from .class_balanced_loss import ClassBalancedLoss, effective_number_weights
from .class_prior_loss import ClassPriorLoss, ElementwiseLoss
from .focal_loss import SoftmaxFocalLoss, focal_elementwise
from .labels import (check_labels, flush_label_checks, guard_labels,
                     valid_labels)
from .ldam_loss import LDAMLoss, ldam_loss, ldam_margins
from .logit_adjusted_loss import (BalancedSoftmaxLoss, LogitAdjustedLoss,
                                  adjust_logits, logit_adjusted_loss)
from .seg_dice_loss import SegDiceLoss, soft_dice_loss
from .seg_focal_loss import SegFocalLoss, focal_term, softmax_focal_loss
from .seg_loss_base import SegLossBase

__all__ = [
    'BalancedSoftmaxLoss', 'CCARLoss', 'ClassPriorLoss', 'LogitAdjustedLoss',
    'SegDiceLoss', 'SegFocalLoss', 'SegLossBase', 'adjust_logits',
    'ccar_loss', 'ccar_weight', 'logit_adjusted_loss', 'soft_dice_loss',
    'softmax_focal_loss', 'valid_labels', 'check_labels',
    'ClassBalancedLoss', 'ElementwiseLoss', 'LDAMLoss', 'SoftmaxFocalLoss',
    'effective_number_weights', 'flush_label_checks', 'focal_elementwise',
    'focal_term', 'guard_labels', 'ldam_loss', 'ldam_margins',
    'class_weight_ratio', 'weight_frequencies'
]
