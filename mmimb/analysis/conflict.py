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

    def summary(self) -> Dict[str, float]:
        """Whole-model ``mean_cosine``, ``mean_negative_cosine`` and
        ``conflict_fraction``."""
        return summarize(self.matrix)

    def layer_summary(self) -> Dict[str, Dict[str, float]]:
        """The summary of each layer's matrix."""
        return {name: summarize(cos) for name, cos in self.per_layer.items()}

    def to_npz(self, path: str, class_names: Optional[Sequence[str]] = None,
               **extra) -> None:
        """Save everything as one ``.npz`` (written to a temporary file and
        renamed, so a reader never sees half a file).

        ``extra`` entries (e.g. ``iteration``) are stored as arrays.
        """
        names = self.layers
        arrays = dict(
            matrix=self.matrix.cpu().numpy(),
            gram=self.gram.cpu().numpy(),
            layer_names=np.array(names, dtype=str),
            per_layer=np.stack([self.per_layer[n].cpu().numpy()
                                for n in names]),
            norms=np.stack([self.norms[n].cpu().numpy() for n in names]),
            present=self.present.cpu().numpy(),
            counts=self.counts.cpu().numpy(),
            classes=self.classes.cpu().numpy(),
            class_conflict=self.class_conflict.cpu().numpy(),
            sketch_dim=np.array(self.sketch_dim or 0),
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
        sketch_dim=class_grads.sketch_dim)


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
                      seed: int = 0) -> GradientConflict:
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
            seed=seed))
