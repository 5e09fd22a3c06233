"""What a whole-slide run writes: the pyramidal label TIFF, the overlay
picture, the area report and the slide-level evaluation.

Every function reads the finished label bands (:class:`BandStore`) row band
by row band, so none holds the label map whole, and writes to a temporary
name first, so that a file with the final name is always complete.
"""
import csv
import json
import math
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from mmimb.datasets.conversion import IGNORE_INDEX
from .label_store import BandStore
from .slide import SlideError, TiffSlideReader

# Rows of the label map handled at once by the passes below.
ROW_CHUNK = 512
# Palette for classes the model's metadata gives no colour (tab10).
_FALLBACK_PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44),
                     (214, 39, 40), (148, 103, 189), (140, 86, 75),
                     (227, 119, 194), (127, 127, 127), (188, 189, 34),
                     (23, 190, 207))


def class_palette(num_classes: int,
                  palette: Optional[Sequence] = None) -> np.ndarray:
    """RGB uint8 (num_classes, 3): the given colours, then tab10."""
    colors = [tuple(c) for c in (palette or [])][:num_classes]
    while len(colors) < num_classes:
        colors.append(_FALLBACK_PALETTE[len(colors) % len(_FALLBACK_PALETTE)])
    return np.array(colors, np.uint8)


def _tmp(path: str) -> str:
    root, ext = osp.splitext(path)
    return f'{root}.partial{ext}'


def write_label_tiff(path: str, store: BandStore, mpp: Tuple[float, float],
                     palette: np.ndarray, tile: int = 512) -> int:
    """Write the label map as a tiled, pyramidal, deflate-compressed TIFF.

    Level 0 is the map at ``mpp``; each further level keeps every second
    pixel (nearest, so labels stay labels) until it fits in one tile. Levels
    are successive pages (reduced-resolution subfiles), which tifffile and
    OpenSlide both read as a pyramid. Pixels are palette indices coloured
    with ``palette`` (IGNORE_INDEX black), so viewers show colours.

    Returns:
        int: The number of levels.
    """
    import tifffile
    width, height = store.width, store.height
    colormap = np.zeros((3, 256), np.uint16)
    colormap[:, :len(palette)] = palette.T.astype(np.uint16) * 257
    levels = [(width, height)]
    while max(levels[-1]) > tile:
        w, h = levels[-1]
        levels.append((-(-w // 2), -(-h // 2)))

    def tiles(level):
        step = 2**level
        w, h = levels[level]
        for y in range(0, h, tile):
            rows = store.rows(np.arange(y, min(y + tile, h)) * step, step)
            for x in range(0, w, tile):
                yield rows[:, x:x + tile]

    tmp = _tmp(path)
    with tifffile.TiffWriter(tmp, bigtiff=width * height > 2**31) as tif:
        for level, (w, h) in enumerate(levels):
            px_per_cm = (1e4 * w / (width * mpp[0]),
                         1e4 * h / (height * mpp[1]))
            tif.write(
                tiles(level),
                shape=(h, w),
                dtype=np.uint8,
                tile=(tile, tile),
                photometric='palette',
                colormap=colormap,
                compression='zlib',
                compressionargs=dict(level=1),
                resolution=px_per_cm,
                resolutionunit='CENTIMETER',
                subfiletype=1 if level else 0,
                metadata=None)
    os.replace(tmp, path)
    return len(levels)


class AnnotationMask:
    """A slide-level label mask, stretched over the label map.

    The mask covers the whole slide at any resolution: label-map pixel
    ``(y, x)`` takes mask pixel ``(floor((y + .5) Hm / H), floor((x + .5) Wm
    / W))``. TIFF masks (pyramidal or not) are read by rows, ``.npy`` masks
    memory-mapped, other images (PNG, ...) loaded whole.

    Args:
        path: The mask: one label per pixel.
        width, height: Size of the label map.
        slide_size: (width, height) of the slide's level 0, whose aspect
            ratio the mask must share.

    Raises:
        SlideError: For a missing or unreadable file, several channels, or
            another aspect ratio.
    """

    def __init__(self, path: str, width: int, height: int,
                 slide_size: Tuple[int, int]):
        if not osp.isfile(path):
            raise SlideError(f'annotation mask {path!r} does not exist')
        self.path = path
        self._reader = None
        lower = path.lower()
        if lower.endswith(('.tif', '.tiff')):
            self._reader = TiffSlideReader(path, rgb=False)
            lv = self._reader.levels[0]
            self.mask_w, self.mask_h = lv.width, lv.height
        else:
            if lower.endswith('.npy'):
                array = np.load(path, mmap_mode='r')
            else:
                from PIL import Image, UnidentifiedImageError
                try:
                    image = Image.open(path)
                except (UnidentifiedImageError, OSError) as e:
                    raise SlideError(f'annotation mask {path}: {e}')
                if image.mode not in ('L', 'P', 'I', 'I;16'):
                    raise SlideError(
                        f'annotation mask {path} is a {image.mode} image; '
                        'expected one label per pixel (mode L or P)')
                array = np.asarray(image)
            if array.ndim != 2:
                raise SlideError(f'annotation mask {path} has shape '
                                 f'{array.shape}; expected (height, width)')
            self._array = array
            self.mask_h, self.mask_w = array.shape
        ratio = (self.mask_w / self.mask_h) / (slide_size[0] / slide_size[1])
        if abs(ratio - 1) > 0.02:
            raise SlideError(
                f'annotation mask {path} is {self.mask_w} x {self.mask_h}, '
                f'not the aspect ratio of the slide ({slide_size[0]} x '
                f'{slide_size[1]}); expected a mask of the whole slide')
        self._cols = ((np.arange(width) + 0.5) * self.mask_w //
                      width).astype(np.int64)
        self._scale_y = self.mask_h / height

    def rows(self, ys: np.ndarray) -> np.ndarray:
        """Mask labels of label-map rows ``ys``: (len(ys), width)."""
        mys = ((ys + 0.5) * self._scale_y).astype(np.int64)
        lo, hi = int(mys.min()), int(mys.max()) + 1
        if self._reader is not None:
            block = self._reader.read_raw(0, 0, lo, self.mask_w, hi)[..., 0]
        else:
            block = np.asarray(self._array[lo:hi])
        return block[mys - lo][:, self._cols]

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()


def summarize(store: BandStore,
              num_classes: int,
              overlay_step: int,
              annotation: Optional[AnnotationMask] = None,
              ignore_index: int = IGNORE_INDEX) -> dict:
    """One pass over the label map: per-class pixel counts, the labels at
    the centres of ``overlay_step`` blocks (for the overlay), and with an
    annotation mask the confusion matrix.

    Returns:
        dict: ``counts`` (num_classes,), ``overlay`` labels, and with an
        annotation ``confusion`` (num_classes, num_classes + 1): rows the
        annotated class, columns the predicted one, the last column pixels
        predicted as no class (not tissue).
    """
    width, height = store.width, store.height
    counts = np.zeros(256, np.int64)
    confusion = np.zeros((num_classes, num_classes + 1), np.int64)
    centre_rows, centre_cols = (np.minimum(
        np.arange(0, n, overlay_step) + overlay_step // 2, n - 1)
                                for n in (height, width))
    overlay = []
    for y in range(0, height, ROW_CHUNK):
        ys = np.arange(y, min(y + ROW_CHUNK, height))
        labels = store.rows(ys)
        counts += np.bincount(labels.ravel(), minlength=256)
        sel = centre_rows[(centre_rows >= y) & (centre_rows < ys[-1] + 1)]
        overlay.append(labels[sel - y][:, centre_cols])
        if annotation is None:
            continue
        truth = annotation.rows(ys)
        valid = truth != ignore_index
        bad = valid & (truth >= num_classes)
        if bad.any():
            value = int(truth[bad][0])
            raise SlideError(
                f'annotation mask {annotation.path} has label {value}; the '
                f'model has {num_classes} classes (0-{num_classes - 1}) and '
                f'{ignore_index} marks unannotated pixels (--ignore-index)')
        pred = labels[valid].astype(np.int64)
        pred[pred >= num_classes] = num_classes
        confusion += np.bincount(
            truth[valid].astype(np.int64) * (num_classes + 1) + pred,
            minlength=num_classes * (num_classes + 1)).reshape(
                num_classes, num_classes + 1)
    if counts[num_classes:IGNORE_INDEX].any() or \
            counts[IGNORE_INDEX + 1:].any():
        raise RuntimeError('label map holds values beyond the classes')
    result = dict(
        counts=counts[:num_classes], overlay=np.concatenate(overlay))
    if annotation is not None:
        result['confusion'] = confusion
    return result


def slide_metrics(confusion: np.ndarray) -> List[dict]:
    """Per-class Dice and IoU over all annotated pixels of the slide.

    ``Dice_c = 2 |P_c & G_c| / (|P_c| + |G_c|)`` and ``IoU_c = |P_c & G_c| /
    |P_c | G_c|``, with ``G_c`` the pixels annotated c and ``P_c`` those
    predicted c among annotated pixels; None for a class in neither.
    """
    num = confusion.shape[0]
    rows = []
    for c in range(num):
        tp = int(confusion[c, c])
        truth = int(confusion[c].sum())
        pred = int(confusion[:, c].sum())
        union = truth + pred - tp
        rows.append(
            dict(
                truth_pixels=truth,
                predicted_pixels=pred,
                dice=2 * tp / (truth + pred) if truth + pred else None,
                iou=tp / union if union else None))
    return rows


def save_overlay(path: str, image: np.ndarray, labels: np.ndarray,
                 names: Sequence[str], palette: np.ndarray,
                 fractions: Sequence[float], alpha: float = 0.55,
                 title: str = '') -> None:
    """Draw the labels over the thumbnail, with a title above and a legend
    (class colour, name, share of the tissue) below, and save it as PNG."""
    from PIL import Image, ImageDraw, ImageFont

    h, w = labels.shape
    shown = image[:h, :w].astype(np.float32)
    tissue = labels != IGNORE_INDEX
    colours = palette[np.where(tissue, labels, 0)].astype(np.float32)
    shown[tissue] = (1 - alpha) * shown[tissue] + alpha * colours[tissue]
    font = ImageFont.load_default(size=14)
    entries = [f'{n} {100 * f:.1f}%' for n, f in zip(names, fractions)]
    cell = 28 + max(
        (int(font.getlength(e)) for e in entries), default=0) + 16
    width = max(w, 360)
    ncol = max(1, min(len(entries), width // cell))
    title_h, row_h = (24 if title else 0), 22
    legend_h = 10 + row_h * math.ceil(len(entries) / ncol)
    canvas = Image.new('RGB', (width, title_h + h + legend_h), 'white')
    canvas.paste(Image.fromarray(shown.astype(np.uint8)),
                 ((width - w) // 2, title_h))
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((width / 2, 4), title, fill='black', font=font, anchor='ma')
    left = (width - ncol * cell) // 2
    for k, entry in enumerate(entries):
        x = left + (k % ncol) * cell
        y = title_h + h + 8 + (k // ncol) * row_h
        draw.rectangle((x, y + 2, x + 18, y + 16),
                       fill=tuple(int(v) for v in palette[k]),
                       outline='black')
        draw.text((x + 24, y + 1), entry, fill='black', font=font)
    tmp = _tmp(path)
    canvas.save(tmp, format='PNG')
    os.replace(tmp, path)


def write_report(report: dict, json_path: str, csv_path: str) -> None:
    """The report as JSON, and its per-class table (and the tissue total)
    as CSV."""
    tmp = _tmp(json_path)
    with open(tmp, 'w') as f:
        json.dump(report, f, indent=2)
    os.replace(tmp, json_path)
    fields = ['class', 'index', 'pixels', 'area_mm2', 'fraction']
    evaluated = 'evaluation' in report
    if evaluated:
        fields += ['dice', 'iou']
    scores: Dict[str, dict] = {
        row['class']: row
        for row in report.get('evaluation', {}).get('classes', [])
    }
    tmp = _tmp(csv_path)
    with open(tmp, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for row in report['classes']:
            out = {k: row[k] for k in ('class', 'index', 'pixels', 'area_mm2',
                                       'fraction')}
            if evaluated:
                score = scores.get(row['class'], {})
                out.update(dice=score.get('dice'), iou=score.get('iou'))
            writer.writerow(out)
        writer.writerow(
            dict({
                'class': 'tissue',
                'index': '',
                'pixels': report['tissue_pixels'],
                'area_mm2': report['tissue_area_mm2'],
                'fraction': 1.0 if report['tissue_pixels'] else 0.0
            }))
    os.replace(tmp, csv_path)
