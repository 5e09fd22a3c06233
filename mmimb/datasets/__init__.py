from .bcss import BCSSDataset
from .bdsa import BDSADataset
from .class_stats import ClassStats, class_frequencies
from .crag import CRAGDataset
from .ebhi_seg import EBHISegDataset
from .image_bank import ImageBankDataset
from .long_tailed import LongTailedDataset, long_tailed_counts
from .sample_labels import single_labels
from .synthetic_tissue import SyntheticTissueDataset, TissueGenerator
from .synthetic_tissue_difficulty import (appearance_overlap,
                                          calibrate_difficulty,
                                          measured_difficulty, overlap_table)
from .transforms import LoadCodedAnnotations, RandomRotate90

__all__ = [
    'BCSSDataset', 'BDSADataset', 'CRAGDataset', 'ClassStats',
    'EBHISegDataset', 'ImageBankDataset', 'LoadCodedAnnotations',
    'LongTailedDataset',
    'RandomRotate90', 'SyntheticTissueDataset', 'TissueGenerator',
    'appearance_overlap', 'calibrate_difficulty', 'class_frequencies',
    'long_tailed_counts', 'measured_difficulty', 'overlap_table',
    'single_labels'
]
