"""Overlapping tiles over a label map, and their logits blended band by band.

Tiles of ``tile`` pixels overlap by at least ``overlap``; along each axis they
are spread evenly from one edge of the map to the other, so that none sticks
out and no two steps differ by more than a pixel. Where tiles overlap, the
label is the argmax of their logits averaged with per-pixel weights:

* ``linear``: 1 inside the tile, falling linearly to 0 across the overlap
  with each processed neighbour, and 0 in the ``margin`` pixels next to that
  neighbour's side of the tile, where the tile's own border effects are.
  Two overlapping tiles' weights then sum to 1 (a cross-fade), and a model
  whose output depends on at most ``margin`` pixels around each pixel
  stitches to exactly its output on the whole image. Towards the map's edge
  or a skipped (background) neighbour the weight stays 1.
* ``gaussian``: a Gaussian of standard deviation ``tile / 8`` around the
  tile centre (nnU-Net's importance map), never 0.

The map's rows split into bands at every tile edge; a band is finished, and
handed on, once every tile covering it is done, so that only the overlap
strips hold sums of logits at any time (:meth:`Stitcher.state_bound`).
"""
import math
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from mmimb.datasets.conversion import IGNORE_INDEX

BLEND_MODES = ('linear', 'gaussian')


def tile_starts(length: int, tile: int, overlap: int) -> Tuple[int, List[int]]:
    """Tile size and start positions covering ``[0, length)``.

    The size is ``min(tile, length)``; consecutive tiles overlap by at least
    ``overlap`` pixels.
    """
    if length <= tile:
        return length, [0]
    steps = math.ceil((length - tile) / (tile - overlap))
    span = length - tile
    # round(i * span / steps) in integers: the same on every machine.
    return tile, [(2 * i * span + steps) // (2 * steps)
                  for i in range(steps + 1)]


def _segments(starts: Sequence[int], size: int,
              length: int) -> List[Tuple[int, int, int, int]]:
    """Cut ``[0, length)`` at every tile edge: (start, end, first tile, last
    tile) of each piece, with the range of tiles covering it."""
    breaks = sorted({0, length} | set(starts) | {s + size for s in starts})
    pieces = []
    for a, b in zip(breaks[:-1], breaks[1:]):
        cover = [i for i, s in enumerate(starts) if s <= a and b <= s + size]
        pieces.append((a, b, cover[0], cover[-1]))
    return pieces


def channel_argmax(x: torch.Tensor) -> torch.Tensor:
    """``x.argmax(0)`` as uint8 for (C, H, W) logits, C <= 256: the first
    largest class, as argmax breaks ties. A running maximum over the
    channels, several times faster on the CPU than a reduction over the
    outermost, strided dimension."""
    best = x[0]
    index = torch.zeros(x.shape[1:], dtype=torch.uint8, device=x.device)
    for c in range(1, x.shape[0]):
        higher = x[c] > best
        best = torch.where(higher, x[c], best)
        index.masked_fill_(higher, c)
    return index


class TileGrid:
    """Tile layout over a ``height x width`` map.

    Args:
        height, width: Size of the map.
        tile: Tile side (smaller where the map is smaller).
        overlap: Least overlap of neighbouring tiles, at most ``tile // 2``.

    Attributes:
        tile_h, tile_w: Tile size.
        ys, xs: Start rows and columns of the tile rows and columns.
    """

    def __init__(self, height: int, width: int, tile: int, overlap: int):
        if tile < 1 or not 0 <= overlap <= tile // 2:
            raise ValueError(f'tile={tile}, overlap={overlap}: expected a '
                             'positive tile and 0 <= overlap <= tile // 2')
        self.height, self.width = height, width
        self.tile, self.overlap = tile, overlap
        self.tile_h, self.ys = tile_starts(height, tile, overlap)
        self.tile_w, self.xs = tile_starts(width, tile, overlap)

    @property
    def shape(self) -> Tuple[int, int]:
        return len(self.ys), len(self.xs)

    def __len__(self) -> int:
        return len(self.ys) * len(self.xs)


def blend_profile(size: int, before: int, after: int, margin: int,
                  blend: str) -> np.ndarray:
    """1-D blending weights of a tile of ``size`` pixels that overlaps a
    processed neighbour by ``before`` pixels at its start and ``after`` at
    its end (0: no neighbour there)."""
    d = np.arange(size, dtype=np.float64) + 0.5
    if blend == 'gaussian':
        sigma = size / 8
        return np.exp(-(d - size / 2)**2 / (2 * sigma**2)).astype(np.float32)
    w = np.ones(size)
    if before:
        w = np.minimum(w, np.clip((d - margin) / (before - 2 * margin), 0, 1))
    if after:
        w = np.minimum(
            w, np.clip((size - d - margin) / (after - 2 * margin), 0, 1))
    return w.astype(np.float32)


class Stitcher:
    """Blends the logits of a :class:`TileGrid`'s tiles into label bands.

    Feed each processed tile's logits to :meth:`add` (tile rows in order;
    within a row any order); every band whose tiles are all done is passed
    to ``on_band`` as uint8 labels, :data:`IGNORE_INDEX` where no processed
    tile covers it or ``label_mask`` says so.

    Args:
        grid: The tile layout.
        processed: Bool (rows, cols): the tiles that will be added; the
            others (background) are skipped.
        on_band: Called as ``on_band(index, y0, y1, labels)`` with labels
            (y1 - y0, width).
        blend: ``'linear'`` or ``'gaussian'`` (module docstring).
        margin: Zero-weight pixels of the linear weights next to a
            neighbour; default ``overlap // 4``.
        threshold: Decision threshold for single-channel (sigmoid) outputs.
        done_bands: Bands already finished (a resumed run): contributions to
            them are dropped.
        label_mask: ``label_mask(y0, y1, x0, x1)`` gives a bool array of
            pixels to keep (others become IGNORE_INDEX), or None.
    """

    def __init__(self,
                 grid: TileGrid,
                 processed: np.ndarray,
                 on_band: Callable[[int, int, int, np.ndarray], None],
                 blend: str = 'linear',
                 margin: Optional[int] = None,
                 threshold: float = 0.5,
                 done_bands: Sequence[int] = (),
                 label_mask: Optional[Callable] = None):
        if blend not in BLEND_MODES:
            raise ValueError(f'blend={blend!r}; expected one of {BLEND_MODES}')
        self.grid = grid
        self.processed = np.asarray(processed, bool)
        assert self.processed.shape == grid.shape
        self.on_band = on_band
        self.blend = blend
        self.margin = grid.overlap // 4 if margin is None else margin
        self.threshold = threshold
        self.label_mask = label_mask
        self.bands = _segments(grid.ys, grid.tile_h, grid.height)
        self.columns = _segments(grid.xs, grid.tile_w, grid.width)
        needed = np.zeros((len(self.bands), len(self.columns)), int)
        for j, (_, _, r0, r1) in enumerate(self.bands):
            for i, (_, _, c0, c1) in enumerate(self.columns):
                needed[j, i] = self.processed[r0:r1 + 1, c0:c1 + 1].sum()
        self.needed = needed
        self.empty_bands = {j for j in range(len(self.bands))
                            if not needed[j].any()}
        self.done = set(done_bands) | self.empty_bands
        self._row_bands = [[j for j, b in enumerate(self.bands)
                            if b[2] <= r <= b[3]]
                           for r in range(grid.shape[0])]
        self._col_pieces = [[i for i, p in enumerate(self.columns)
                             if p[2] <= c <= p[3]]
                            for c in range(grid.shape[1])]
        self._acc: Dict[Tuple[int, int], list] = {}
        self._band_labels: Dict[int, np.ndarray] = {}
        self._band_left: Dict[int, int] = {}
        self._weights: Dict[tuple, torch.Tensor] = {}
        self.state_bytes = self.peak_state_bytes = 0

    def restart_row(self) -> int:
        """The first tile row a resumed run must recompute: the earliest one
        covering an unfinished band (the row count when all are done)."""
        rows = [b[2] for j, b in enumerate(self.bands) if j not in self.done]
        return min(rows, default=self.grid.shape[0])

    def state_bound(self, num_classes: int) -> int:
        """Most bytes held between tiles: float32 logit and weight sums over
        the overlap strips (one under the current tile row, plus one tile's
        side strip) and the uint8 labels of the bands the row covers."""
        g = self.grid
        over_y = max([a + g.tile_h - b for a, b in zip(g.ys, g.ys[1:])] or [0])
        over_x = max([a + g.tile_w - b for a, b in zip(g.xs, g.xs[1:])] or [0])
        floats = 4 * (num_classes + 1) * (
            (g.width + g.tile_w) * over_y + g.tile_h * over_x)
        return floats + g.width * (g.tile_h + over_y)

    def _overlap(self, r: int, c: int, dr: int, dc: int) -> int:
        r2, c2 = r + dr, c + dc
        rows, cols = self.grid.shape
        if not (0 <= r2 < rows and 0 <= c2 < cols) or \
                not self.processed[r2, c2]:
            return 0
        g = self.grid
        if dr:
            lo, hi = sorted((g.ys[r], g.ys[r2]))
            return lo + g.tile_h - hi
        lo, hi = sorted((g.xs[c], g.xs[c2]))
        return lo + g.tile_w - hi

    def _weight(self, r: int, c: int, device) -> torch.Tensor:
        key = (self._overlap(r, c, -1, 0), self._overlap(r, c, 1, 0),
               self._overlap(r, c, 0, -1), self._overlap(r, c, 0, 1))
        if self.blend == 'gaussian':
            key = ()
        w = self._weights.get(key)
        if w is None:
            top, bottom, left, right = key or (0, 0, 0, 0)
            wy = blend_profile(self.grid.tile_h, top, bottom, self.margin,
                               self.blend)
            wx = blend_profile(self.grid.tile_w, left, right, self.margin,
                               self.blend)
            w = torch.from_numpy(np.outer(wy, wx)).to(device)
            self._weights[key] = w
        return w

    def add(self, r: int, c: int, logits: torch.Tensor) -> None:
        """Add tile ``(r, c)``'s logits, float (C, tile_h, tile_w)."""
        g = self.grid
        y0, x0 = g.ys[r], g.xs[c]
        weight = None
        for j in self._row_bands[r]:
            if j in self.done:
                continue
            a, b = self.bands[j][:2]
            for i in self._col_pieces[c]:
                xa, xb = self.columns[i][:2]
                piece = logits[:, a - y0:b - y0, xa - x0:xb - x0]
                if self.needed[j, i] == 1:
                    self._finish(j, i, piece)
                    continue
                if weight is None:
                    weight = self._weight(r, c, logits.device)
                w = weight[a - y0:b - y0, xa - x0:xb - x0]
                acc = self._acc.get((j, i))
                if acc is None:
                    acc = self._acc[j, i] = [piece * w, w.clone(), 0]
                    self._grow(4 * acc[0].numel() + 4 * w.numel())
                else:
                    acc[0].addcmul_(piece, w)
                    acc[1] += w
                acc[2] += 1
                if acc[2] == self.needed[j, i]:
                    del self._acc[j, i]
                    self.state_bytes -= 4 * acc[0].numel() + 4 * w.numel()
                    if not bool((acc[1] > 0).all()):
                        raise RuntimeError(
                            f'blending weights vanish in band {j}, piece {i}'
                            f' (margin {self.margin} too wide for the '
                            'overlap)')
                    self._finish(j, i, acc[0] / acc[1])

    def _grow(self, nbytes: int) -> None:
        self.state_bytes += nbytes
        self.peak_state_bytes = max(self.peak_state_bytes, self.state_bytes)

    def _finish(self, j: int, i: int, blended: torch.Tensor) -> None:
        if blended.shape[0] == 1:
            labels = (blended[0] > self.threshold).to(torch.uint8)
        else:
            labels = channel_argmax(blended)
        labels = labels.cpu().numpy()
        a, b = self.bands[j][:2]
        xa, xb = self.columns[i][:2]
        if self.label_mask is not None:
            keep = self.label_mask(a, b, xa, xb)
            if keep is not None:
                labels[~keep] = IGNORE_INDEX
        band = self._band_labels.get(j)
        if band is None:
            band = self._band_labels[j] = np.full((b - a, self.grid.width),
                                                  IGNORE_INDEX, np.uint8)
            self._band_left[j] = int((self.needed[j] > 0).sum())
            self._grow(band.nbytes)
        band[:, xa:xb] = labels
        self._band_left[j] -= 1
        if self._band_left[j] == 0:
            del self._band_labels[j], self._band_left[j]
            self.done.add(j)
            self.on_band(j, a, b, band)
            self.state_bytes -= band.nbytes
