from .branch_attention_logger_hook import BranchAttentionLoggerHook
from .channels_last_hook import ChannelsLastHook
from .dfa_bias_logger_hook import DFABiasLoggerHook
from .drw_hook import DRWHook
from .gradient_conflict_hook import GradientConflictHook
from .image_bank_hook import ImageBankHook

__all__ = [
    'BranchAttentionLoggerHook', 'ChannelsLastHook', 'DFABiasLoggerHook',
    'DRWHook', 'GradientConflictHook', 'ImageBankHook'
]
