from .bcss import BCSSDataset
from .bdsa import BDSADataset
from .cifar_autoaugment import CIFAR10_POLICY, CIFAR10AutoAugment
from .class_stats import ClassStats, class_frequencies
from .crag import CRAGDataset
from .ebhi_seg import EBHISegDataset
from .long_tail_benchmarks import ImageListDataset, INat2018Dataset
from .long_tailed import LongTailedDataset, long_tailed_counts
from .rebalancing_samplers import (ClassBalancedSampler,
                                   ClassRebalancingSampler,
                                   ProgressivelyBalancedSampler,
                                   SquareRootSampler, class_sampling_probs,
                                   progressive_lambda)
from .sample_labels import single_labels
from .synthetic_slide import synthetic_slide, write_pyramidal_tiff
from .synthetic_tissue import SyntheticTissueDataset, TissueGenerator
from .synthetic_tissue_difficulty import (appearance_overlap,
                                          calibrate_difficulty,
                                          measured_difficulty, overlap_table)
from .transforms import LoadCodedAnnotations, RandomRotate90

__all__ = [
    'BCSSDataset', 'BDSADataset', 'CRAGDataset', 'ClassStats',
    'EBHISegDataset', 'LoadCodedAnnotations', 'LongTailedDataset',
    'RandomRotate90', 'SyntheticTissueDataset', 'TissueGenerator',
    'appearance_overlap', 'calibrate_difficulty', 'class_frequencies',
    'long_tailed_counts', 'measured_difficulty', 'overlap_table',
    'single_labels', 'synthetic_slide', 'write_pyramidal_tiff',
    'ClassBalancedSampler', 'ClassRebalancingSampler',
    'ProgressivelyBalancedSampler', 'SquareRootSampler',
    'class_sampling_probs', 'progressive_lambda', 'ImageListDataset',
    'INat2018Dataset', 'CIFAR10AutoAugment', 'CIFAR10_POLICY'
]
