from .dfa_bias_logger_hook import DFABiasLoggerHook
from .gradient_conflict_hook import GradientConflictHook

__all__ = ['DFABiasLoggerHook', 'GradientConflictHook']
