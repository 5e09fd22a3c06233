from .class_wise_linear_head import ClassWiseLinearClsHead, class_wise_linear

__all__ = ['ClassWiseLinearClsHead', 'class_wise_linear']
