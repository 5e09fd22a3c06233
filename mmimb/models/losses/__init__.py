from .ccar_loss import CCARLoss, ccar_loss, ccar_weight
from .class_prior_loss import ClassPriorLoss
from .logit_adjusted_loss import (BalancedSoftmaxLoss, LogitAdjustedLoss,
                                  adjust_logits, logit_adjusted_loss)

__all__ = [
    'BalancedSoftmaxLoss', 'CCARLoss', 'ClassPriorLoss', 'LogitAdjustedLoss',
    'adjust_logits', 'ccar_loss', 'ccar_weight', 'logit_adjusted_loss'
]
