from .csba_neck import CSBANeck
from .multi_branch_neck import MultiBranchNeck

__all__ = ['CSBANeck', 'MultiBranchNeck']
