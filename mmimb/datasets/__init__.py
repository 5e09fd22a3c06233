from .bcss import BCSSDataset
from .bdsa import BDSADataset
from .crag import CRAGDataset
from .ebhi_seg import EBHISegDataset
from .synthetic_tissue import SyntheticTissueDataset, TissueGenerator
from .transforms import RandomRotate90

__all__ = [
    'BCSSDataset', 'BDSADataset', 'CRAGDataset', 'EBHISegDataset',
    'RandomRotate90', 'SyntheticTissueDataset', 'TissueGenerator'
]
