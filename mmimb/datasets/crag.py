"""CRAG (colorectal adenocarcinoma gland dataset, Graham et al., MILD-Net,
Medical Image Analysis 2019) as a binary gland segmentation task."""
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS


@DATASETS.register_module()
class CRAGDataset(BaseSegDataset):
    """CRAG images written by ``tools/dataset_converters/crag.py``.

    Layout: ``img_dir/{train,val,test}/*.png`` and
    ``ann_dir/{train,val,test}/*.png`` with labels 0 (background) and 1
    (gland: every nonzero instance id of the source annotation).

    Args:
        img_suffix: Suffix of the image files.
        seg_map_suffix: Suffix of the label files.
        **kwargs: Other :class:`mmseg.datasets.BaseSegDataset` arguments.
    """

    METAINFO = dict(
        classes=('background', 'gland'), palette=[[0, 0, 0], [255, 64, 64]])

    def __init__(self,
                 img_suffix: str = '.png',
                 seg_map_suffix: str = '.png',
                 **kwargs) -> None:
        super().__init__(
            img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)
