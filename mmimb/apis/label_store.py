"""Finished label bands on disk: what a whole-slide run keeps to resume.

One zlib-compressed file per band of rows, written under a temporary name
and renamed, so that a file exists only once it is complete; a killed run
leaves whole bands and at most a stray temporary file. Bands that no
processed tile covers hold no file and read as IGNORE_INDEX.
"""
import os
import os.path as osp
import zlib
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy as np

from mmimb.datasets.conversion import IGNORE_INDEX


class BandStore:
    """Label bands of a ``width``-wide map, read back by rows.

    Args:
        folder: Where the band files live (created).
        bands: (start row, end row) of every band, in order, covering the
            map.
        width: Width of the map.
        empty: Indices of bands without a file (all IGNORE_INDEX).
    """

    def __init__(self, folder: str, bands: Sequence[Tuple[int, int]],
                 width: int, empty: Iterable[int] = ()):
        self.folder = folder
        os.makedirs(folder, exist_ok=True)
        self.bands = [tuple(b[:2]) for b in bands]
        self.width = width
        self.empty = set(empty)
        self.height = self.bands[-1][1] if self.bands else 0
        self._cached: Optional[Tuple[int, np.ndarray]] = None

    def _path(self, j: int) -> str:
        return osp.join(self.folder, f'band_{j:06d}.zlib')

    def done(self) -> List[int]:
        """Bands whose file is complete."""
        return [j for j in range(len(self.bands)) if osp.isfile(self._path(j))]

    def write(self, j: int, labels: np.ndarray) -> None:
        a, b = self.bands[j]
        assert labels.shape == (b - a, self.width) and labels.dtype == np.uint8
        tmp = self._path(j) + '.tmp'
        with open(tmp, 'wb') as f:
            f.write(zlib.compress(np.ascontiguousarray(labels).data, 1))
        os.replace(tmp, self._path(j))

    def read(self, j: int) -> np.ndarray:
        """Band ``j``'s labels, (rows, width) uint8."""
        if self._cached is not None and self._cached[0] == j:
            return self._cached[1]
        a, b = self.bands[j]
        if j in self.empty:
            labels = np.full((b - a, self.width), IGNORE_INDEX, np.uint8)
        else:
            with open(self._path(j), 'rb') as f:
                labels = np.frombuffer(
                    zlib.decompress(f.read()),
                    np.uint8).reshape(b - a, self.width)
        self._cached = (j, labels)
        return labels

    def rows(self, ys: np.ndarray, col_step: int = 1) -> np.ndarray:
        """Rows ``ys`` (increasing) of the map, every ``col_step``-th
        column: (len(ys), ceil(width / col_step)) uint8."""
        ys = np.asarray(ys)
        out = np.empty((len(ys), -(-self.width // col_step)), np.uint8)
        starts = np.array([a for a, _ in self.bands])
        band_of = np.searchsorted(starts, ys, side='right') - 1
        for j in np.unique(band_of):
            sel = band_of == j
            out[sel] = self.read(int(j))[ys[sel] - self.bands[j][0],
                                         ::col_step]
        return out

    def remove(self) -> None:
        """Delete the band files (after the outputs are written)."""
        for name in os.listdir(self.folder):
            if name.startswith('band_'):
                os.remove(osp.join(self.folder, name))
