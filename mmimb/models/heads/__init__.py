from .class_wise_linear_head import ClassWiseLinearClsHead, class_wise_linear
from .cosine_linear_head import CosineLinearClsHead, cosine_logits
from .decoupled_heads import LWSClsHead, TauNormClsHead, tau_normalized_logits
from .posthoc_adjusted_head import PostHocAdjustedClsHead

__all__ = [
    'ClassWiseLinearClsHead', 'class_wise_linear', 'CosineLinearClsHead',
    'LWSClsHead', 'PostHocAdjustedClsHead', 'TauNormClsHead',
    'cosine_logits', 'tau_normalized_logits'
]
