"""Class-gradient sums, and the check every analysed layer passes before
they are stored.

:class:`ClassGradients` holds, per layer, the sums of the per-class
gradients over the samples (pixels) of the classes present, so that batches
and processes are added exactly. :class:`Sink` receives a layer's sums from
an engine (:mod:`mmimb.analysis.engines`) as soon as the layer is done,
verifies them against an independent autograd gradient
(:mod:`mmimb.analysis.class_gradients` describes the check), and stores
them exactly, CountSketched, or as a Gram matrix.
"""
from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from .layer_selection import Coverage
from .sketch import count_sketch

# Largest relative error of the verification (and of the loss check) that
# float32 rounding explains; wrong groupings or rules give 1e-2 and more.
VERIFY_RTOL = 1e-4


@dataclass
class ClassGradients:
    """Per-class gradient sums of a set of layers, or their inner products.

    Args:
        classes: Class id of each row, shape (K,).
        counts: Samples (or pixels) of each class, shape (K,), float64; 0
            for a class absent from the batch.
        layers: Layer (module) names, in model order.
        sums: Layer name to the class-gradient sums over the samples of the
            classes present, shape (R, P), each row the flattened gradients
            of the layer's parameters (CountSketched if ``sketch_dim``).
        rows: Layer name to the rows of ``sums``: indices into ``classes``,
            ascending, shape (R,).
        gram: Layer name to the inner products ``<g_i, g_j>`` of the mean
            class gradients, shape (K, K), float64, NaN in rows and columns
            of absent classes; set instead of ``sums`` by
            ``statistic='gram'``.
        sketch_dim: Entries per layer of the CountSketch that ``sums``
            holds, or None for exact gradients.
        coverage: What was analysed and what was skipped.
        sizes: Layer name to its number of parameters.
    """
    classes: Tensor
    counts: Tensor
    layers: List[str]
    sums: Dict[str, Tensor] = field(default_factory=dict, repr=False)
    rows: Dict[str, Tensor] = field(default_factory=dict, repr=False)
    gram: Optional[Dict[str, Tensor]] = field(default=None, repr=False)
    sketch_dim: Optional[int] = None
    coverage: Optional[Coverage] = None
    sizes: Dict[str, int] = field(default_factory=dict, repr=False)

    @property
    def present(self) -> Tensor:
        """Bool per row: the class has samples (pixels) in the batch."""
        return self.counts > 0

    @property
    def grads(self) -> Optional[Dict[str, Tensor]]:
        """Layer name to the mean class gradients, shape (K, P), rows of
        absent classes NaN (allocated on each access); None when only the
        Gram matrices were kept."""
        if self.gram is not None:
            return None
        return {name: self._means(name, padded=True) for name in self.layers}

    def _means(self, name: str, padded: bool = False) -> Tensor:
        sums, rows = self.sums[name], self.rows[name]
        means = sums / self.counts[rows].to(sums.dtype)[:, None]
        if not padded:
            return means
        out = means.new_full((len(self.classes), means.shape[1]), float('nan'))
        out[rows] = means
        return out

    def gram_matrices(self) -> Dict[str, Tensor]:
        """Layer name to the (K, K) Gram matrix of the mean class
        gradients."""
        if self.gram is not None:
            return self.gram
        return {
            name:
            padded_gram(self._means(name), self.rows[name], len(self.classes))
            for name in self.layers
        }

    def _require_sums(self, what: str) -> None:
        if self.gram is not None:
            raise ValueError(
                f'{what} needs the class gradients, but these were computed '
                "with statistic='gram'; use statistic='grads'")

    def _add(self, name: str, rows: Tensor, sums: Tensor) -> None:
        """Add one batch's sums of a layer, rows with other classes
        included."""
        if name not in self.sums:
            self.sums[name], self.rows[name] = sums, rows
            return
        old_rows, old = self.rows[name], self.sums[name]
        if torch.equal(old_rows, rows):
            old.add_(sums)
            return
        union = torch.unique(torch.cat([old_rows, rows]))
        out = old.new_zeros(len(union), old.shape[1])
        out[torch.searchsorted(union, old_rows)] = old
        out.index_add_(0, torch.searchsorted(union, rows), sums)
        self.sums[name], self.rows[name] = out, union

    def _drop(self, names: Sequence[str], reason: str) -> None:
        for name in names:
            self.sums.pop(name, None)
            self.rows.pop(name, None)
            if self.gram is not None:
                self.gram.pop(name, None)
            if self.coverage is not None:
                self.coverage.analysed -= self.sizes.get(name, 0)
                self.coverage.skipped[name] = reason
        self.layers = [n for n in self.layers if n not in names]

    def merge(self, other: 'ClassGradients') -> 'ClassGradients':
        """Class gradients over the union of both batches: each class's
        loss averaged over all its samples (a count-weighted mean). Layers
        analysed in only one of them are left out."""
        self._require_sums('merge')
        other._require_sums('merge')
        if (not torch.equal(self.classes, other.classes)
                or self.sketch_dim != other.sketch_dim):
            raise ValueError('cannot merge class gradients of different '
                             'classes or sketch sizes')
        out = replace(
            self,
            counts=self.counts + other.counts,
            layers=list(self.layers),
            sums={
                n: s.clone()
                for n, s in self.sums.items()
            },
            rows=dict(self.rows),
            sizes=dict(self.sizes),
            coverage=merged_coverage(self.coverage, other.coverage))
        for name in out.layers:
            if name in other.sums:
                out._add(name, other.rows[name], other.sums[name])
        out._drop([n for n in out.layers if n not in other.layers],
                  'not analysed in every batch')
        return out

    def all_reduce(self, group=None) -> 'ClassGradients':
        """Class gradients over the union of all processes' batches.

        Sums of per-class gradients and the class counts are all-reduced
        one layer at a time, so the result equals the single-process one on
        the global batch and only one layer is copied at once. Layers
        analysed on some processes only are left out on all of them.
        Without an initialised process group (or with one process) it
        returns ``self``.
        """
        import torch.distributed as dist
        if not (dist.is_available() and dist.is_initialized()) or \
                dist.get_world_size(group) == 1:
            return self
        self._require_sums('all_reduce')
        everyone = [None] * dist.get_world_size(group)
        dist.all_gather_object(everyone, self.layers, group=group)
        common = [n for n in self.layers if all(n in e for e in everyone)]
        counts = self.counts.clone()
        dist.all_reduce(counts, group=group)
        rows = (counts > 0).nonzero().squeeze(1)
        out = replace(
            self,
            counts=counts,
            layers=list(self.layers),
            sums=dict(self.sums),
            rows=dict(self.rows),
            coverage=merged_coverage(self.coverage, None),
            sizes=dict(self.sizes))
        out._drop([n for n in self.layers if n not in common],
                  'not analysed on every process')
        for name in common:
            local = self.sums[name]
            total = local.new_zeros(len(rows), local.shape[1])
            total[torch.searchsorted(rows, self.rows[name])] = local
            dist.all_reduce(total, group=group)
            out.sums[name], out.rows[name] = total, rows
        return out


def merged_coverage(a: Optional[Coverage],
                    b: Optional[Coverage]) -> Optional[Coverage]:
    if a is None:
        return None
    skipped = dict(a.skipped)
    if b is not None:
        skipped.update(b.skipped)
    return Coverage(a.analysed, a.total, skipped)


def padded_gram(means: Tensor, rows: Tensor, k: int) -> Tensor:
    """Symmetric (K, K) float64 Gram matrix of the rows ``rows`` of a
    K-class table, NaN in the rows and columns of the other classes."""
    out = torch.full((k, k),
                     float('nan'),
                     dtype=torch.float64,
                     device=means.device)
    if rows.numel():
        inner = (means @ means.T).double()
        out[rows[:, None], rows[None, :]] = (inner + inner.T) / 2
    return out


def flat_gradients(grads: Sequence[Optional[Tensor]],
                   params: Sequence[nn.Parameter]) -> Tensor:
    return torch.cat([
        (g if g is not None else torch.zeros_like(p)).reshape(-1).float()
        for g, p in zip(grads, params)
    ])


@dataclass
class BatchTargets:
    """The batch's labels as the engines use them.

    ``present``: present rows (indices into ``ids``), shape (R,);
    ``local``: per element, its index into ``present`` or -1 (ignored, or a
    class not analysed); ``factors``: the verification factors of the
    present rows, shape (R,); ``check``: per element, its factor divided by
    its class count, so that ``sum(check * losses)`` is
    ``sum_r factors[r] L_r``.
    """
    ids: Tensor
    counts: Tensor
    present: Tensor
    local: Tensor
    factors: Tensor
    check: Tensor

    @property
    def r(self) -> int:
        return self.present.numel()

    def mask(self, r: int, like: Tensor) -> Tensor:
        """Elements of present row ``r``, broadcastable to ``like`` (whose
        dimension 1 is the class channel, for logits)."""
        m = (self.local == r).to(like.dtype)
        return m.unsqueeze(1) if like.dim() > m.dim() else m


def batch_targets(targets: Tensor, ids: Tensor, row_of: Tensor,
                  ignore_index: Optional[int],
                  seed: int) -> Tuple[BatchTargets, Tensor]:
    """The engines' view of the labels, and the labels with ignored ones
    replaced by a valid class (their loss is computed, then not counted)."""
    valid = torch.ones_like(targets, dtype=torch.bool) if ignore_index is \
        None else targets != ignore_index
    safe = torch.where(valid, targets, torch.zeros_like(targets))
    rows = torch.where(valid, row_of[safe], torch.full_like(safe, -1))
    k = ids.numel()
    counts = torch.bincount(rows[rows >= 0], minlength=k).to(torch.float64)
    present = (counts > 0).nonzero().squeeze(1)
    local_of = torch.full((k + 1, ),
                          -1,
                          dtype=torch.long,
                          device=targets.device)
    local_of[present] = torch.arange(present.numel(), device=targets.device)
    local = local_of[rows]  # rows == -1 reads the last entry, -1
    gen = torch.Generator().manual_seed(seed + 7919)
    size = 1 + torch.rand(present.numel(), generator=gen, dtype=torch.float64)
    sign = torch.randint(0, 2, (present.numel(), ), generator=gen) * 2 - 1
    factors = (size * sign).to(targets.device)
    scale = torch.cat([factors / counts[present], factors.new_zeros(1)])
    check = scale[local].float()
    return BatchTargets(ids, counts, present, local, factors, check), safe


def relative_error(value: Tensor, reference: Tensor, scale: float) -> float:
    err = (value - reference).norm().item()
    if scale == 0:
        return 0.0 if err == 0 else float('inf')
    return err / scale


class Failures:
    """Layers refused during one analysis, with the reason."""

    def __init__(self, on_failure: str, explicit: set):
        self.on_failure, self.explicit = on_failure, explicit
        self.reasons: Dict[str, str] = {}

    def refuse(self, name: str, reason: str) -> None:
        if self.on_failure == 'raise':
            raise ValueError(f'layer {name!r}: {reason}')
        self.reasons[name] = reason


class Sink:
    """Receives each layer's class-gradient sums as soon as it is done:
    verifies them, then stores them (sketched, or as a Gram matrix) in the
    result, or adds them to an accumulator of earlier batches."""

    def __init__(self, result: ClassGradients, tg: BatchTargets,
                 totals: Dict[str, Optional[Tensor]], failures: Failures,
                 statistic: str, sketch_dim: Optional[int], seed: int):
        self.result, self.tg, self.totals = result, tg, totals
        self.failures = failures
        self.statistic, self.sketch_dim, self.seed = (statistic, sketch_dim,
                                                      seed)
        self.done: List[str] = []

    def verify(self, name: str, combination: Tensor, scale: float) -> bool:
        """Compare ``sum_r factors[r] g_r`` with the autograd gradient."""
        total = self.totals.get(name)
        if total is None:
            total = torch.zeros_like(combination)
        err = relative_error(combination, total, scale)
        if err > VERIFY_RTOL:
            self.failures.refuse(
                name, 'its class gradients do not add up to its gradient '
                f'(relative error {err:.2g}): its dimension 0 (or the '
                'module\'s sample dimension) is not the sample, samples are '
                'coupled, or its forward differs from its type\'s rule; '
                "use mode='loop' or leave it out")
            return False
        return True

    def add(self, name: str, sums: Tensor) -> None:
        """Verify and store the (R, P) sums of one layer."""
        weights = (self.tg.factors / self.tg.counts[self.tg.present]).to(
            sums.dtype)
        combination = weights @ sums
        scale = (weights.abs() * sums.norm(dim=1)).sum().item()
        if self.verify(name, combination, scale):
            self.store(name, sums)

    def store(self, name: str, sums: Tensor, sketched: bool = False) -> None:
        rows = self.tg.present
        if self.sketch_dim is not None and not sketched:
            sums = count_sketch(sums, self.sketch_dim, self.seed, name)
        if self.statistic == 'gram':
            means = sums / self.tg.counts[rows].to(sums.dtype)[:, None]
            self.result.gram[name] = padded_gram(means, rows,
                                                 self.tg.ids.numel())
        else:
            self.result._add(name, rows, sums)
        self.done.append(name)
