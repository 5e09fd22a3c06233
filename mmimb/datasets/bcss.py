"""BCSS (Breast Cancer Semantic Segmentation, Amgad et al., Bioinformatics
2019) as used by the DFA experiments: 5 tissue groups.

The source masks carry the 22 ground-truth codes of the BCSS repository's
``meta/gtruth_codes.tsv``; :data:`BCSS_CODES` reproduces that table. The
converter ``tools/dataset_converters/bcss.py`` groups them with
:data:`DEFAULT_GROUPING` (or a grouping of the user's) into the labels this
dataset reads.
"""
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

# meta/gtruth_codes.tsv of github.com/PathologyDataScience/BCSS.
BCSS_CODES = {
    'outside_roi': 0,
    'tumor': 1,
    'stroma': 2,
    'lymphocytic_infiltrate': 3,
    'necrosis_or_debris': 4,
    'glandular_secretions': 5,
    'blood': 6,
    'exclude': 7,
    'metaplasia_NOS': 8,
    'fat': 9,
    'plasma_cells': 10,
    'other_immune_infiltrate': 11,
    'mucoid_material': 12,
    'normal_acinus_or_duct': 13,
    'lymphatics': 14,
    'undetermined': 15,
    'nerve': 16,
    'skin_adnexa': 17,
    'blood_vessel': 18,
    'angioinvasion': 19,
    'dcis': 20,
    'other': 21,
}

# Class name -> BCSS codes; 'ignore' codes become 255 (don't care). Codes 0
# (outside the ROI) and 7 (exclude) are don't-care by the dataset's own
# instructions; the tissue grouping is the one common in the literature.
DEFAULT_GROUPING = {
    'tumor': [1, 19, 20],
    'stroma': [2],
    'inflammatory': [3, 10, 11, 14],
    'necrosis': [4],
    'other': [5, 6, 8, 9, 12, 13, 15, 16, 17, 18, 21],
    'ignore': [0, 7],
}


@DATASETS.register_module()
class BCSSDataset(BaseSegDataset):
    """BCSS tiles written by ``tools/dataset_converters/bcss.py``.

    Layout: ``img_dir/{train,val,test}/*.png`` (RGB tiles) and
    ``ann_dir/{train,val,test}/*.png`` (uint8 labels 0-4, 255 = don't
    care), with the same file names.

    Args:
        img_suffix: Suffix of the image files.
        seg_map_suffix: Suffix of the label files.
        **kwargs: Other :class:`mmseg.datasets.BaseSegDataset` arguments.
    """

    METAINFO = dict(
        classes=('tumor', 'stroma', 'inflammatory', 'necrosis', 'other'),
        palette=[[200, 0, 0], [240, 160, 200], [40, 60, 220], [120, 120, 40],
                 [0, 160, 160]])

    def __init__(self,
                 img_suffix: str = '.png',
                 seg_map_suffix: str = '.png',
                 **kwargs) -> None:
        super().__init__(
            img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)
