"""Class-specific gradients ``g_c = grad_theta L_c`` of a model's layers.

``L_c`` is the mean loss over the batch's samples (classification) or valid
pixels (segmentation) whose label is ``c`` (METHODS.md section 3). The
model runs in eval mode (no dropout; BatchNorm with its running statistics,
or with ``norm_stats='batch'`` with the batch's statistics, left
unchanged), with autocast disabled (fp32 under AMP); each module's mode is
restored afterwards and parameter ``.grad`` fields are never touched.

Modes:

- ``'loop'``: one forward, then one ``autograd.grad`` of ``L_c`` per present
  class. The reference; any layer.
- ``'fast'``, classification with independent samples: one backward of
  the summed loss, with hooks that keep each layer's input and output
  gradient. Sample ``n``'s loss depends only on sample ``n``'s activations,
  so the output gradient of a layer on sample ``n`` comes from sample
  ``n``'s loss alone, and grouping per-sample weight gradients by label
  gives every ``g_c``. Per-sample terms come from closed forms for exact
  layer types (:mod:`~mmimb.analysis.layer_gradients`), else from autograd
  through the module alone (one backward of that module per class:
  ``nn.MultiheadAttention``, parametrized or unknown leaf modules).
- ``'fast'``, segmentation (or samples coupled by batch statistics): one
  vector-Jacobian product per present class from the shared forward
  (``autograd.grad(scores, params, e * mask_c)``, exact for any layer; with
  ``vjp_batch > 1`` several classes per call with ``is_grads_batched``),
  except the classifier whose output is the logits: a 1x1 convolution
  commutes with the resize to label size, so its class gradients come from
  grouping pixels.
- ``'sketch'``: ``'fast'`` (or ``'loop'`` for what ``'fast'`` cannot do),
  with each layer's class gradients replaced by a seeded CountSketch of
  ``sketch_dim`` entries (:mod:`mmimb.analysis.sketch`) as soon as the layer
  is done, so that only one layer is ever held exactly.

Verification: every analysed layer is checked against one extra autograd
call. With random factors ``a_c = +-(1 + U[0, 1))`` (seeded, independent of
everything above) the combination ``sum_c a_c g_c`` must equal the layer's
gradient of ``sum_c a_c L_c``; with ``a_c = n_c / n`` this is the statement
that the count-weighted class gradients add up to the full-batch gradient,
and random factors also expose errors that equal class counts would cancel
(a layer whose dimension 0 is not the sample). A layer that fails is
refused with its name (``on_failure='raise'``) or left out and reported
(``'skip'``). The loss is checked the same way at the logits: each
sample's (pixel's) loss must depend on its own logits only.
"""
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .layer_gradients import (class_sums, kernel_gradient_sum,
                              per_sample_kernel)
from .layer_selection import CLOSED_FORM, Coverage, Layer, select_layers
from .sketch import count_sketch, sketch_hash

MODES = ('fast', 'loop', 'sketch')
STATISTICS = ('grads', 'gram')
NORM_STATS = ('running', 'batch')
ON_FAILURE = ('raise', 'skip')
# Largest relative error of the verification (and of the loss check) that
# float32 rounding explains; wrong groupings or rules give 1e-2 and more.
VERIFY_RTOL = 1e-4
_RESIZE_MODES = {1: 'linear', 2: 'bilinear', 3: 'trilinear'}


class LossError(ValueError):
    """The loss cannot give class gradients: it fails, returns no loss per
    element, or one element's loss depends on other elements' logits."""


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
        out = means.new_full((len(self.classes), means.shape[1]),
                             float('nan'))
        out[rows] = means
        return out

    def gram_matrices(self) -> Dict[str, Tensor]:
        """Layer name to the (K, K) Gram matrix of the mean class
        gradients."""
        if self.gram is not None:
            return self.gram
        return {name: _padded_gram(self._means(name), self.rows[name],
                                   len(self.classes))
                for name in self.layers}

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
            self, counts=self.counts + other.counts, layers=list(self.layers),
            sums={n: s.clone() for n, s in self.sums.items()},
            rows=dict(self.rows), sizes=dict(self.sizes),
            coverage=_merged_coverage(self.coverage, other.coverage))
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
        out = replace(self, counts=counts, layers=list(self.layers),
                      sums=dict(self.sums), rows=dict(self.rows),
                      coverage=_merged_coverage(self.coverage, None),
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


def _merged_coverage(a: Optional[Coverage],
                     b: Optional[Coverage]) -> Optional[Coverage]:
    if a is None:
        return None
    skipped = dict(a.skipped)
    if b is not None:
        skipped.update(b.skipped)
    return Coverage(a.analysed, a.total, skipped)


def _padded_gram(means: Tensor, rows: Tensor, k: int) -> Tensor:
    """Symmetric (K, K) float64 Gram matrix of the rows ``rows`` of a
    K-class table, NaN in the rows and columns of the other classes."""
    out = torch.full((k, k), float('nan'), dtype=torch.float64,
                     device=means.device)
    if rows.numel():
        inner = (means @ means.T).double()
        out[rows[:, None], rows[None, :]] = (inner + inner.T) / 2
    return out


class _Call:
    """One call of a recorded layer: what its gradient rule reads (``inp``),
    its outputs, and what to do with each output gradient when the backward
    reaches it (``on_grad``; by default keep it)."""

    def __init__(self, inp: Optional[Tensor], outs: List[Tensor],
                 error: Optional[str] = None, armed: Optional[list] = None):
        self.inp = inp
        # Gradients count only while armed[0]: other backward passes (the
        # verification's) must not reach on_grad or mark the call done.
        self.armed = armed or [True]
        self.version = inp._version if isinstance(inp, Tensor) else None
        self.outs = outs
        self.grads: List[Optional[Tensor]] = [None] * len(outs)
        self.error = error
        self.done = False
        self.on_grad: Optional[Callable[['_Call', Tensor], None]] = None
        self.grad_hooks = []

    @property
    def out(self) -> Optional[Tensor]:
        return self.outs[0] if self.outs else None

    def release(self) -> None:
        """Drop the tensors and the outputs' gradient hooks. A hook and its
        tensor reference each other through autograd, a cycle Python's
        garbage collector cannot see: without this, every analysed batch's
        activations would stay in memory."""
        for hook in self.grad_hooks:
            hook.remove()
        self.inp = self.on_grad = None
        self.outs, self.grads, self.grad_hooks = [], [], []

    def hook_outputs(self) -> None:
        for i, out in enumerate(self.outs):
            if out.requires_grad:
                # A tensor hook registered now receives the gradient with
                # respect to this output even if a later in-place op (e.g.
                # ReLU(inplace=True)) modifies it.
                self.grad_hooks.append(
                    out.register_hook(lambda g, i=i: self._set(i, g)))

    def _set(self, i: int, grad: Tensor) -> None:
        if not self.armed[0]:
            return
        self.done = True
        if self.on_grad is None:
            self.grads[i] = grad.detach()
        else:
            self.on_grad(self, grad.detach())


def _tensors(output) -> List[Tensor]:
    items = output if isinstance(output, (tuple, list)) else (output, )
    return [t for t in items if isinstance(t, Tensor)]


class _Recorder:
    """Forward hooks on the analysed layers.

    ``capture``: keep what per-sample grouping needs (the rule's input, the
    outputs and their gradients); a layer grouped by autograd through the
    module alone returns copies of its outputs, so that in-place ops after
    it leave the graph from its parameters to its real outputs intact.
    Otherwise only calls are counted, and the input and output of 1x1
    convolutions are kept (the segmentation classifier is one of them).
    """

    def __init__(self, layers: List[Layer], capture: bool):
        self.calls: Dict[str, List[_Call]] = {l.name: [] for l in layers}
        self._capture = capture
        self.armed = [False]
        self._handles = [
            l.module.register_forward_hook(self._hook(l), with_kwargs=True)
            for l in layers
        ]

    def _hook(self, layer: Layer):

        def hook(module, args, kwargs, output):
            if not self._capture:
                classifier = _is_1x1_conv(layer) and args and isinstance(
                    args[0], Tensor) and isinstance(output, Tensor)
                self.calls[layer.name].append(
                    _Call(args[0], [output]) if classifier else
                    _Call(None, []))
                return None
            if layer.grouping == CLOSED_FORM:
                inp = layer.rule.input(module, args)
                if not isinstance(inp, Tensor) or \
                        not isinstance(output, Tensor):
                    call = _Call(None, [], 'it does not take and return one '
                                 'tensor')
                else:
                    call = _Call(inp, [output], armed=self.armed)
                    call.hook_outputs()
                self.calls[layer.name].append(call)
                return None
            outs = _tensors(output)
            call = _Call(None, [t for t in outs if t.requires_grad],
                         armed=self.armed)
            call.hook_outputs()
            self.calls[layer.name].append(call)
            if isinstance(output, Tensor):
                return output.clone()
            if isinstance(output, (tuple, list)):
                return type(output)(
                    t.clone() if isinstance(t, Tensor) else t
                    for t in output)
            return None

        return hook

    def arm(self) -> None:
        """Let output gradients reach the calls from now on."""
        self.armed[0] = True

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()

    def release(self) -> None:
        """Remove the hooks and free every recorded call."""
        self.remove()
        for calls in self.calls.values():
            for call in calls:
                call.release()


def _is_1x1_conv(layer: Layer) -> bool:
    module = layer.module
    return (layer.grouping == CLOSED_FORM
            and isinstance(module, nn.modules.conv._ConvNd)
            and module.groups == 1
            and all(s == 1 for s in module.kernel_size)
            and all(s == 1 for s in module.stride)
            and (module.padding in ('valid', 'same')
                 or all(p == 0 for p in module.padding)))


def _batch_norms(model: nn.Module) -> List[nn.Module]:
    return [m for m in model.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm)]


class _AnalysisMode:
    """Eval mode for every module, restoring each one's own flag; with
    ``batch_stats``, the BatchNorm layers that were training normalise with
    the batch's statistics, without updating their running ones."""

    def __init__(self, model: nn.Module, batch_stats: bool):
        self._flags = [(m, m.training) for m in model.modules()]
        self._model = model
        self._batch = [m for m in _batch_norms(model)
                       if m.training] if batch_stats else []
        self._tracked = [(m, m.track_running_stats) for m in self._batch]

    def __enter__(self):
        self._model.eval()
        for module in self._batch:
            module.train()
            # With training=True and no statistics to track, _BatchNorm
            # uses the batch's statistics and passes no running buffers.
            module.track_running_stats = False

    def __exit__(self, *exc):
        for module, flag in self._tracked:
            module.track_running_stats = flag
        for module, flag in self._flags:
            module.training = flag


def _check_norm_stats(model: nn.Module, norm_stats: str) -> bool:
    """Whether the samples are coupled in the analysis (BatchNorm with batch
    statistics); refuses a synchronised BatchNorm with batch statistics
    across processes (its collectives would run once per class)."""
    norms = _batch_norms(model)
    if norm_stats == 'batch':
        import torch.distributed as dist
        sync = [m for m in norms if m.training and
                isinstance(m, nn.SyncBatchNorm)]
        if sync and dist.is_available() and dist.is_initialized() and \
                dist.get_world_size() > 1:
            raise ValueError(
                "norm_stats='batch' with SyncBatchNorm on several processes "
                'would synchronise statistics once per class; use '
                "norm_stats='running'")
        return any(m.training for m in norms)
    return any(m.running_mean is None for m in norms)


def _check_targets(logits: Tensor, targets: Tensor, num_classes: Optional[int],
                   ignore_index: Optional[int]) -> int:
    if not isinstance(logits, Tensor):
        raise TypeError(f'model(inputs) must return a logits tensor, got '
                        f'{type(logits).__name__}')
    if targets.is_floating_point() or targets.is_complex():
        raise TypeError(
            f'targets must hold integer class indices, got dtype '
            f'{targets.dtype} (soft targets such as Mixup/CutMix labels '
            'have no class to group by)')
    dense = targets.dim() >= 2
    if logits.dim() != targets.dim() + 1 or logits.shape[0] != \
            targets.shape[0] or (not dense and logits.dim() != 2):
        raise ValueError(
            f'logits of shape {tuple(logits.shape)} do not match targets of '
            f'shape {tuple(targets.shape)}: expected (N, C) with (N,) for '
            'classification or (N, C, *spatial) with (N, *spatial) for '
            'segmentation')
    channels = logits.shape[1]
    if num_classes is not None and num_classes != channels:
        raise ValueError(f'num_classes={num_classes} but the logits have '
                         f'{channels} channels')
    valid = targets if ignore_index is None else targets[targets !=
                                                          ignore_index]
    if valid.numel() and (valid.min() < 0 or valid.max() >= channels):
        bad = valid[(valid < 0) | (valid >= channels)][0].item()
        hint = '' if ignore_index is not None else \
            ' (pass ignore_index for a label to skip)'
        raise ValueError(f'targets hold class {bad}, outside [0, {channels})'
                         f'{hint}')
    return channels


def _class_rows(classes: Optional[Sequence[int]], num_classes: int,
                device) -> Tuple[Tensor, Tensor]:
    """The class id of each row and, per class id, its row (or -1)."""
    if classes is None:
        ids = torch.arange(num_classes, device=device)
    else:
        ids = torch.as_tensor(list(classes), dtype=torch.long, device=device)
        if ids.numel() == 0 or ids.unique().numel() != ids.numel() or \
                ids.min() < 0 or ids.max() >= num_classes:
            raise ValueError(f'classes={list(classes)} must be distinct ids '
                             f'in [0, {num_classes})')
    row_of = torch.full((num_classes, ), -1, dtype=torch.long, device=device)
    row_of[ids] = torch.arange(ids.numel(), device=device)
    return ids, row_of


def _resize(x: Tensor, size, align_corners: bool) -> Tensor:
    return F.interpolate(
        x, size=size, mode=_RESIZE_MODES[x.dim() - 2],
        align_corners=align_corners)


def _flat(grads: Sequence[Optional[Tensor]],
          params: Sequence[nn.Parameter]) -> Tensor:
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(
        -1).float() for g, p in zip(grads, params)])


@dataclass
class _Targets:
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


def _targets(targets: Tensor, ids: Tensor, row_of: Tensor,
             ignore_index: Optional[int],
             seed: int) -> Tuple[_Targets, Tensor]:
    """The engines' view of the labels, and the labels with ignored ones
    replaced by a valid class (their loss is computed, then not counted)."""
    valid = torch.ones_like(targets, dtype=torch.bool) if ignore_index is \
        None else targets != ignore_index
    safe = torch.where(valid, targets, torch.zeros_like(targets))
    rows = torch.where(valid, row_of[safe], torch.full_like(safe, -1))
    k = ids.numel()
    counts = torch.bincount(rows[rows >= 0], minlength=k).to(torch.float64)
    present = (counts > 0).nonzero().squeeze(1)
    local_of = torch.full((k + 1, ), -1, dtype=torch.long,
                          device=targets.device)
    local_of[present] = torch.arange(present.numel(), device=targets.device)
    local = local_of[rows]  # rows == -1 reads the last entry, -1
    gen = torch.Generator().manual_seed(seed + 7919)
    size = 1 + torch.rand(present.numel(), generator=gen, dtype=torch.float64)
    sign = torch.randint(0, 2, (present.numel(), ), generator=gen) * 2 - 1
    factors = (size * sign).to(targets.device)
    scale = torch.cat([factors / counts[present],
                       factors.new_zeros(1)])
    check = scale[local].float()
    return _Targets(ids, counts, present, local, factors, check), safe


def _relative_error(value: Tensor, reference: Tensor, scale: float) -> float:
    err = (value - reference).norm().item()
    if scale == 0:
        return 0.0 if err == 0 else float('inf')
    return err / scale


class _Failures:
    """Layers refused during one analysis, with the reason."""

    def __init__(self, on_failure: str, explicit: set):
        self.on_failure, self.explicit = on_failure, explicit
        self.reasons: Dict[str, str] = {}

    def refuse(self, name: str, reason: str) -> None:
        if self.on_failure == 'raise':
            raise ValueError(f'layer {name!r}: {reason}')
        self.reasons[name] = reason


class _Sink:
    """Receives each layer's class-gradient sums as soon as it is done:
    verifies them, then stores them (sketched, or as a Gram matrix) in the
    result, or adds them to an accumulator of earlier batches."""

    def __init__(self, result: ClassGradients, tg: _Targets,
                 totals: Dict[str, Optional[Tensor]], failures: _Failures,
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
        err = _relative_error(combination, total, scale)
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
            self.result.gram[name] = _padded_gram(means, rows,
                                                  self.tg.ids.numel())
        else:
            self.result._add(name, rows, sums)
        self.done.append(name)


def class_gradients(model: nn.Module,
                    batch: Tuple[Tensor, Tensor],
                    loss_fn: Callable = F.cross_entropy,
                    classes: Optional[Sequence[int]] = None,
                    layers: Optional[Sequence[str]] = None,
                    mode: str = 'fast',
                    num_classes: Optional[int] = None,
                    ignore_index: Optional[int] = None,
                    align_corners: bool = False,
                    statistic: str = 'grads',
                    sketch_dim: int = 4096,
                    seed: int = 0,
                    norm_stats: str = 'running',
                    on_failure: str = 'raise',
                    vjp_batch: int = 1,
                    accumulate: Optional[ClassGradients] = None
                    ) -> ClassGradients:
    """Per-class gradients of ``model``'s layers on one batch.

    Args:
        model: ``model(inputs)`` returns logits, shape (N, C) or
            (N, C, *spatial); segmentation logits of another size than the
            targets are resized to it (bilinear, ``align_corners``) as
            MMSegmentation's decode heads do before their loss.
        batch: ``(inputs, targets)``; targets are class indices, shape (N,)
            or (N, *spatial).
        loss_fn: ``loss_fn(logits, targets, reduction='none')`` returns one
            loss per sample (pixel), each depending only on its own logits
            (checked).
        classes: Class ids to compute, in row order; default all C.
        layers: Layer or container names (see
            :func:`~mmimb.analysis.layer_selection.select_layers`); default
            every layer with trainable parameters that the forward uses.
        mode: ``'fast'``, ``'loop'`` or ``'sketch'`` (module docstring).
        num_classes: Expected number of logit channels (checked).
        ignore_index: Target value to exclude.
        align_corners: For the resize of segmentation logits.
        statistic: ``'grads'`` keeps the class gradients (needed to merge
            batches or all-reduce); ``'gram'`` keeps only their inner
            products, which for wide linear layers in ``'fast'`` mode are
            formed without the gradients.
        sketch_dim: Entries per layer in ``'sketch'`` mode.
        seed: Seed of the sketch's hash functions and of the verification
            factors.
        norm_stats: ``'running'``: BatchNorm with its running statistics;
            ``'batch'``: the BatchNorm layers that are in training mode use
            the batch's statistics, as in a training step, without updating
            the running ones (samples are then coupled, so classification
            uses per-class vector-Jacobian products).
        on_failure: ``'raise'`` refuses a layer that cannot be analysed
            exactly with its name; ``'skip'`` leaves it out and reports it
            in ``coverage.skipped``.
        vjp_batch: Classes per vector-Jacobian product (``'fast'`` on
            segmentation): above 1, ``is_grads_batched`` computes several at
            once.
        accumulate: Class gradients of earlier batches (``statistic=
            'grads'``) to add this batch's to, layer by layer, so that only
            one layer of this batch is held at once; returned updated.

    Returns:
        ClassGradients: Rows in the order of ``classes``.

    Raises:
        ValueError: For bad input, a loss that is not per-sample, and with
            ``on_failure='raise'`` a layer that cannot be analysed exactly
            (naming it and why).
    """
    if mode not in MODES:
        raise ValueError(f'mode={mode!r}; expected one of {MODES}')
    if statistic not in STATISTICS:
        raise ValueError(f'statistic={statistic!r}; expected one of '
                         f'{STATISTICS}')
    if norm_stats not in NORM_STATS:
        raise ValueError(f'norm_stats={norm_stats!r}; expected one of '
                         f'{NORM_STATS}')
    if on_failure not in ON_FAILURE:
        raise ValueError(f'on_failure={on_failure!r}; expected one of '
                         f'{ON_FAILURE}')
    if mode == 'sketch' and sketch_dim < 1:
        raise ValueError(f'sketch_dim={sketch_dim}; expected a positive size')
    if not isinstance(vjp_batch, int) or vjp_batch < 1:
        raise ValueError(f'vjp_batch={vjp_batch!r}; expected a positive '
                         'integer')
    if accumulate is not None:
        accumulate._require_sums('accumulate')
        if statistic == 'gram':
            raise ValueError("accumulate needs statistic='grads'")
        if accumulate.sketch_dim != (sketch_dim if mode == 'sketch'
                                     else None):
            raise ValueError('accumulate holds class gradients of another '
                             'sketch size')
    inputs, targets = batch
    coupled = _check_norm_stats(model, norm_stats)
    grouping = mode != 'loop' and targets.dim() == 1 and not coupled
    selected, coverage, explicit = select_layers(model, layers, grouping)
    failures = _Failures(on_failure, explicit)
    for name in explicit & set(coverage.skipped):
        failures.refuse(name, coverage.skipped.pop(name))
    if not selected:
        raise ValueError('the model has no layer with trainable parameters '
                         'to analyse' + (f' ({coverage.describe()})'
                                         if coverage.skipped else ''))
    recorder = _Recorder(selected, capture=grouping)
    device_type = inputs.device.type if isinstance(inputs, Tensor) else 'cpu'
    try:
        with _AnalysisMode(model, norm_stats == 'batch'), \
                torch.enable_grad(), torch.autocast(
                    device_type=device_type, enabled=False):
            if isinstance(inputs, Tensor) and inputs.is_floating_point():
                # Grouping by samples runs the backward down to the inputs
                # (not the weights), which therefore require gradients.
                inputs = inputs.detach().float().requires_grad_(grouping)
            logits = model(inputs)
            recorder.remove()
            result = _compute(
                inputs, logits, targets, loss_fn, classes, selected,
                recorder, mode, grouping, num_classes, ignore_index,
                align_corners, statistic,
                sketch_dim if mode == 'sketch' else None, seed, failures,
                coverage, vjp_batch, accumulate)
    finally:
        recorder.release()
    return result


def _compute(inputs, logits, targets, loss_fn, classes, selected, recorder,
             mode, grouping, num_classes, ignore_index, align_corners,
             statistic, sketch_dim, seed, failures, coverage, vjp_batch,
             accumulate) -> ClassGradients:
    calls = recorder.calls
    channels = _check_targets(logits, targets, num_classes, ignore_index)
    ids, row_of = _class_rows(classes, channels, targets.device)
    if accumulate is not None and not torch.equal(accumulate.classes, ids):
        raise ValueError('accumulate holds class gradients of other classes')
    tg, safe = _targets(targets, ids, row_of, ignore_index, seed)
    dense = targets.dim() >= 2
    scores = logits
    if dense and logits.shape[2:] != targets.shape[1:]:
        scores = _resize(logits, targets.shape[1:], align_corners)
    try:
        losses = loss_fn(scores, safe, reduction='none')
    except (TypeError, ValueError, RuntimeError) as err:
        raise LossError(f'loss_fn(logits, targets, reduction="none") '
                        f'failed: {err}') from err
    if not isinstance(losses, Tensor) or losses.shape != targets.shape:
        raise LossError(
            'loss_fn(logits, targets, reduction="none") must return one '
            f'loss per target, shape {tuple(targets.shape)}; got '
            f'{getattr(losses, "shape", type(losses).__name__)}')
    counted = (tg.local >= 0).to(losses.dtype)
    total = (losses * counted).sum()
    checked = (losses * tg.check).sum()
    e = _check_loss(scores, total, checked, tg)

    by_name = {layer.name: layer for layer in selected}
    params = [p for layer in selected for p in layer.params]
    found = torch.autograd.grad(checked, params, retain_graph=True,
                                allow_unused=True)
    reached, totals, start = {}, {}, 0
    for layer in selected:
        part = found[start:start + len(layer.params)]
        start += len(layer.params)
        reached[layer.name] = any(g is not None for g in part)
        totals[layer.name] = _flat(part, layer.params) if reached[
            layer.name] else None
    del found

    names = []
    for layer in selected:
        called = bool(calls[layer.name])
        errors = [c.error for c in calls[layer.name] if c.error]
        if errors:
            failures.refuse(layer.name, errors[0])
        elif called or (not grouping and reached[layer.name]):
            names.append(layer.name)
        elif layer.name in failures.explicit:
            failures.refuse(
                layer.name, 'it is not called as a module by the forward '
                '(e.g. weights used functionally by another module), so '
                "its gradient cannot be grouped by sample; use mode='loop'")
        else:
            coverage.skipped[layer.name] = (
                'not called as a module by model(inputs); its parameters '
                'are used by another module' if reached[layer.name] else
                'not used by model(inputs)')
    if accumulate is not None:
        result = accumulate
        result.counts = result.counts + tg.counts
    else:
        result = ClassGradients(
            ids, tg.counts, [], sketch_dim=sketch_dim,
            gram={} if statistic == 'gram' else None)
    sink = _Sink(result, tg, totals, failures, statistic, sketch_dim, seed)
    chosen = [by_name[n] for n in names]
    if mode == 'loop':
        _per_class_autograd(
            chosen, sink, lambda r: ((losses * tg.mask(r, losses)).sum(),
                                     None), 1)
    elif grouping:
        grouping = _Grouping(tg, chosen, calls, sink, statistic)
        recorder.arm()
        grouping.run(total, inputs)
    else:
        _per_pixel(scores, logits, e, tg, chosen, calls, sink,
                   align_corners, vjp_batch)
    return _finish(result, sink, selected, coverage, failures, accumulate)


def _finish(result: ClassGradients, sink: _Sink, selected: List[Layer],
            coverage: Coverage, failures: _Failures,
            accumulate: Optional[ClassGradients]) -> ClassGradients:
    coverage.skipped.update(failures.reasons)
    done = [l.name for l in selected if l.name in set(sink.done)]
    if accumulate is None:
        result.layers = done
        result.sizes = {l.name: l.size for l in selected if l.name in done}
        coverage.analysed = sum(result.sizes.values())
        result.coverage = coverage
    else:
        result.coverage = _merged_coverage(result.coverage, coverage)
        for name in [n for n in result.layers if n not in done]:
            result._drop([name], coverage.skipped.get(
                name, 'not analysed in every batch'))
        for name in [n for n in done if n not in result.layers]:
            # New in this batch: its earlier batches are missing.
            result.sums.pop(name)
            result.rows.pop(name)
            result.coverage.skipped[name] = 'not analysed in every batch'
    if not result.layers:
        raise ValueError('no layer could be analysed: ' +
                         result.coverage.describe())
    return result


def _check_loss(scores: Tensor, total: Tensor, checked: Tensor,
                tg: _Targets) -> Tensor:
    """The loss gradient at the scores; refuses a loss in which one sample's
    (pixel's) loss depends on other samples' logits: then the gradient of
    ``sum(check * losses)`` is not ``check`` times that of the losses."""
    (e, ) = torch.autograd.grad(total, scores, retain_graph=True)
    (e_check, ) = torch.autograd.grad(checked, scores, retain_graph=True)
    check = tg.check.unsqueeze(1) if e.dim() > tg.check.dim() else tg.check
    expected = e * check
    scale = expected.norm().item() + e_check.norm().item()
    err = _relative_error(e_check, expected, scale)
    if err > VERIFY_RTOL:
        raise LossError(
            f'loss_fn is not per-sample: the loss of a sample (pixel) '
            f'depends on the logits of others (relative error {err:.2g}); '
            'the class gradients need a loss such as cross-entropy or '
            'focal loss, not Dice or Lovasz')
    return e


def _per_class_autograd(layers: List[Layer], sink: _Sink,
                        vjp: Callable[[int], tuple], batch: int) -> None:
    """Row r of every layer from ``autograd.grad(*vjp(r))`` (an output and
    its cotangent; several rows at once with ``is_grads_batched`` when
    ``batch > 1``), over the layers' parameters, from the shared forward."""
    if not layers:
        return
    tg = sink.tg
    flat_params = [p for layer in layers for p in layer.params]
    sketching = sink.sketch_dim is not None
    store = {}
    hashes = {}
    combos = {l.name: torch.zeros(l.size, device=l.params[0].device)
              for l in layers}
    scales = {l.name: 0.0 for l in layers}
    weights = (tg.factors / tg.counts[tg.present]).float()
    for layer in layers:
        width = min(layer.size, sink.sketch_dim) if sketching else layer.size
        store[layer.name] = torch.zeros(tg.r, width,
                                        device=layer.params[0].device)
        if sketching and layer.size > sink.sketch_dim:
            hashes[layer.name] = sketch_hash(layer.size, sink.sketch_dim,
                                             sink.seed, layer.name,
                                             layer.params[0].device)
    for first in range(0, tg.r, batch):
        chunk = list(range(first, min(first + batch, tg.r)))
        if batch == 1:
            output, cotangent = vjp(chunk[0])
            found = [torch.autograd.grad(
                output, flat_params, grad_outputs=cotangent,
                retain_graph=True, allow_unused=True)]
        else:
            outputs = [vjp(r) for r in chunk]
            cotangent = torch.stack([c for _, c in outputs])
            batched = torch.autograd.grad(
                outputs[0][0], flat_params, grad_outputs=cotangent,
                retain_graph=True, allow_unused=True, is_grads_batched=True)
            found = [[g[i] if g is not None else None for g in batched]
                     for i in range(len(chunk))]
        for r, grads in zip(chunk, found):
            start = 0
            for layer in layers:
                end = start + len(layer.params)
                row = _flat(grads[start:end], layer.params)
                start = end
                combos[layer.name] += weights[r] * row
                scales[layer.name] += abs(weights[r].item()) * \
                    row.norm().item()
                if layer.name in hashes:
                    row = count_sketch(row[None], sink.sketch_dim, sink.seed,
                                       layer.name, hashes[layer.name])[0]
                store[layer.name][r] = row
    for layer in layers:
        if sink.verify(layer.name, combos.pop(layer.name),
                       scales[layer.name]):
            sink.store(layer.name, store.pop(layer.name), sketched=True)


class _Grouping:
    """``'fast'`` mode for sample classes: group each layer's per-sample
    gradients by class as its output gradient arrives in the backward, so
    that output gradients are never all held at once. Layers without a
    closed form get their class sums from autograd through the module
    alone, one masked output gradient per class, after the backward."""

    def __init__(self, tg: _Targets, layers: List[Layer], calls, sink: _Sink,
                 statistic: str):
        self.tg = tg
        self.n = tg.local.shape[0]
        keep = (tg.local >= 0).nonzero().squeeze(1)
        # None: every sample counts, and indexing (a copy) is skipped.
        self.keep = None if keep.numel() == self.n else keep
        self.local = tg.local if self.keep is None else tg.local[keep]
        self.layers = {l.name: l for l in layers}
        self.calls, self.sink, self.statistic = calls, sink, statistic
        self.acc: Dict[str, Tensor] = {}
        self.pending = {l.name: len(calls[l.name]) for l in layers}
        self.failed = set()
        for layer in layers:
            for call in calls[layer.name]:
                if not self._shape_ok(layer, call):
                    break
                if layer.grouping == CLOSED_FORM:
                    call.on_grad = partial(self._take, layer.name)

    def _shape_ok(self, layer: Layer, call: _Call) -> bool:
        checks = [('input', call.inp, 0)] if call.inp is not None else []
        checks += [('output', t, layer.sample_dim if i == 0 else 0)
                   for i, t in enumerate(call.outs)]
        for what, t, dim in checks:
            if t.dim() <= dim or t.shape[dim] != self.n:
                self._fail(
                    layer.name, "mode 'fast' needs the sample in dimension "
                    f"{dim} of the layer's {what}, but it has shape "
                    f'{tuple(t.shape)} for a batch of {self.n}: use '
                    "mode='loop' or leave the layer out")
                return False
        return True

    def _fail(self, name: str, reason: str) -> None:
        self.failed.add(name)
        self.acc.pop(name, None)
        self.sink.failures.refuse(name, reason)

    def _take(self, name: str, call: _Call, grad: Tensor) -> None:
        if name in self.failed:
            return
        layer = self.layers[name]
        if call.inp._version != call.version:
            self._fail(name, 'its input was modified in place after the '
                       'call, so its gradient rule cannot read it')
            return
        a, d = call.inp.detach(), grad
        if self.keep is not None:
            a, d = a[self.keep], d[self.keep]
        if self.statistic == 'gram' and self.sink.sketch_dim is None and \
                _kernel_is_cheaper(layer, self.calls[name], self.tg.r):
            self._kernel_gram(layer, a, d)
            return
        self.acc[name] = class_sums(layer.module, layer.rule, a.float(),
                                    d.float(), self.local, self.tg.r,
                                    self.acc.get(name))
        self.pending[name] -= 1
        if self.pending[name] == 0:
            self.sink.add(name, self.acc.pop(name))

    def _kernel_gram(self, layer: Layer, a: Tensor, d: Tensor) -> None:
        tg = self.tg
        weights = (tg.factors / tg.counts[tg.present])[self.local]
        combination = kernel_gradient_sum(layer.module, a.float(), d.float(),
                                          weights.float())
        kernel = per_sample_kernel(layer.module, a.double(), d.double())
        onehot = F.one_hot(self.local, tg.r).to(kernel.dtype)
        counts = tg.counts[tg.present]
        inner = (onehot.T @ kernel @ onehot) / (counts[:, None] *
                                                 counts[None, :])
        norms = inner.diagonal().clamp(min=0).sqrt() * counts
        scale = (tg.factors.abs() / counts * norms).sum().item()
        if self.sink.verify(layer.name, combination, scale):
            gram = torch.full((tg.ids.numel(), ) * 2, float('nan'),
                              dtype=torch.float64, device=inner.device)
            rows = tg.present
            gram[rows[:, None], rows[None, :]] = (inner + inner.T) / 2
            self.sink.result.gram[layer.name] = gram
            self.sink.done.append(layer.name)
        self.pending[layer.name] = 0

    def _local(self, layer: Layer) -> None:
        """Class sums of a layer from autograd through the module alone:
        for class r, the output gradients restricted to r's samples."""
        acc = torch.zeros(self.tg.r, layer.size, device=layer.params[0].device)
        for call in self.calls[layer.name]:
            pairs = [(o, g, layer.sample_dim if i == 0 else 0)
                     for i, (o, g) in enumerate(zip(call.outs, call.grads))
                     if g is not None]
            if not pairs:
                continue
            for r in range(self.tg.r):
                m = (self.tg.local == r)
                cotangents = [
                    g * m.to(g.dtype).reshape(
                        [-1 if j == dim else 1 for j in range(g.dim())])
                    for _, g, dim in pairs
                ]
                grads = torch.autograd.grad(
                    [o for o, _, _ in pairs], layer.params, cotangents,
                    retain_graph=True, allow_unused=True)
                acc[r] += _flat(grads, layer.params)
        self.sink.add(layer.name, acc)

    def run(self, total: Tensor, inputs) -> None:
        # The backward runs down to the (float) inputs and to the weights of
        # layers whose input needs no gradient, passing every recorded
        # output on its way, and skips the other weight gradients.
        targets = {}
        if isinstance(inputs, Tensor) and inputs.requires_grad:
            targets[id(inputs)] = inputs
        for name, layer in self.layers.items():
            if any(c.inp is not None and not c.inp.requires_grad
                   for c in self.calls[name]) or \
                    layer.grouping != CLOSED_FORM:
                targets.update((id(p), p) for p in layer.params)
        if targets:
            torch.autograd.grad(total, list(targets.values()),
                                retain_graph=True, allow_unused=True)
        # Layers fed only by parameters are not on those paths.
        missed = [l for n, l in self.layers.items()
                  if any(not c.done and any(o.requires_grad for o in c.outs)
                         for c in self.calls[n])]
        if missed:
            torch.autograd.grad(total, [p for l in missed for p in l.params],
                                retain_graph=True, allow_unused=True)
        for name, layer in self.layers.items():
            if name in self.failed or name in self.sink.done or \
                    name in self.sink.failures.reasons:
                continue
            if layer.grouping != CLOSED_FORM:
                self._local(layer)
            else:
                # Outputs the loss does not depend on: zero gradient.
                self.sink.add(name, self.acc.pop(name, torch.zeros(
                    self.tg.r, layer.size, device=layer.params[0].device)))


def _kernel_is_cheaper(layer: Layer, calls: List[_Call], r: int) -> bool:
    """Whether the N x N per-sample kernel of a linear layer applied once to
    one vector per sample costs less than forming R class gradients."""
    module = layer.module
    if not isinstance(module, nn.Linear) or len(calls) != 1 or \
            calls[0].inp.dim() != 2:
        return False
    n = calls[0].inp.shape[0]
    return n * (module.in_features + module.out_features) < \
        module.in_features * module.out_features * (1 + r * r / max(n, 1))


def _per_pixel(scores, logits, e, tg, layers, calls, sink, align_corners,
               vjp_batch) -> None:
    """Segmentation (or coupled samples): the classifier by grouping pixels,
    every other layer by one vector-Jacobian product per class."""
    head = [
        l for l in layers if len(calls[l.name]) == 1
        and calls[l.name][0].out is logits and _is_1x1_conv(l)
    ]
    for layer in head:
        sink.add(layer.name, _classifier_by_pixels(
            layer.module, calls[layer.name][0].inp.detach(), e, tg,
            scores.shape[2:], align_corners))
    rest = [l for l in layers if l not in head]
    # The per-pixel loss gradient e restricted to class r's pixels is the
    # gradient of its loss sum with respect to the logits.
    _per_class_autograd(rest, sink, lambda r: (scores, e * tg.mask(r, e)),
                        vjp_batch)


def _classifier_by_pixels(module, a, e, tg, size, align_corners) -> Tensor:
    """Class-gradient sums of the 1x1 classifier from per-pixel grouping.

    The resize R to label size is linear per channel and keeps constants, so
    ``R (W a + b) = W (R a) + b`` and the gradient of class c is
    ``sum over its pixels p of e_p (R a)_p^T`` (bias: ``sum e_p``), with
    ``e`` the loss gradient at label resolution.
    """
    with_w = module.weight.requires_grad
    with_b = module.bias is not None and module.bias.requires_grad
    size_p = (module.weight.numel() if with_w else 0) + \
        (module.bias.numel() if with_b else 0)
    out = torch.zeros(tg.r, size_p, device=e.device)
    for i in range(a.shape[0]):
        ra = a[i:i + 1].float()
        if ra.shape[2:] != size:
            ra = _resize(ra, size, align_corners)
        ra = ra.flatten(2)[0]
        ei = e[i].flatten(1)
        li = tg.local[i].flatten()
        for r in li.unique().tolist():
            if r < 0:
                continue
            m = li == r
            parts = []
            if with_w:
                parts.append((ei[:, m] @ ra[:, m].T).reshape(-1))
            if with_b:
                parts.append(ei[:, m].sum(1))
            out[r] += torch.cat(parts)
    return out

