"""Figures of Gradient Conflict Matrices saved as ``.npz``
(:meth:`GradientConflict.to_npz`): heatmaps, per-layer conflict and
gradient flow, and the evolution over training.

Figures are drawn on matplotlib ``Figure`` objects with the Agg canvas, so
no global pyplot state or display is needed.
"""
import glob
import os
import os.path as osp
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .conflict import SUMMARY_KEYS, summarize

# Tick labels become unreadable beyond this many classes.
MAX_LABELLED_CLASSES = 40


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path: str) -> None:
    """Write a figure of :func:`_figure` as a PNG, creating the folder."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _labels(count: int,
            class_names: Optional[Sequence[str]]) -> Optional[List[str]]:
    if class_names is None:
        return [str(i) for i in range(count)] \
            if count <= MAX_LABELLED_CLASSES else None
    if len(class_names) != count:
        raise ValueError(f'{len(class_names)} class names for a '
                         f'{count}-class matrix')
    return list(class_names) if count <= MAX_LABELLED_CLASSES else None


def heatmap_figure(matrix: np.ndarray,
                   class_names: Optional[Sequence[str]] = None,
                   title: Optional[str] = None) -> Tuple[object, np.ndarray]:
    """A (K, K) cosine matrix as a heatmap; absent classes (NaN) grey.

    Args:
        matrix: Cosines in [-1, 1], shape (K, K).
        class_names: Axis labels (shown up to 40 classes).
        title: Figure title.

    Returns:
        The matplotlib figure and its pixels, (H, W, 3) RGB uint8.
    """
    import matplotlib
    k = matrix.shape[0]
    size = min(4 + 0.25 * k, 16)
    fig = _figure(size + 1, size)
    ax = fig.add_subplot()
    cmap = matplotlib.colormaps['RdBu_r'].with_extremes(bad='lightgrey')
    image = ax.imshow(
        np.ma.masked_invalid(matrix), cmap=cmap, vmin=-1, vmax=1,
        interpolation='nearest')
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label='cosine')
    labels = _labels(k, class_names)
    if labels is not None:
        ax.set_xticks(range(k), labels, rotation=90)
        ax.set_yticks(range(k), labels)
    ax.set_title(title or 'Gradient Conflict Matrix')
    fig.tight_layout()
    fig.canvas.draw()
    pixels = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    return fig, pixels


def plot_heatmap(matrix: np.ndarray,
                 path: str,
                 class_names: Optional[Sequence[str]] = None,
                 title: Optional[str] = None) -> None:
    """Save a (K, K) cosine matrix as a heatmap (:func:`heatmap_figure`).

    Args:
        matrix: Cosines in [-1, 1], shape (K, K).
        path: PNG file to write.
        class_names: Axis labels (shown up to 40 classes).
        title: Figure title.
    """
    save_figure(heatmap_figure(matrix, class_names, title)[0], path)


def load_results(paths: Sequence[str]) -> List[Dict[str, np.ndarray]]:
    """Load saved results, ordered by their ``iteration`` entry (files
    without one keep their order)."""
    results = []
    for path in paths:
        with np.load(path) as data:
            entry = {k: data[k] for k in data.files}
        entry['path'] = path
        results.append(entry)
    return sorted(
        results,
        key=lambda r: int(r['iteration']) if 'iteration' in r else 0)


def find_results(folder: str) -> List[str]:
    """The ``.npz`` files of a folder, in natural order."""
    paths = glob.glob(osp.join(folder, '*.npz'))
    return sorted(paths, key=lambda p: [
        int(t) if t.isdigit() else t for t in re.split(r'(\d+)', p)])


def layer_summaries(result: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Per-layer summary scalars of a loaded result, each shape (L,)."""
    rows = [summarize(torch.from_numpy(m)) for m in result['per_layer']]
    return {k: np.array([r[k] for r in rows]) for k in SUMMARY_KEYS}


def plot_layers(result: Dict[str, np.ndarray],
                path: str,
                class_names: Optional[Sequence[str]] = None) -> None:
    """Per-layer conflict (top) and class-gradient norms, the gradient flow
    (bottom, log scale, one line per class)."""
    names = [str(n) for n in result['layer_names']]
    summary = layer_summaries(result)
    x = np.arange(len(names))
    fig = _figure(max(8, 0.3 * len(names)), 9)
    top, bottom = fig.subplots(2, 1, sharex=True)
    top.plot(x, summary['conflict_fraction'], marker='o',
             label='fraction of conflicting pairs')
    top.plot(x, -summary['mean_negative_cosine'], marker='o',
             label='|mean cosine of conflicting pairs|')
    top.plot(x, summary['mean_cosine'], marker='o', label='mean cosine')
    top.axhline(0, color='grey', linewidth=0.5)
    top.set_ylabel('per-layer conflict')
    top.legend()
    norms = result['norms']
    classes = result['classes']
    labels = class_names or [str(c) for c in classes]
    for i in range(norms.shape[1]):
        if np.isfinite(norms[:, i]).any():
            bottom.semilogy(x, norms[:, i], linewidth=1,
                            label=labels[i] if len(labels) <= 20 else None)
    bottom.set_ylabel('class-gradient norm')
    if len(labels) <= 20:
        bottom.legend(fontsize='small', ncol=2)
    bottom.set_xticks(x, names, rotation=90, fontsize='small')
    save_figure(fig, path)


def _iterations(results: Sequence[Dict[str, np.ndarray]]) -> np.ndarray:
    return np.array([int(r.get('iteration', i))
                     for i, r in enumerate(results)])


def plot_evolution(results: Sequence[Dict[str, np.ndarray]],
                   path: str,
                   class_names: Optional[Sequence[str]] = None) -> None:
    """Whole-model summaries (top) and each class's conflict with the rest
    (bottom) against the training iteration."""
    iters = _iterations(results)
    fig = _figure(9, 8)
    top, bottom = fig.subplots(2, 1, sharex=True)
    for key in SUMMARY_KEYS:
        top.plot(iters, [float(r[key]) for r in results], marker='o',
                 label=key)
    top.axhline(0, color='grey', linewidth=0.5)
    top.legend()
    top.set_ylabel('whole model')
    conflict = np.stack([r['class_conflict'] for r in results])
    labels = class_names or [str(c) for c in results[0]['classes']]
    for i in range(conflict.shape[1]):
        bottom.plot(iters, conflict[:, i], linewidth=1,
                    label=labels[i] if len(labels) <= 20 else None)
    bottom.axhline(0, color='grey', linewidth=0.5)
    bottom.set_ylabel('cos(g_c, other classes)')
    bottom.set_xlabel('iteration')
    if len(labels) <= 20:
        bottom.legend(fontsize='small', ncol=2)
    save_figure(fig, path)


def plot_runs(runs: Dict[str, Sequence[Dict[str, np.ndarray]]], path: str):
    """Several runs side by side, one curve per run: each whole-model
    summary, and the mean over the present classes of each class's conflict
    with the rest and with the count-weighted gradient, against the
    iteration. Returns the figure (its axes in that order)."""
    panels = list(SUMMARY_KEYS) + ['class_conflict', 'weighted_class_conflict']
    titles = dict(class_conflict='mean cos(g_c, other classes)',
                  weighted_class_conflict='mean cos(g_c, sum_j n_j g_j)')
    fig = _figure(9, 2.2 * len(panels))
    axes = fig.subplots(len(panels), 1, sharex=True)
    for label, results in runs.items():
        iters = _iterations(results)
        for ax, key in zip(axes, panels):
            if key in SUMMARY_KEYS:
                values = [float(r[key]) for r in results]
            else:
                values = [float(np.nanmean(r[key])) if key in r and
                          np.isfinite(r[key]).any() else np.nan
                          for r in results]
            ax.plot(iters, values, marker='o', label=label)
    for ax, key in zip(axes, panels):
        ax.axhline(0, color='grey', linewidth=0.5)
        ax.set_ylabel(titles.get(key, key), fontsize='small')
    axes[0].legend(fontsize='small')
    axes[-1].set_xlabel('iteration')
    save_figure(fig, path)
    return fig
