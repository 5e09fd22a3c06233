"""The Gradient Conflict Matrix and its summaries.

Definitions (our reading, METHODS.md section 3):

- ``matrix[i, j] = cos(g_i, g_j)`` over all analysed layers together,
  ``per_layer[name][i, j]`` over one layer; NaN in the rows and columns of a
  class absent from the batch (or whose gradient is zero there), 1 on the
  diagonal of every other class.
- ``norms[name][c] = ||g_c||`` over one layer (gradient flow).
- Summaries over the unordered pairs ``i < j`` of classes with a finite
  cosine: ``mean_cosine``; ``conflict_fraction``, the fraction of pairs with
  ``cos < 0``; ``mean_negative_cosine``, the mean cosine of those
  conflicting pairs (0 when there are none).
- ``class_conflict[c] = cos(g_c, sum of g_j over the other present
  classes j)``: how class c's gradient agrees with the gradient the other
  classes would take together if each counted once (the class-balanced loss
  without c). Negative: training the rest pushes class c's loss up to first
  order. NaN when c is absent or no other class is present.
- ``weighted_class_conflict[c] = cos(g_c, sum_j n_j g_j)`` over the present
  classes j, c included: the agreement of class c's gradient with the
  gradient of the plain mean loss, i.e. the direction a training step on
  the batch follows (each class weighted by its count n_j). Negative: a
  training step increases class c's loss to first order.
"""
import os
import os.path as osp
import tempfile
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .class_gradients import ClassGradients, class_gradients
from .layer_selection import Coverage

SUMMARY_KEYS = ('mean_cosine', 'mean_negative_cosine', 'conflict_fraction')


def cosine_from_gram(gram: Tensor) -> Tensor:
    """Cosine matrix of a (K, K) Gram matrix; NaN where a norm is zero or
    NaN, exactly 1 on the diagonal elsewhere."""
    norm = gram.diagonal().clamp(min=0).sqrt()
    norm = torch.where(norm > 0, norm, torch.full_like(norm, float('nan')))
    cos = (gram / norm[:, None] / norm[None, :]).clamp(-1, 1)
    cos = (cos + cos.T) / 2
    diag = torch.where(norm.isnan(), norm, torch.ones_like(norm))
    return cos - torch.diag_embed(cos.diagonal()) + torch.diag_embed(diag)


def summarize(cos: Tensor) -> Dict[str, float]:
    """``mean_cosine``, ``mean_negative_cosine`` and ``conflict_fraction``
    of a cosine matrix (module docstring); NaN without any finite pair."""
    i, j = torch.triu_indices(*cos.shape, offset=1)
    pairs = cos[i, j]
    pairs = pairs[pairs.isfinite()]
    if not pairs.numel():
        return {k: float('nan') for k in SUMMARY_KEYS}
    negative = pairs[pairs < 0]
    return dict(
        mean_cosine=pairs.mean().item(),
        mean_negative_cosine=negative.mean().item()
        if negative.numel() else 0.0,
        conflict_fraction=(pairs < 0).double().mean().item())


def conflict_with_rest(gram: Tensor) -> Tensor:
    """``cos(g_c, sum_{j != c, present} g_j)`` for each class from the Gram
    matrix, shape (K,)."""
    present = gram.diagonal().isfinite()
    g = torch.where(present[:, None] & present[None, :], gram,
                    torch.zeros_like(gram))
    total = g.sum()
    row = g.sum(1)
    # <g_c, R_c> with R_c = sum_{j != c} g_j, and ||R_c||^2.
    inner = row - g.diagonal()
    rest_sq = total - 2 * row + g.diagonal()
    cos = inner / (g.diagonal().sqrt() * rest_sq.clamp(min=0).sqrt())
    others = present.sum() - present.long()
    valid = present & (others > 0) & (rest_sq > 0) & (g.diagonal() > 0)
    return torch.where(valid, cos.clamp(-1, 1),
                       torch.full_like(cos, float('nan')))


def weighted_conflict(gram: Tensor, counts: Tensor) -> Tensor:
    """``cos(g_c, sum_j n_j g_j)`` for each class from the Gram matrix and
    the class counts, shape (K,); NaN for absent classes."""
    present = gram.diagonal().isfinite() & (counts > 0)
    g = torch.where(present[:, None] & present[None, :], gram,
                    torch.zeros_like(gram))
    n = torch.where(present, counts.to(g.dtype), torch.zeros_like(g[0]))
    inner = g @ n
    total_sq = n @ inner
    cos = inner / (g.diagonal().sqrt() * total_sq.clamp(min=0).sqrt())
    valid = present & (g.diagonal() > 0) & (total_sq > 0)
    return torch.where(valid, cos.clamp(-1, 1),
                       torch.full_like(cos, float('nan')))


def layer_groups(names: Sequence[str], depth: int) -> Dict[str, List[str]]:
    """Layers grouped by the first ``depth`` components of their names
    (e.g. ``backbone.layer1`` for depth 2), in model order."""
    groups: Dict[str, List[str]] = {}
    for name in names:
        key = '.'.join(name.split('.')[:depth]) if name else '<model>'
        groups.setdefault(key, []).append(name)
    return groups


@dataclass
class GradientConflict:
    """The Gradient Conflict Matrix of one batch (or merged batches).

    Args:
        matrix: Cosines of the whole-model class gradients, shape (K, K).
        per_layer: Layer name to its (K, K) cosine matrix.
        norms: Layer name to the class-gradient norms, shape (K,).
        present: Bool per class: it has samples (pixels), shape (K,).
        counts: Samples (pixels) per class, shape (K,).
        classes: Class id of each row, shape (K,).
        class_conflict: Conflict of each class with the rest, shape (K,)
            (module docstring).
        gram: Whole-model Gram matrix ``<g_i, g_j>``, shape (K, K).
        sketch_dim: CountSketch size if estimated by ``mode='sketch'``.
        weighted_class_conflict: ``cos(g_c, sum_j n_j g_j)``, shape (K,).
        layer_grams: Layer name to its Gram matrix, shape (K, K).
        coverage: What was analysed: the fraction of trainable parameters
            and the layers skipped, with the reason.
    """
    matrix: Tensor
    per_layer: Dict[str, Tensor]
    norms: Dict[str, Tensor]
    present: Tensor
    counts: Tensor
    classes: Tensor
    class_conflict: Tensor
    gram: Tensor = field(repr=False)
    sketch_dim: Optional[int] = None
    weighted_class_conflict: Optional[Tensor] = None
    layer_grams: Dict[str, Tensor] = field(default_factory=dict, repr=False)
    coverage: Optional[Coverage] = None

    @property
    def absent_classes(self) -> List[int]:
        """Ids of the classes with no sample (pixel) in the batch."""
        return self.classes[~self.present].tolist()

    @property
    def layers(self) -> List[str]:
        return list(self.per_layer)

    @property
    def total_norm(self) -> Tensor:
        """Whole-model class-gradient norms, shape (K,)."""
        return self.gram.diagonal().clamp(min=0).sqrt()

    @property
    def skipped(self) -> Dict[str, str]:
        """Layer name to why it was not analysed."""
        return dict(self.coverage.skipped) if self.coverage else {}

    def summary(self) -> Dict[str, float]:
        """Whole-model ``mean_cosine``, ``mean_negative_cosine`` and
        ``conflict_fraction``."""
        return summarize(self.matrix)

    def layer_summary(self) -> Dict[str, Dict[str, float]]:
        """The summary of each layer's matrix."""
        return {name: summarize(cos) for name, cos in self.per_layer.items()}

    def group_matrices(self, depth: int) -> Dict[str, Tensor]:
        """Cosine matrix of each group of layers (:func:`layer_groups`),
        over the group's layers together."""
        return {
            key: cosine_from_gram(sum(self.layer_grams[n] for n in names))
            for key, names in layer_groups(self.layers, depth).items()
        }

    def to_npz(self, path: str, class_names: Optional[Sequence[str]] = None,
               **extra) -> None:
        """Save everything as one ``.npz`` of plain numeric and string
        arrays (``np.load`` needs no pickle; :meth:`from_npz` reads it
        back), written to a temporary file and renamed, so a reader never
        sees half a file.

        ``extra`` entries (e.g. ``iteration``) are stored as arrays.
        """
        names = self.layers
        k = len(self.classes)
        cover = self.coverage or Coverage(0, 0)
        weighted = self.weighted_class_conflict if \
            self.weighted_class_conflict is not None else \
            torch.full((k, ), float('nan'))
        arrays = dict(
            matrix=self.matrix.cpu().numpy(),
            gram=self.gram.cpu().numpy(),
            layer_names=np.array(names, dtype=str),
            per_layer=np.stack([self.per_layer[n].cpu().numpy()
                                for n in names]) if names else
            np.zeros((0, k, k)),
            layer_grams=np.stack([self.layer_grams[n].cpu().numpy()
                                  for n in names]) if self.layer_grams and
            names else np.zeros((0, k, k)),
            norms=np.stack([self.norms[n].cpu().numpy() for n in names])
            if names else np.zeros((0, k)),
            present=self.present.cpu().numpy(),
            counts=self.counts.cpu().numpy(),
            classes=self.classes.cpu().numpy(),
            class_conflict=self.class_conflict.cpu().numpy(),
            weighted_class_conflict=weighted.cpu().numpy(),
            sketch_dim=np.array(self.sketch_dim or 0),
            coverage=np.array(cover.fraction),
            analysed_parameters=np.array(cover.analysed),
            trainable_parameters=np.array(cover.total),
            skipped_names=np.array(list(cover.skipped), dtype=str),
            skipped_reasons=np.array(list(cover.skipped.values()),
                                     dtype=str),
            **{k: np.array(v) for k, v in self.summary().items()})
        if class_names is not None:
            arrays['class_names'] = np.array(
                [class_names[c] for c in self.classes.tolist()], dtype=str)
        arrays.update({k: np.asarray(v) for k, v in extra.items()})
        folder = osp.dirname(osp.abspath(path))
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix='.npz', dir=folder)
        try:
            with os.fdopen(fd, 'wb') as f:
                np.savez(f, **arrays)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise

    @classmethod
    def from_npz(cls, path: str) -> 'GradientConflict':
        """Read a result written by :meth:`to_npz`."""
        with np.load(path) as data:
            d = {k: data[k] for k in data.files}
        t = torch.from_numpy
        names = [str(n) for n in d['layer_names']]
        grams = d.get('layer_grams')
        skipped = dict(zip((str(n) for n in d.get('skipped_names', [])),
                           (str(r) for r in d.get('skipped_reasons', []))))
        coverage = Coverage(int(d['analysed_parameters']),
                            int(d['trainable_parameters']), skipped) \
            if 'analysed_parameters' in d else None
        return cls(
            matrix=t(d['matrix']),
            per_layer={n: t(m) for n, m in zip(names, d['per_layer'])},
            norms={n: t(v) for n, v in zip(names, d['norms'])},
            present=t(d['present']),
            counts=t(d['counts']),
            classes=t(d['classes']),
            class_conflict=t(d['class_conflict']),
            gram=t(d['gram']),
            sketch_dim=int(d['sketch_dim']) or None,
            weighted_class_conflict=t(d['weighted_class_conflict'])
            if 'weighted_class_conflict' in d else None,
            layer_grams={n: t(g) for n, g in zip(names, grams)}
            if grams is not None and len(grams) else {},
            coverage=coverage)


def conflict_matrix(class_grads: ClassGradients) -> GradientConflict:
    """The Gradient Conflict Matrix, per layer and for the whole model
    (the sum of the layers' Gram matrices), with gradient norms and
    summaries, from :func:`~mmimb.analysis.class_gradients`."""
    grams = class_grads.gram_matrices()
    total = sum(grams.values())
    per_layer = {n: cosine_from_gram(g) for n, g in grams.items()}
    norms = {n: g.diagonal().clamp(min=0).sqrt() for n, g in grams.items()}
    return GradientConflict(
        matrix=cosine_from_gram(total),
        per_layer=per_layer,
        norms=norms,
        present=class_grads.present,
        counts=class_grads.counts,
        classes=class_grads.classes,
        class_conflict=conflict_with_rest(total),
        gram=total,
        sketch_dim=class_grads.sketch_dim,
        weighted_class_conflict=weighted_conflict(total, class_grads.counts),
        layer_grams=dict(grams),
        coverage=class_grads.coverage)


def gradient_conflict(model: nn.Module,
                      inputs: Tensor,
                      targets: Tensor,
                      loss_fn: Callable = F.cross_entropy,
                      num_classes: Optional[int] = None,
                      mode: str = 'fast',
                      layers: Optional[Sequence[str]] = None,
                      ignore_index: Optional[int] = None,
                      classes: Optional[Sequence[int]] = None,
                      align_corners: bool = False,
                      sketch_dim: int = 4096,
                      seed: int = 0,
                      norm_stats: str = 'running',
                      on_failure: str = 'raise',
                      vjp_batch: int = 1) -> GradientConflict:
    """The Gradient Conflict Matrix of ``model`` on one batch.

    ``model(inputs)`` gives logits (N, C) or (N, C, *spatial); the loss of
    class c is ``loss_fn``'s per-sample (per-pixel) loss averaged over the
    class's samples (pixels). The arguments are those of
    :func:`~mmimb.analysis.class_gradients`.

    Example:
        >>> result = gradient_conflict(model, images, labels)
        >>> result.matrix          # (C, C) cosines, NaN for absent classes
        >>> result.summary()['conflict_fraction']
    """
    return conflict_matrix(
        class_gradients(
            model, (inputs, targets),
            loss_fn=loss_fn,
            classes=classes,
            layers=layers,
            mode=mode,
            num_classes=num_classes,
            ignore_index=ignore_index,
            align_corners=align_corners,
            statistic='gram',
            sketch_dim=sketch_dim,
            seed=seed,
            norm_stats=norm_stats,
            on_failure=on_failure,
            vjp_batch=vjp_batch))
