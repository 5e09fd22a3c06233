from .branch_attention import (BranchAttention, MultiBranchConv,
                               attention_statistics, branch_weights,
                               fuse_branches)
from .class_wise_linear import ClassWiseLinear
from .dfa_attention import BIAS_SHARING, DynamicFocalAttention
from .dfa_bias import BIAS_MODES, DELTA_NAME, DFABias
from .dfa_decoder_layer import DFATransformerDecoderLayer, MLPBlock
from .dfa_prior import (PRIORS, class_prior, difficulty_prior, focal_prior,
                        inverse_log_freq_prior, load_class_dice)
from .position_encoding import RandomFourierPositionEncoding
from .sdpa_attention import SDPAttention

__all__ = [
    'BIAS_MODES', 'BIAS_SHARING', 'DELTA_NAME', 'PRIORS', 'BranchAttention',
    'ClassWiseLinear', 'DFABias', 'DFATransformerDecoderLayer',
    'DynamicFocalAttention', 'MLPBlock', 'MultiBranchConv',
    'RandomFourierPositionEncoding', 'SDPAttention', 'attention_statistics',
    'branch_weights',
    'class_prior', 'difficulty_prior', 'focal_prior', 'fuse_branches',
    'inverse_log_freq_prior', 'load_class_dice'
]
