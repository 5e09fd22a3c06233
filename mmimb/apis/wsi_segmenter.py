"""Whole-slide segmentation with any MMSegmentation segmentor.

A run reads the slide at the requested mpp (:class:`SlideView`), finds the
tissue on a thumbnail (:func:`detect_tissue`), runs the model on batches of
overlapping tiles that contain tissue, blends their logits band by band
(:class:`Stitcher`) and keeps the finished bands on disk
(:class:`BandStore`); then it writes the label TIFF, the overlay and the
report (:mod:`.wsi_outputs`). An interrupted run, started again with the
same settings, recomputes only from the first tile row that touches an
unfinished band, in the same batches, so its output equals an uninterrupted
run's.
"""
import hashlib
import json
import math
import os
import os.path as osp
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import List, Optional, Tuple, Union

import numpy as np
import torch

from mmimb.engine.config_check import ConfigError
from .inference import (init_segmentor, model_fingerprint, num_classes_of,
                        predict_logits, resolve_device, tiles_to_inputs)
from .label_store import BandStore
from .slide import SlideError, SlideView, open_slide
from .tiling import BLEND_MODES, Stitcher, TileGrid
from .tissue import TissueMask, detect_tissue
from .wsi_outputs import (AnnotationMask, class_palette, save_overlay,
                          slide_metrics, summarize, write_label_tiff,
                          write_report)

TISSUE_METHODS = ('otsu', 'none')
# Thumbnail pixels read at once (bounded by level pixels per read).
_THUMB_READ = 4096
STATE_VERSION = 1


@dataclass
class WSIResult:
    """Paths of a run's outputs and its report.

    Args:
        label_map: Pyramidal label TIFF at the inference mpp.
        overlay: Overlay PNG with legend.
        report_json, report_csv: The area (and evaluation) report.
        report: The report as a dict.
    """
    label_map: str
    overlay: str
    report_json: str
    report_csv: str
    report: dict


def read_whole(view: SlideView) -> np.ndarray:
    """The whole view, read in blocks of bounded size."""
    step = max(16, int(_THUMB_READ / max(view.scale_x, view.scale_y, 1)))
    out = np.empty((view.height, view.width, 3), np.uint8)
    for y in range(0, view.height, step):
        for x in range(0, view.width, step):
            h, w = min(step, view.height - y), min(step, view.width - x)
            out[y:y + h, x:x + w] = view.read(x, y, w, h)
    return out


def _tissue_tiles(grid: TileGrid, mask: np.ndarray, factor: int) -> np.ndarray:
    """Tiles whose footprint holds a tissue pixel of the thumbnail mask."""
    processed = np.zeros(grid.shape, bool)
    for r, y in enumerate(grid.ys):
        for c, x in enumerate(grid.xs):
            processed[r, c] = mask[y // factor:-(-(y + grid.tile_h) // factor),
                                   x // factor:-(-(x + grid.tile_w) //
                                                 factor)].any()
    return processed


def _mpp_pair(mpp) -> Optional[Tuple[float, float]]:
    if mpp is None:
        return None
    pair = (float(mpp), float(mpp)) if isinstance(mpp, (int, float)) else \
        tuple(map(float, mpp))
    if not all(m > 0 for m in pair):
        raise SlideError(f'--mpp-slide {mpp}: expected a positive number')
    return pair


def check_slide(slide: str,
                mpp: float,
                mpp_slide=None,
                reader: str = 'auto',
                mpp_tolerance: float = 0.05) -> None:
    """Raise :class:`SlideError` now if ``slide`` cannot be segmented at
    ``mpp`` (before a model is built)."""
    with open_slide(slide, reader, _mpp_pair(mpp_slide)) as wsi:
        SlideView(wsi, mpp, mpp_tolerance)


def slide_stem(path: str) -> str:
    """The slide's file name without its extension (``.ome.tif`` whole)."""
    name = osp.basename(path)
    for ext in ('.ome.tiff', '.ome.tif'):
        if name.lower().endswith(ext):
            return name[:-len(ext)]
    return osp.splitext(name)[0]


def _file_id(path: str) -> dict:
    st = os.stat(path)
    return dict(path=osp.abspath(path), size=st.st_size, mtime=st.st_mtime)


class WSISegmenter:
    """Segment whole-slide images with an MMSegmentation segmentor.

    Args:
        model: A config path or :class:`mmengine.Config`, or a built
            segmentor (in eval mode).
        checkpoint: Weights for a config (None: random weights).
        device: ``'cpu'``, ``'cuda'``, ``'cuda:N'``; None: the GPU if any.
        mpp: Inference resolution in microns per pixel: the model's
            training resolution.
        tile: Tile side in pixels at ``mpp``.
        overlap: Least overlap of neighbouring tiles (at most tile // 2).
        blend: ``'linear'`` or ``'gaussian'`` weights in overlaps
            (:mod:`.tiling`).
        batch_size: Tiles per forward pass.
        amp: Autocast: float16 on a GPU, bfloat16 on the CPU.
        tissue: ``'otsu'`` (:mod:`.tissue`) or ``'none'`` (every tile).
        tissue_mpp: Resolution of the tissue thumbnail (rounded to an
            integer multiple of the inference grid).
        mpp_tolerance: Relative mpp difference under which a slide level is
            used as it is instead of being resampled.
        cfg_options: Overrides of the config.
        progress: Show a progress bar (tiles done, time left) on stderr.
    """

    def __init__(self,
                 model,
                 checkpoint: Optional[str] = None,
                 device: Optional[str] = None,
                 mpp: float = 0.25,
                 tile: int = 1024,
                 overlap: int = 128,
                 blend: str = 'linear',
                 batch_size: int = 4,
                 amp: bool = False,
                 tissue: str = 'otsu',
                 tissue_mpp: float = 8.0,
                 mpp_tolerance: float = 0.05,
                 cfg_options: Optional[dict] = None,
                 progress: bool = True):
        if tile < 16:
            raise ConfigError(f'--tile {tile}: expected at least 16 pixels')
        if not 0 <= overlap <= tile // 2:
            raise ConfigError(f'--overlap {overlap}: expected 0 to --tile '
                              f'// 2 = {tile // 2}')
        if blend not in BLEND_MODES:
            raise ConfigError(f'--blend {blend!r}: expected one of '
                              f'{", ".join(BLEND_MODES)}')
        if batch_size < 1:
            raise ConfigError(f'--batch-size {batch_size}: expected >= 1')
        if tissue not in TISSUE_METHODS:
            raise ConfigError(f'--tissue {tissue!r}: expected one of '
                              f'{", ".join(TISSUE_METHODS)}')
        if not tissue_mpp > 0 or not 0 <= mpp_tolerance < 1:
            raise ConfigError(
                f'tissue_mpp={tissue_mpp}, mpp_tolerance={mpp_tolerance}: '
                'expected a positive mpp and a tolerance in [0, 1)')
        self.device = resolve_device(device)
        if isinstance(model, torch.nn.Module):
            self.model, self.meta = model.to(self.device).eval(), getattr(
                model, 'dataset_meta', None)
        else:
            self.model, self.meta = init_segmentor(model, checkpoint,
                                                   self.device, cfg_options)
        self.num_classes, self.channels = num_classes_of(self.model)
        if self.num_classes > 255:
            raise ConfigError(
                f'the model has {self.num_classes} classes; the uint8 label '
                'map holds at most 255 (255 marks no tissue)')
        self.threshold = float(
            getattr(self.model.decode_head, 'threshold', None) or 0.5)
        self.mpp, self.tile, self.overlap = mpp, tile, overlap
        self.blend, self.batch_size, self.amp = blend, batch_size, amp
        self.tissue, self.tissue_mpp = tissue, tissue_mpp
        self.mpp_tolerance = mpp_tolerance
        self.progress = progress
        self._fingerprint = None
        cfg = getattr(self.model, 'cfg', None)
        self._config_digest = hashlib.sha1(
            json.dumps(cfg.model.to_dict(), sort_keys=True,
                       default=str).encode()).hexdigest() if cfg else None

    @property
    def class_names(self) -> List[str]:
        names = list((self.meta or {}).get('classes') or [])
        if len(names) != self.num_classes:
            names = [f'class {i}' for i in range(self.num_classes)]
        return names

    def _settings(self, slide, view: SlideView, mpp_slide) -> dict:
        if self._fingerprint is None:
            self._fingerprint = model_fingerprint(self.model)
        return dict(
            version=STATE_VERSION,
            slide=_file_id(slide.path),
            reader=slide.backend,
            mpp_slide=mpp_slide,
            level=view.level,
            mpp=[view.mpp_x, view.mpp_y],
            size=[view.width, view.height],
            model=self._fingerprint,
            model_config=self._config_digest,
            tile=self.tile,
            overlap=self.overlap,
            blend=self.blend,
            batch_size=self.batch_size,
            amp=self.amp,
            device=self.device.type,
            tissue=self.tissue,
            tissue_mpp=self.tissue_mpp)

    def _state_folder(self, out_dir: str, stem: str, settings: dict,
                      restart: bool) -> str:
        """The resume folder: reused when its settings match, else refused
        (or wiped with ``restart``)."""
        folder = osp.join(out_dir, f'.{stem}.partial')
        path = osp.join(folder, 'run.json')
        if osp.isfile(path) and not restart:
            with open(path) as f:
                saved = json.load(f)
            if saved != json.loads(json.dumps(settings)):
                diff = [
                    f'{k}: {saved.get(k)!r} -> {settings.get(k)!r}'
                    for k in settings if saved.get(k) != settings.get(k)
                ]
                raise SlideError(
                    f'{out_dir} holds an unfinished run of {stem} with other '
                    f'settings ({"; ".join(diff)[:300]}); rerun it with the '
                    'same options to resume, or pass --restart')
            return folder
        if osp.isdir(folder):
            shutil.rmtree(folder)
        os.makedirs(folder)
        with open(path + '.tmp', 'w') as f:
            json.dump(settings, f, indent=2)
        os.replace(path + '.tmp', path)
        return folder

    def __call__(self,
                 slide: str,
                 out_dir: str,
                 mpp_slide: Optional[Union[float, Tuple[float, float]]] = None,
                 reader: str = 'auto',
                 annotation: Optional[str] = None,
                 ignore_index: int = 255,
                 restart: bool = False,
                 overlay_size: int = 1024) -> WSIResult:
        """Segment one slide; outputs go to ``out_dir`` named after it.

        Args:
            slide: The slide file.
            out_dir: Output folder (created); it also holds the resume state
                of an unfinished run, ``.<slide name>.partial``.
            mpp_slide: Level-0 mpp replacing (or standing in for) the
                slide's own; one number or (x, y).
            reader: ``'auto'``, ``'openslide'`` or ``'tifffile'``.
            annotation: A slide-level label mask to evaluate against.
            ignore_index: Value of unannotated pixels in the mask.
            restart: Discard an unfinished run's state instead of resuming.
            overlay_size: Longest side of the overlay picture, at most.

        Returns:
            WSIResult: Output paths and the report.
        """
        start = time.time()
        mpp_slide = _mpp_pair(mpp_slide)
        with open_slide(slide, reader, mpp_slide) as wsi:
            view = SlideView(wsi, self.mpp, self.mpp_tolerance)
            stem = slide_stem(slide)
            os.makedirs(out_dir, exist_ok=True)
            factor = max(1, round(self.tissue_mpp / view.mpp_x))
            thumb_view = view.coarser(factor)
            thumbnail = read_whole(thumb_view)
            if self.tissue == 'otsu':
                tissue = detect_tissue(thumbnail, thumb_view.mpp_x)
            else:
                tissue = TissueMask(
                    np.ones(thumbnail.shape[:2], bool), method='none')
            grid = TileGrid(view.height, view.width, self.tile, self.overlap)
            processed = _tissue_tiles(grid, tissue.mask, factor)
            settings = self._settings(wsi, view, mpp_slide)
            folder = self._state_folder(out_dir, stem, settings, restart)
            annotation_mask = None
            if annotation is not None:
                annotation_mask = AnnotationMask(
                    annotation, view.width, view.height,
                    (wsi.levels[0].width, wsi.levels[0].height))
            try:
                store, stitcher, inferred = self._infer(
                    view, grid, processed, tissue, factor, folder, stem)
                result = self._write_outputs(
                    out_dir, stem, wsi, view, grid, processed, tissue,
                    factor, store, stitcher, inferred, annotation_mask,
                    ignore_index, overlay_size, start)
            finally:
                if annotation_mask is not None:
                    annotation_mask.close()
        shutil.rmtree(folder)
        return result

    def _infer(self, view, grid, processed, tissue, factor, folder, stem):
        mask = tissue.mask if tissue.method != 'none' else None

        def keep(y0, y1, x0, x1):
            if mask is None:
                return None
            return mask[np.arange(y0, y1) // factor][:, np.arange(x0, x1) //
                                                     factor]

        stitcher = Stitcher(
            grid, processed, on_band=None, blend=self.blend,
            threshold=self.threshold, label_mask=keep)
        store = BandStore(
            osp.join(folder, 'bands'), stitcher.bands, grid.width,
            stitcher.empty_bands)
        stitcher.done |= set(store.done())
        stitcher.on_band = lambda j, a, b, labels: store.write(j, labels)
        tiles = [(r, c) for r, c in zip(*np.nonzero(processed))]
        first = stitcher.restart_row()
        begin = next((i for i, (r, _) in enumerate(tiles) if r >= first),
                     len(tiles))
        begin -= begin % self.batch_size
        self._run_tiles(view, grid, tiles, begin, stitcher, stem)
        if len(stitcher.done) != len(stitcher.bands):
            raise RuntimeError('some label bands were left unfinished')
        return store, stitcher, len(tiles) - begin

    def _read_batch(self, view, grid, batch):
        return tiles_to_inputs([
            view.read(grid.xs[c], grid.ys[r], grid.tile_w, grid.tile_h)
            for r, c in batch
        ])

    def _run_tiles(self, view, grid, tiles, begin, stitcher, stem):
        from tqdm import tqdm
        batches = [
            tiles[i:i + self.batch_size]
            for i in range(begin, len(tiles), self.batch_size)
        ]
        bar = tqdm(
            total=len(tiles),
            initial=begin,
            unit='tile',
            desc=stem,
            disable=not self.progress or not batches,
            dynamic_ncols=True)
        # The next batch is read while the model runs on this one.
        with ThreadPoolExecutor(1) as pool, bar:
            pending = pool.submit(self._read_batch, view, grid,
                                  batches[0]) if batches else None
            for k, batch in enumerate(batches):
                inputs = pending.result()
                if k + 1 < len(batches):
                    pending = pool.submit(self._read_batch, view, grid,
                                          batches[k + 1])
                logits = predict_logits(self.model, inputs, self.amp)
                for (r, c), tile_logits in zip(batch, logits):
                    stitcher.add(int(r), int(c), tile_logits)
                bar.update(len(batch))

    def _write_outputs(self, out_dir, stem, wsi, view, grid, processed,
                       tissue, factor, store, stitcher, inferred,
                       annotation, ignore_index, overlay_size, start):
        names, num = self.class_names, self.num_classes
        palette = class_palette(num, (self.meta or {}).get('palette'))
        step = max(1, math.ceil(max(view.width, view.height) / overlay_size))
        stats = summarize(store, num, step, annotation, ignore_index)
        paths = {
            key: osp.join(out_dir, f'{stem}_{name}')
            for key, name in (('labels', 'labels.tif'), ('overlay',
                                                         'overlay.png'),
                              ('report', 'report.json'),
                              ('report_csv', 'report.csv'))
        }
        levels = write_label_tiff(paths['labels'], store,
                                  (view.mpp_x, view.mpp_y), palette)
        pixel_mm2 = view.mpp_x * view.mpp_y * 1e-6
        counts = stats['counts']
        tissue_px = int(counts.sum())
        fractions = counts / tissue_px if tissue_px else np.zeros(num)
        report = dict(
            slide=osp.abspath(wsi.path),
            reader=wsi.backend,
            slide_size=[wsi.levels[0].width, wsi.levels[0].height],
            slide_mpp=[wsi.levels[0].mpp_x, wsi.levels[0].mpp_y],
            level=view.level,
            resampled=view.resampled,
            mpp=[view.mpp_x, view.mpp_y],
            label_map=osp.abspath(paths['labels']),
            label_map_size=[view.width, view.height],
            label_map_levels=levels,
            not_tissue_value=255,
            tile=self.tile,
            overlap=self.overlap,
            blend=self.blend,
            batch_size=self.batch_size,
            amp=self.amp,
            device=str(self.device),
            tiles=dict(
                total=len(grid),
                tissue=int(processed.sum()),
                skipped=int(len(grid) - processed.sum()),
                inferred=inferred),
            tissue_detection=dict(
                method=tissue.method,
                threshold=tissue.threshold,
                mpp=view.mpp_x * factor),
            state_bound_bytes=stitcher.state_bound(self.channels),
            peak_state_bytes=stitcher.peak_state_bytes,
            tissue_pixels=tissue_px,
            tissue_area_mm2=tissue_px * pixel_mm2,
            classes=[
                dict(
                    index=i,
                    **{'class': names[i]},
                    pixels=int(counts[i]),
                    area_mm2=float(counts[i] * pixel_mm2),
                    fraction=float(fractions[i])) for i in range(num)
            ],
            time_s=round(time.time() - start, 2))
        if annotation is not None:
            scores = slide_metrics(stats['confusion'])
            valid = [s for s in scores if s['dice'] is not None]
            report['evaluation'] = dict(
                annotation=osp.abspath(annotation.path),
                ignore_index=ignore_index,
                classes=[dict(**{'class': names[i]}, **s)
                         for i, s in enumerate(scores)],
                mean_dice=float(np.mean([s['dice'] for s in valid]))
                if valid else None,
                mean_iou=float(np.mean([s['iou'] for s in valid]))
                if valid else None)
        save_overlay(
            paths['overlay'], read_whole(view.coarser(step)),
            stats['overlay'], names, palette,
            fractions,
            title=f'{stem}: {report["tissue_area_mm2"]:.2f} mm^2 tissue')
        write_report(report, paths['report'], paths['report_csv'])
        return WSIResult(paths['labels'], paths['overlay'], paths['report'],
                         paths['report_csv'], report)
