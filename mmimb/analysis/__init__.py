"""Gradient analysis in plain PyTorch: class-specific gradients and the
Gradient Conflict Matrix (docs/gradient_conflict.md)."""
from .class_gradients import ClassGradients, class_gradients
from .conflict import (GradientConflict, conflict_matrix, conflict_with_rest,
                       cosine_from_gram, gradient_conflict, summarize)
from .layer_selection import Coverage, select_layers

__all__ = [
    'ClassGradients', 'Coverage', 'GradientConflict', 'class_gradients',
    'conflict_matrix', 'conflict_with_rest', 'cosine_from_gram',
    'gradient_conflict', 'select_layers', 'summarize'
]
