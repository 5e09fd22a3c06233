"""Inference APIs: whole-slide segmentation with any MMSegmentation
segmentor (docs/wsi.md). The slide readers need ``pip install
"mmimb[wsi]"`` (tifffile, openslide-python, openslide-bin)."""
from .inference import init_segmentor, predict_logits
from .slide import (OpenSlideReader, SlideError, SlideView, TiffSlideReader,
                    open_slide)
from .tiling import Stitcher, TileGrid
from .tissue import TissueMask, detect_tissue
from .wsi_segmenter import WSIResult, WSISegmenter

__all__ = [
    'OpenSlideReader', 'SlideError', 'SlideView', 'Stitcher',
    'TiffSlideReader', 'TileGrid', 'TissueMask', 'WSIResult', 'WSISegmenter',
    'detect_tissue', 'init_segmentor', 'open_slide', 'predict_logits'
]
