from .branch_attention import (BranchAttention, MultiBranchConv,
                               branch_weights, fuse_branches)

__all__ = [
    'BranchAttention', 'MultiBranchConv', 'branch_weights', 'fuse_branches'
]
