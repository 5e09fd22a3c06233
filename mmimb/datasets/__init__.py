from .bcss import BCSSDataset
from .bdsa import BDSADataset
from .class_stats import ClassStats, class_frequencies
from .crag import CRAGDataset
from .ebhi_seg import EBHISegDataset
from .long_tailed import LongTailedDataset, long_tailed_counts
from .sample_labels import single_labels
from .synthetic_slide import synthetic_slide, write_pyramidal_tiff
from .synthetic_tissue import SyntheticTissueDataset, TissueGenerator
from .transforms import LoadCodedAnnotations, RandomRotate90

__all__ = [
    'BCSSDataset', 'BDSADataset', 'CRAGDataset', 'ClassStats',
    'EBHISegDataset', 'LoadCodedAnnotations', 'LongTailedDataset',
    'RandomRotate90', 'SyntheticTissueDataset', 'TissueGenerator',
    'class_frequencies', 'long_tailed_counts', 'single_labels',
    'synthetic_slide', 'write_pyramidal_tiff'
]
