from .dfa_head import DFAHead

__all__ = ['DFAHead']
