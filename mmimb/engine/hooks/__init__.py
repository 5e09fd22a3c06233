from .dfa_bias_logger_hook import DFABiasLoggerHook
from .drw_hook import DRWHook
from .gradient_conflict_hook import GradientConflictHook

__all__ = ['DFABiasLoggerHook', 'DRWHook', 'GradientConflictHook']
