from .synthetic_tissue import SyntheticTissueDataset, TissueGenerator

__all__ = ['SyntheticTissueDataset', 'TissueGenerator']
