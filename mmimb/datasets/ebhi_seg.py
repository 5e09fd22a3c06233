"""EBHI-Seg (Shi et al., Frontiers in Medicine 10:1114673, 2023): colorectal
biopsy images, one gland mask each, in six diagnostic categories.

The segmentation task built from it (ours, as described in
../shared/data/README.md and docs/datasets.md): background plus one gland
class per category, a mask's gland pixels taking the image's category.
"""
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

# Source folder name -> class name, in the order of the dataset's readme.
# The label of a category is its position here plus 1 (0 is background).
EBHI_CATEGORIES = {
    'Normal': 'normal',
    'Polyp': 'polyp',
    'Low-grade IN': 'low_grade_IN',
    'High-grade IN': 'high_grade_IN',
    'Serrated adenoma': 'serrated_adenoma',
    'Adenocarcinoma': 'adenocarcinoma',
}


@DATASETS.register_module()
class EBHISegDataset(BaseSegDataset):
    """EBHI-Seg images written by ``tools/dataset_converters/ebhi_seg.py``.

    Layout: ``img_dir/{train,val,test}/*.png`` (224x224 RGB) and
    ``ann_dir/{train,val,test}/*.png`` with labels 0 (background), 1-6 (gland
    of the image's category, see :data:`EBHI_CATEGORIES`) and 255 (the
    optional band around gland edges).

    Args:
        img_suffix: Suffix of the image files.
        seg_map_suffix: Suffix of the label files.
        **kwargs: Other :class:`mmseg.datasets.BaseSegDataset` arguments.
    """

    METAINFO = dict(
        classes=('background', ) + tuple(EBHI_CATEGORIES.values()),
        palette=[[0, 0, 0], [60, 180, 75], [255, 225, 25], [0, 130, 200],
                 [245, 130, 48], [145, 30, 180], [230, 25, 75]])

    def __init__(self,
                 img_suffix: str = '.png',
                 seg_map_suffix: str = '.png',
                 **kwargs) -> None:
        super().__init__(
            img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)
