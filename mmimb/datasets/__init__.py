from .long_tailed import LongTailedDataset, long_tailed_counts
from .synthetic_tissue import SyntheticTissueDataset, TissueGenerator

__all__ = [
    'LongTailedDataset', 'SyntheticTissueDataset', 'TissueGenerator',
    'long_tailed_counts'
]
