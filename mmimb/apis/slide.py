"""Whole-slide images: their levels, resolution and regions.

Two readers share one interface. :class:`OpenSlideReader` opens the vendor
formats OpenSlide knows (Aperio SVS, Hamamatsu NDPI, MIRAX, ...) through
``openslide-python``; :class:`TiffSlideReader` opens generic pyramidal TIFF
and OME-TIFF through ``tifffile``, decoding only the TIFF tiles (or strips)
that a region touches, so that a level never has to fit in memory.

:class:`SlideView` puts a slide on the pixel grid of a requested microns per
pixel (mpp): it reads from the coarsest level that is at least as fine as the
request and resamples when no level matches.
"""
import math
import os.path as osp
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

from mmimb.engine.config_check import ConfigError

# Vendor formats go to OpenSlide; a TIFF that OpenSlide only knows as
# 'generic-tiff' goes to tifffile, which also reads OME-TIFF pyramids.
_OPENSLIDE_GENERIC = 'generic-tiff'
# A level-0 resolution coarser than this is no whole-slide image: it is the
# placeholder an image editor writes (72 dpi is 353 um/px).
MAX_PLAUSIBLE_MPP = 50.0
_MICRONS_PER_UNIT = {
    2: 25400.0,  # inch
    3: 10000.0,  # centimetre
}
_OME_UNITS = {'nm': 1e-3, 'um': 1.0, '\u00b5m': 1.0, 'mm': 1e3, 'cm': 1e4,
              'm': 1e6}


class SlideError(ConfigError):
    """A slide, or a whole-slide option, that cannot work; the message names
    the file or option and says what was expected."""


@dataclass(frozen=True)
class Level:
    """One resolution of a slide.

    Args:
        width, height: Size in pixels.
        mpp_x, mpp_y: Microns per pixel along x and y.
    """
    width: int
    height: int
    mpp_x: float
    mpp_y: float


def _levels_from_sizes(sizes: List[Tuple[int, int]],
                       mpp: Tuple[float, float]) -> List[Level]:
    """Levels from their (width, height); a level's mpp follows from its size
    relative to level 0."""
    w0, h0 = sizes[0]
    return [
        Level(w, h, mpp[0] * w0 / w, mpp[1] * h0 / h) for w, h in sizes
    ]


class SlideReader:
    """Base of the readers: levels (finest first) and pixel regions.

    Attributes:
        path: The slide file.
        backend: ``'openslide'`` or ``'tifffile'``.
        levels: The levels, level 0 (finest) first.
    """
    backend = ''

    def __init__(self, path: str):
        self.path = path
        self.levels: List[Level] = []

    def read(self, level: int, x0: int, y0: int, x1: int,
             y1: int) -> np.ndarray:
        """RGB pixels of ``[y0, y1) x [x0, x1)`` of a level (inside it), as a
        uint8 array (y1 - y0, x1 - x0, 3)."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _check_mpp(path: str, mpp: Optional[Tuple[float, float]],
               source: str) -> Tuple[float, float]:
    if mpp is None:
        raise SlideError(
            f'{path}: the slide does not record its microns per pixel; pass '
            'the level-0 resolution with --mpp-slide (e.g. --mpp-slide 0.25)')
    if not all(0 < m <= MAX_PLAUSIBLE_MPP for m in mpp):
        raise SlideError(
            f'{path}: {mpp[0]:g} x {mpp[1]:g} um/px at level 0 (from '
            f'{source}) is no whole-slide resolution (expected at most '
            f'{MAX_PLAUSIBLE_MPP:g}); pass the true one with --mpp-slide')
    return mpp


class OpenSlideReader(SlideReader):
    """A slide read through OpenSlide (``pip install openslide-python
    openslide-bin``).

    Args:
        path: The slide file.
        mpp: Level-0 microns per pixel (x, y), replacing the slide's own.
    """
    backend = 'openslide'

    def __init__(self, path: str, mpp: Optional[Tuple[float, float]] = None):
        super().__init__(path)
        import openslide
        try:
            self._slide = openslide.OpenSlide(path)
        except openslide.OpenSlideError as e:
            raise SlideError(f'{path}: OpenSlide cannot read it: {e}')
        props = self._slide.properties
        source = '--mpp-slide'
        if mpp is None and openslide.PROPERTY_NAME_MPP_X in props:
            mpp = (float(props[openslide.PROPERTY_NAME_MPP_X]),
                   float(props[openslide.PROPERTY_NAME_MPP_Y]))
            source = 'its openslide.mpp-x/y properties'
        mpp = _check_mpp(path, mpp, source)
        self.levels = _levels_from_sizes(
            list(self._slide.level_dimensions), mpp)
        # Outside the scanned area OpenSlide returns transparent pixels.
        color = props.get(openslide.PROPERTY_NAME_BACKGROUND_COLOR, 'FFFFFF')
        self._background = tuple(int(color[i:i + 2], 16) for i in (0, 2, 4))

    def read(self, level, x0, y0, x1, y1):
        from PIL import Image
        w0, h0 = self._slide.level_dimensions[0]
        lw, lh = self._slide.level_dimensions[level]
        location = (int(round(x0 * w0 / lw)), int(round(y0 * h0 / lh)))
        region = self._slide.read_region(location, level, (x1 - x0, y1 - y0))
        canvas = Image.new('RGB', region.size, self._background)
        canvas.paste(region, mask=region.getchannel('A'))
        return np.asarray(canvas)

    def close(self):
        self._slide.close()


class _SegmentCache:
    """Decoded TIFF segments, least recently used dropped past a byte
    budget."""

    def __init__(self, budget: int):
        self.budget = budget
        self.size = 0
        self.items = OrderedDict()

    def get(self, key):
        item = self.items.get(key)
        if item is None:
            return None
        self.items.move_to_end(key)
        return item[0]

    def put(self, key, value, nbytes: int) -> None:
        self.items[key] = (value, nbytes)
        self.size += nbytes
        while self.size > self.budget and len(self.items) > 1:
            _, (_, old) = self.items.popitem(last=False)
            self.size -= old


def _tiff_mpp(tif, page) -> Tuple[Optional[Tuple[float, float]], str]:
    """Level-0 mpp from OME-XML, an Aperio description or the resolution
    tags, with the name of the source."""
    if tif.is_ome and tif.ome_metadata:
        pixels = re.search(r'<(?:\w+:)?Pixels\b[^>]*>', tif.ome_metadata)
        if pixels:
            attrs = dict(re.findall(r'(\w+)="([^"]*)"', pixels.group(0)))
            if 'PhysicalSizeX' in attrs and 'PhysicalSizeY' in attrs:
                units = [
                    _OME_UNITS.get(attrs.get(f'PhysicalSize{a}Unit', 'um'))
                    for a in 'XY'
                ]
                if None not in units:
                    return ((float(attrs['PhysicalSizeX']) * units[0],
                             float(attrs['PhysicalSizeY']) * units[1]),
                            'its OME-XML PhysicalSizeX/Y')
    match = re.search(r'MPP\s*=\s*([0-9.eE+-]+)', page.description or '')
    if tif.is_svs and match:
        mpp = float(match.group(1))
        return (mpp, mpp), 'its Aperio description (MPP)'
    tags = page.tags
    unit = tags.get('ResolutionUnit')
    unit = int(unit.value) if unit is not None else 2
    if unit in _MICRONS_PER_UNIT and 'XResolution' in tags and \
            'YResolution' in tags:
        per_unit = []
        for name in ('XResolution', 'YResolution'):
            num, den = tags[name].value
            per_unit.append(num / den if den else 0.0)
        if all(per_unit):
            micron = _MICRONS_PER_UNIT[unit]
            return ((micron / per_unit[0], micron / per_unit[1]),
                    'its TIFF resolution tags')
    return None, ''


class TiffSlideReader(SlideReader):
    """A pyramidal TIFF or OME-TIFF read through ``tifffile``.

    The pyramid is the first image series' levels (SubIFDs or reduced
    pages, as tifffile finds them). Regions are assembled from the TIFF tiles
    or strips they touch, kept decoded in a small cache.

    Args:
        path: The slide file.
        mpp: Level-0 microns per pixel (x, y), replacing the slide's own.
        rgb: Expect 8-bit RGB (or grey, repeated to RGB) pixels; with False
            any single-sample image is read as is (label masks).
        cache_bytes: Budget of the decoded-segment cache.
    """
    backend = 'tifffile'

    def __init__(self,
                 path: str,
                 mpp: Optional[Tuple[float, float]] = None,
                 rgb: bool = True,
                 cache_bytes: int = 64 << 20):
        super().__init__(path)
        import tifffile
        try:
            self._tif = tifffile.TiffFile(path)
        except (tifffile.TiffFileError, ValueError, OSError) as e:
            raise SlideError(f'{path}: tifffile cannot read it: {e}')
        self._cache = _SegmentCache(cache_bytes)
        self._lock = threading.Lock()
        try:
            self._open(mpp, rgb)
        except BaseException:
            self._tif.close()
            raise

    def _open(self, mpp, rgb):
        if not self._tif.series:
            raise SlideError(f'{self.path}: the TIFF holds no image')
        series = self._tif.series[0]
        self._pages = [level.keyframe for level in series.levels]
        page = self._pages[0]
        samples = page.samplesperpixel
        if page.planarconfig != 1 and samples > 1:
            raise SlideError(
                f'{self.path}: samples are stored as separate planes '
                '(PlanarConfiguration 2); expected interleaved RGB')
        if int(np.prod(series.shape)) != int(np.prod(page.shape)):
            raise SlideError(
                f'{self.path}: the first image is {series.axes} '
                f'{tuple(series.shape)}, several planes; expected one RGB '
                'brightfield image (axes YXS)')
        if rgb and (page.dtype != np.uint8 or samples not in (1, 3, 4)):
            raise SlideError(
                f'{self.path}: pixels are {page.dtype} with {samples} '
                'samples; expected 8-bit RGB')
        if not rgb and samples != 1:
            raise SlideError(f'{self.path}: pixels have {samples} samples; '
                             'expected one value (a label) per pixel')
        source = '--mpp-slide'
        if mpp is None:
            mpp, source = _tiff_mpp(self._tif, page)
        if rgb or mpp is not None:
            mpp = _check_mpp(self.path, mpp, source)
        sizes = [(p.imagewidth, p.imagelength) for p in self._pages]
        self.levels = _levels_from_sizes(sizes, mpp or (1.0, 1.0))
        self.dtype = page.dtype
        self._rgb = rgb
        try:
            self._segment(0, 0)
        except SlideError:
            raise
        except Exception as e:  # the codec's own error type
            hint = ''
            if 'imagecodecs' in str(e).lower() or 'delayed' in str(e):
                hint = ('; install imagecodecs (pip install imagecodecs) or '
                        'read it with --reader openslide')
            raise SlideError(
                f'{self.path}: cannot decode its {page.compression.name} '
                f'compressed data: {str(e).splitlines()[0]}{hint}')

    def _segment(self, level: int, index: int) -> Tuple[np.ndarray, int, int]:
        """Decoded segment ``index`` of a level: (pixels (h, w, samples),
        top, left)."""
        key = (level, index)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        page = self._pages[level]
        offset, count = page.dataoffsets[index], page.databytecounts[index]
        with self._lock:
            fh = self._tif.filehandle
            data = None
            if count:
                fh.seek(offset)
                data = fh.read(count)
        segment, indices, shape = page.decode(
            data, index, jpegtables=page.jpegtables)
        if segment is None:  # a sparse (absent) segment
            segment = np.zeros(shape, page.dtype)
        pixels = segment.reshape(shape[-3:])
        entry = (pixels, int(indices[-3]), int(indices[-2]))
        self._cache.put(key, entry, pixels.nbytes)
        return entry

    def read_raw(self, level: int, x0: int, y0: int, x1: int,
                 y1: int) -> np.ndarray:
        """Stored values of a region inside a level, (h, w, samples)."""
        page = self._pages[level]
        if page.is_tiled:
            th, tw = page.tilelength, page.tilewidth
        else:
            th, tw = page.rowsperstrip or page.imagelength, page.imagewidth
        across = math.ceil(page.imagewidth / tw)
        out = np.empty((y1 - y0, x1 - x0, page.samplesperpixel), page.dtype)
        for ty in range(y0 // th, (y1 - 1) // th + 1):
            for tx in range(x0 // tw, (x1 - 1) // tw + 1):
                pixels, top, left = self._segment(level, ty * across + tx)
                ya, yb = max(y0, top), min(y1, top + pixels.shape[0])
                xa, xb = max(x0, left), min(x1, left + pixels.shape[1])
                out[ya - y0:yb - y0, xa - x0:xb - x0] = \
                    pixels[ya - top:yb - top, xa - left:xb - left]
        return out

    def read(self, level, x0, y0, x1, y1):
        pixels = self.read_raw(level, x0, y0, x1, y1)
        if pixels.shape[2] == 1:
            return np.repeat(pixels, 3, axis=2)
        return pixels[..., :3]

    def close(self):
        self._tif.close()


def openslide_available() -> bool:
    try:
        import openslide  # noqa: F401
    except (ImportError, OSError):  # OSError: the library itself is absent
        return False
    return True


def open_slide(path: str,
               reader: str = 'auto',
               mpp: Optional[Tuple[float, float]] = None) -> SlideReader:
    """Open a whole-slide image.

    Args:
        path: The slide file.
        reader: ``'openslide'``, ``'tifffile'``, or ``'auto'``: OpenSlide
            for the vendor formats it recognises, tifffile for any other
            TIFF (OME-TIFF, generic pyramidal TIFF).
        mpp: Level-0 microns per pixel (x, y), replacing the slide's own.

    Raises:
        SlideError: For a missing file, a file neither reader can open, or
            a slide without (plausible) mpp when none is given.
    """
    if not osp.isfile(path):
        raise SlideError(f'slide {path!r} does not exist')
    if reader not in ('auto', 'openslide', 'tifffile'):
        raise SlideError(f'reader={reader!r}; expected auto, openslide or '
                         'tifffile')
    has_openslide = openslide_available()
    if reader == 'openslide':
        if not has_openslide:
            raise SlideError('--reader openslide needs openslide-python and '
                             'openslide-bin (pip install "mmimb[wsi]")')
        return OpenSlideReader(path, mpp)
    if reader == 'tifffile':
        return TiffSlideReader(path, mpp)
    vendor = None
    if has_openslide:
        import openslide
        vendor = openslide.OpenSlide.detect_format(path)
        if vendor is not None and vendor != _OPENSLIDE_GENERIC:
            return OpenSlideReader(path, mpp)
    try:
        return TiffSlideReader(path, mpp)
    except SlideError as e:
        if vendor == _OPENSLIDE_GENERIC:
            return OpenSlideReader(path, mpp)
        if 'tifffile cannot read it' not in str(e):
            raise
        known = ('OpenSlide does not recognise it' if has_openslide else
                 'OpenSlide is not installed (pip install "mmimb[wsi]")')
        raise SlideError(f'{path}: not a whole-slide image: {known}, and '
                         f'{str(e).split(": ", 1)[1]}')


class SlideView:
    """A slide on the pixel grid of a requested resolution.

    The level read is the coarsest one whose mpp is at most the request
    (within ``tolerance``, relative). A level within the tolerance of the
    request is read as it is and gives the view its own, exact mpp; any
    other is resampled to the request with an antialiased bilinear (triangle)
    filter as wide as the scale. On the inference grid each output pixel's
    filter taps and weights follow from its own coordinates alone
    (:func:`resample_taps`), so overlapping reads agree to the bit; coarser
    views (thumbnails) use Pillow's faster filter of the same kind.

    Args:
        slide: The slide.
        mpp: Requested microns per pixel (both axes).
        tolerance: Relative difference under which a level counts as a match.
        grid: Integer factor of a coarser grid aligned with ``parent`` (the
            tissue thumbnail); then ``mpp`` is ignored.
        parent: The view whose grid ``grid`` coarsens.

    Attributes:
        width, height: Size of the grid (the label map's size).
        mpp_x, mpp_y: Its microns per pixel.
        level: The level read.
        scale_x, scale_y: Level pixels per grid pixel (1 when matched).

    Raises:
        SlideError: If the request is finer than the finest level.
    """

    def __init__(self,
                 slide: SlideReader,
                 mpp: float = 0.25,
                 tolerance: float = 0.05,
                 grid: int = 1,
                 parent: Optional['SlideView'] = None):
        self.slide = slide
        self.parent = parent
        base = slide.levels[0]
        if parent is not None:
            mpp_x, mpp_y = parent.mpp_x * grid, parent.mpp_y * grid
            self.width = math.ceil(parent.width / grid)
            self.height = math.ceil(parent.height / grid)
        else:
            if not mpp > 0:
                raise SlideError(f'--mpp {mpp}: expected a positive number')
            finest = min(base.mpp_x, base.mpp_y)
            if mpp < finest * (1 - tolerance):
                raise SlideError(
                    f'--mpp {mpp:g} is finer than the finest level of '
                    f'{slide.path} ({base.mpp_x:g} x {base.mpp_y:g} um/px); '
                    'upsampling would invent detail: use --mpp >= '
                    f'{finest:g}')
            mpp_x = mpp_y = mpp
        candidates = [
            i for i, lv in enumerate(slide.levels)
            if lv.mpp_x <= mpp_x * (1 + tolerance) and
            lv.mpp_y <= mpp_y * (1 + tolerance)
        ] or [0]
        self.level = max(candidates, key=lambda i: slide.levels[i].mpp_x)
        lv = slide.levels[self.level]
        matched = (abs(lv.mpp_x / mpp_x - 1) <= tolerance
                   and abs(lv.mpp_y / mpp_y - 1) <= tolerance)
        if matched and parent is None:
            self.mpp_x, self.mpp_y = lv.mpp_x, lv.mpp_y
            self.width, self.height = lv.width, lv.height
            self.scale_x = self.scale_y = 1.0
        else:
            self.mpp_x, self.mpp_y = mpp_x, mpp_y
            if parent is None:
                self.width = max(1, round(base.width * base.mpp_x / mpp_x))
                self.height = max(1,
                                  round(base.height * base.mpp_y / mpp_y))
            self.scale_x, self.scale_y = mpp_x / lv.mpp_x, mpp_y / lv.mpp_y
        self.resampled = not (self.scale_x == 1.0 and self.scale_y == 1.0)

    def coarser(self, factor: int) -> 'SlideView':
        """The view on a grid ``factor`` times coarser, pixel ``i`` covering
        this grid's pixels ``[i * factor, (i + 1) * factor)``."""
        return SlideView(self.slide, grid=factor, parent=self)

    def _level_crop(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """Level pixels ``[y0, y1) x [x0, x1)``, white outside the level."""
        lv = self.slide.levels[self.level]
        out = np.full((y1 - y0, x1 - x0, 3), 255, np.uint8)
        xa, ya = max(x0, 0), max(y0, 0)
        xb, yb = min(x1, lv.width), min(y1, lv.height)
        if xb > xa and yb > ya:
            out[ya - y0:yb - y0, xa - x0:xb - x0] = self.slide.read(
                self.level, xa, ya, xb, yb)
        return out

    def read(self, x0: int, y0: int, w: int, h: int) -> np.ndarray:
        """RGB uint8 (h, w, 3) of the grid region ``[y0, y0 + h) x [x0, x0 +
        w)``; white outside the slide."""
        if not self.resampled:
            return self._level_crop(x0, y0, x0 + w, y0 + h)
        if self.parent is None:
            ix, wx = resample_taps(x0, w, self.scale_x)
            iy, wy = resample_taps(y0, h, self.scale_y)
            cx0, cy0 = int(ix[0, 0]), int(iy[0, 0])
            crop = self._level_crop(cx0, cy0,
                                    int(ix[-1, -1]) + 1,
                                    int(iy[-1, -1]) + 1).astype(np.float32)
            rows = np.zeros((crop.shape[0], w, 3), np.float32)
            for k in range(ix.shape[1]):
                rows += wx[:, k, None] * crop[:, ix[:, k] - cx0]
            out = np.zeros((h, w, 3), np.float32)
            for k in range(iy.shape[1]):
                out += wy[:, k, None, None] * rows[iy[:, k] - cy0]
            return np.clip(np.rint(out), 0, 255).astype(np.uint8)
        from PIL import Image
        fx, fy = self.scale_x, self.scale_y
        bx0, by0, bx1, by1 = x0 * fx, y0 * fy, (x0 + w) * fx, (y0 + h) * fy
        cx0, cy0 = math.floor(bx0 - fx) - 1, math.floor(by0 - fy) - 1
        crop = self._level_crop(cx0, cy0,
                                math.ceil(bx1 + fx) + 1,
                                math.ceil(by1 + fy) + 1)
        image = Image.fromarray(crop).resize(
            (w, h),
            Image.BILINEAR,
            box=(bx0 - cx0, by0 - cy0, bx1 - cx0, by1 - cy0))
        return np.asarray(image)


def resample_taps(start: int, count: int,
                  scale: float) -> Tuple[np.ndarray, np.ndarray]:
    """Source pixels and weights of output pixels ``start .. start + count -
    1`` when shrinking by ``scale`` (> 1) with a triangle filter of radius
    ``scale``: output pixel ``i`` is centred on source coordinate ``(i + .5)
    * scale``.

    Returns:
        tuple: int64 indices and float32 weights (summing to 1), both
        (count, taps); indices may fall outside the source.
    """
    centres = (np.arange(start, start + count, dtype=np.float64) + 0.5) * scale
    taps = 2 * math.ceil(scale) + 1
    first = np.floor(centres - scale).astype(np.int64)
    index = first[:, None] + np.arange(taps)
    weight = np.maximum(0.0,
                        1 - np.abs(index + 0.5 - centres[:, None]) / scale)
    weight /= weight.sum(1, keepdims=True)
    return index, weight.astype(np.float32)
