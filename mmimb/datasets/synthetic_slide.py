"""Generated whole-slide images: tissue pieces on glass, with their labels,
written as pyramidal TIFF with mpp metadata (tests, docs, benchmarks).

The tissue is :class:`TissueGenerator`'s (the same classes and looks as
:class:`SyntheticTissueDataset`), cut to a few smooth pieces; the glass
around them is near-white with a little noise and labelled IGNORE_INDEX.
"""
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

from .conversion import IGNORE_INDEX
from .synthetic_tissue import DEFAULT_CLASS_SPECS, TissueGenerator

_GLASS = np.array((242, 240, 244), np.float32)


def synthetic_slide(height: int,
                    width: int,
                    seed: int = 0,
                    class_specs: Sequence[dict] = DEFAULT_CLASS_SPECS,
                    field_res: Optional[int] = None,
                    tissue_fraction: float = 0.5,
                    pieces_res: int = 3) -> Tuple[np.ndarray, np.ndarray]:
    """A tissue image on glass and its labels.

    Args:
        height, width: Size in pixels.
        seed: Seed; the result depends only on the arguments.
        class_specs: Classes, as for :class:`TissueGenerator`.
        field_res: Resolution of the class layout over the longer side
            (default: regions of about 100 px).
        tissue_fraction: Expected share of the image that is tissue.
        pieces_res: Resolution of the smooth field that cuts the pieces.

    Returns:
        tuple: RGB uint8 (height, width, 3), labels uint8 (height, width)
        with IGNORE_INDEX on glass.
    """
    size = max(height, width)
    generator = TissueGenerator(
        class_specs,
        img_size=size,
        seed=seed,
        field_res=field_res or max(2, size // 100))
    image, labels = generator(0)
    image, labels = image[:height, :width], labels[:height, :width].copy()
    rng = np.random.default_rng((seed, 1))
    field = cv2.resize(
        rng.standard_normal((pieces_res, pieces_res)).astype(np.float32),
        (width, height),
        interpolation=cv2.INTER_CUBIC)
    # Tissue stays off the slide's border, like a section on its glass.
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    border = np.minimum.reduce(
        [yy, height - 1 - yy, xx, width - 1 - xx]) / (0.08 * size)
    field -= 3 * np.clip(1 - border, 0, 1)
    tissue = field > np.quantile(field, 1 - tissue_fraction)
    glass = _GLASS + 3 * rng.standard_normal(
        (height, width, 3), dtype=np.float32)
    image = np.where(tissue[..., None], image,
                     np.clip(glass, 0, 255).astype(np.uint8))
    labels[~tissue] = IGNORE_INDEX
    return image, labels


def write_pyramidal_tiff(path: str,
                         image: np.ndarray,
                         mpp: Optional[float],
                         levels: int = 2,
                         tile: int = 256,
                         compression: Optional[str] = 'zlib',
                         subifds: bool = False) -> None:
    """Write an image as a tiled pyramid, each level half the previous.

    Args:
        path: The TIFF file.
        image: RGB uint8 (H, W, 3), or one label per pixel (H, W).
        mpp: Level-0 microns per pixel, stored in the resolution tags
            (None: no resolution).
        levels: Number of levels.
        tile: TIFF tile side.
        compression: tifffile compression name (None: uncompressed).
        subifds: Levels as SubIFDs of level 0 (the OME-TIFF layout) rather
            than successive pages (which OpenSlide reads too).
    """
    import tifffile
    rgb = image.ndim == 3
    interpolation = cv2.INTER_AREA if rgb else cv2.INTER_NEAREST
    with tifffile.TiffWriter(path) as tif:
        level = image
        for k in range(levels):
            if k:
                h, w = level.shape[:2]
                level = cv2.resize(level, (-(-w // 2), -(-h // 2)),
                                   interpolation=interpolation)
            options = dict(
                tile=(tile, tile),
                photometric='rgb' if rgb else 'minisblack',
                compression=compression,
                metadata=None)
            if mpp is not None:
                scale = image.shape[1] / level.shape[1]
                options.update(
                    resolution=(1e4 / (mpp * scale),) * 2,
                    resolutionunit='CENTIMETER')
            if k == 0 and subifds:
                options['subifds'] = levels - 1
            elif k:
                options['subfiletype'] = 1
            tif.write(level, **options)
