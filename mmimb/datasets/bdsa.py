"""BDSA, the brain tissue set of the DFA paper (private).

The dataset itself cannot be shared; this class reads data that follows its
published label codes, so that owners of such data can train on it without
a conversion step: the codes are mapped to class indices when the labels are
loaded, through mmseg's ``label_map`` mechanism (applied by
``LoadAnnotations``).
"""
from typing import Dict, List, Optional

from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

# Published grey value of each class in the label images; 191 marks pixels
# to exclude (don't care).
BDSA_CODES = {0: 0, 31: 1, 63: 2, 95: 3, 127: 4, 191: 255}


@DATASETS.register_module()
class BDSADataset(BaseSegDataset):
    """Brain tissue segmentation with the BDSA label codes.

    Layout (like the converted datasets): ``img_dir/{train,val,test}/*.png``
    and ``ann_dir/{train,val,test}/*.png``; label images hold the codes of
    :data:`BDSA_CODES` (0 background, 31 grey matter, 63 white matter,
    95 leptomeninges, 127 superficial cortex, 191 exclude -> 255). Any other
    grey value is not a BDSA code: load the labels with
    ``LoadCodedAnnotations`` (as ``configs/_base_/datasets/bdsa.py`` does),
    which refuses it naming the file; mmseg's ``LoadAnnotations`` would
    pass it through to the loss.

    Args:
        label_codes: Grey value -> class index (255 = ignore). ``None`` for
            label images that already hold class indices 0-4.
        img_suffix: Suffix of the image files.
        seg_map_suffix: Suffix of the label files.
        **kwargs: Other :class:`mmseg.datasets.BaseSegDataset` arguments; a
            ``metainfo=dict(classes=...)`` subset works as in mmseg (classes
            left out become 255).
    """

    METAINFO = dict(
        classes=('background', 'grey_matter', 'white_matter',
                 'leptomeninges', 'superficial_cortex'),
        palette=[[0, 0, 0], [128, 128, 128], [240, 240, 240], [220, 60, 60],
                 [60, 120, 220]])

    def __init__(self,
                 label_codes: Optional[Dict[int, int]] = BDSA_CODES,
                 img_suffix: str = '.png',
                 seg_map_suffix: str = '.png',
                 **kwargs) -> None:
        self.label_codes = None if label_codes is None else {
            int(k): int(v)
            for k, v in label_codes.items()
        }
        super().__init__(
            img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)

    def code_map(self) -> Optional[Dict[int, int]]:
        """Grey value -> label index actually used, after any class subset
        chosen through ``metainfo`` (mmseg's ``self.label_map``, which maps
        class index to subset index). Label images holding class indices
        get the identity map, so that ``LoadCodedAnnotations`` can check
        them."""
        if self.label_codes is None:
            return self.label_map or {
                i: i
                for i in range(len(self.METAINFO['classes']))
            }
        subset = self.label_map or {}
        return {
            code: index if index == 255 else subset.get(index, index)
            for code, index in self.label_codes.items()
        }

    def load_data_list(self) -> List[dict]:
        data_list = super().load_data_list()
        label_map = self.code_map()
        for info in data_list:
            info['label_map'] = label_map
        return data_list
