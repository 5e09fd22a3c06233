from .dfa_bias_logger_hook import DFABiasLoggerHook

__all__ = ['DFABiasLoggerHook']
