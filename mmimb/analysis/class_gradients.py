"""Class-specific gradients ``g_c = grad_theta L_c`` of a model's layers.

``L_c`` is the mean loss over the batch's samples (classification) or valid
pixels (segmentation) whose label is ``c`` (METHODS.md section 3). Three
modes compute it:

- ``'loop'``: one forward, then one ``autograd.grad`` of ``L_c`` per present
  class. The reference.
- ``'fast'``: one forward and one backward of ``sum_n w_n l_n`` with
  ``w_n = 1 / n_{y_n}``, so the output gradient of every layer holds every
  class's signal at once. Classification: sample ``n``'s loss depends only on
  sample ``n``'s activations (the model runs in eval mode, so BatchNorm uses
  its running statistics), hence the output gradient of a Linear or Conv
  layer on sample ``n`` comes from sample ``n``'s loss alone and grouping the
  per-sample weight gradients by label gives every ``g_c`` exactly.
  Segmentation: an output location of a spatial layer feeds the losses of
  many pixels of different classes, so per-pixel grouping is exact only for
  the classifier whose output is the logits (a 1x1 convolution commutes with
  the resize to label size: its class-``c`` gradient is the sum over the
  class's pixels of ``e_p (R a)_p^T``, with ``R a`` the resized classifier
  input). Every other layer gets its class gradients from one vector-Jacobian
  product per present class from the shared forward (exact; the cost of
  ``'loop'``).
- ``'sketch'``: ``'fast'``, then each layer's class gradients are replaced
  by a seeded CountSketch of ``sketch_dim`` entries (see
  :mod:`mmimb.analysis.sketch`), so that storing, accumulating over batches
  and all-reducing costs ``K x sketch_dim`` per layer.

All modes run the model in eval mode (BatchNorm with frozen statistics, no
dropout), with autocast disabled (fp32 under AMP), and restore each module's
mode afterwards; parameter ``.grad`` fields are never touched.
"""
import difflib
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .layer_gradients import (is_supported, per_sample_gradients,
                              per_sample_kernel, trainable_parameters)
from .sketch import count_sketch

MODES = ('fast', 'loop', 'sketch')
STATISTICS = ('grads', 'gram')
_RESIZE_MODES = {1: 'linear', 2: 'bilinear', 3: 'trilinear'}


@dataclass
class ClassGradients:
    """Per-class gradients of a set of layers, or their inner products.

    Args:
        classes: Class id of each row, shape (K,).
        counts: Samples (or pixels) of each class the gradients average
            over, shape (K,); 0 for a class absent from the batch.
        layers: Layer (module) names, in model order.
        grads: Layer name to the mean class gradients, shape (K, P), each
            row the flattened gradients of the layer's trainable weight and
            bias; rows of absent classes are NaN. None when only ``gram``
            was kept.
        gram: Layer name to the inner products ``<g_i, g_j>``, shape (K, K),
            float64, NaN in rows and columns of absent classes.
        sketch_dim: Entries per layer of the CountSketch that ``grads``
            holds, or None for exact gradients.
    """
    classes: Tensor
    counts: Tensor
    layers: List[str]
    grads: Optional[Dict[str, Tensor]] = None
    gram: Optional[Dict[str, Tensor]] = field(default=None, repr=False)
    sketch_dim: Optional[int] = None

    @property
    def present(self) -> Tensor:
        """Bool per row: the class has samples (pixels) in the batch."""
        return self.counts > 0

    def gram_matrices(self) -> Dict[str, Tensor]:
        """Layer name to the (K, K) Gram matrix of the class gradients."""
        if self.gram is not None:
            return self.gram
        return {name: gram_of(g, self.present) for name, g in
                self.grads.items()}

    def _require_grads(self, what: str) -> None:
        if self.grads is None:
            raise ValueError(
                f'{what} needs the class gradients, but these were computed '
                "with statistic='gram'; use statistic='grads'")

    def _sums(self) -> Dict[str, Tensor]:
        weight = self.counts.to(torch.float32)[:, None]
        return {
            name: torch.where(weight > 0, g * weight, torch.zeros_like(g))
            for name, g in self.grads.items()
        }

    def _from_sums(self, sums: Dict[str, Tensor],
                   counts: Tensor) -> 'ClassGradients':
        weight = counts.to(torch.float32)[:, None]
        # 0 / 0 is NaN: absent classes stay NaN, never zero.
        grads = {name: s / weight for name, s in sums.items()}
        return replace(self, counts=counts, grads=grads, gram=None)

    def merge(self, other: 'ClassGradients') -> 'ClassGradients':
        """Class gradients over the union of both batches: each class's
        loss averaged over all its samples (a count-weighted mean)."""
        self._require_grads('merge')
        other._require_grads('merge')
        if (not torch.equal(self.classes, other.classes)
                or self.layers != other.layers
                or self.sketch_dim != other.sketch_dim):
            raise ValueError('cannot merge class gradients of different '
                             'classes, layers or sketch sizes')
        a, b = self._sums(), other._sums()
        return self._from_sums({k: a[k] + b[k] for k in a},
                               self.counts + other.counts)

    def all_reduce(self, group=None) -> 'ClassGradients':
        """Class gradients over the union of all processes' batches.

        Sums of per-class gradients and the class counts are all-reduced
        before dividing, so the result equals the single-process one on the
        global batch. Without an initialised process group (or with one
        process) it returns ``self``.
        """
        import torch.distributed as dist
        if not (dist.is_available() and dist.is_initialized()) or \
                dist.get_world_size(group) == 1:
            return self
        self._require_grads('all_reduce')
        sums = self._sums()
        for tensor in sums.values():
            dist.all_reduce(tensor, group=group)
        counts = self.counts.clone()
        dist.all_reduce(counts, group=group)
        return self._from_sums(sums, counts)


def gram_of(grads: Tensor, present: Tensor) -> Tensor:
    """Symmetric (K, K) float64 Gram matrix of gradient rows, NaN in rows and
    columns of classes that are not present."""
    k = grads.shape[0]
    out = torch.full((k, k), float('nan'), dtype=torch.float64,
                     device=grads.device)
    idx = present.nonzero().squeeze(1)
    if idx.numel():
        g = grads[idx]
        inner = (g @ g.T).double()
        out[idx[:, None], idx[None, :]] = (inner + inner.T) / 2
    return out


class _Call:
    """One call of a recorded layer: its input and output, and what to do
    with the output gradient when the backward reaches it (``on_grad``;
    by default keep it)."""

    def __init__(self, inp: Tensor, out: Tensor):
        self.inp = inp
        self.out = out
        self.grad: Optional[Tensor] = None
        self.done = False
        self.on_grad: Optional[Callable[['_Call', Tensor], None]] = None
        self.grad_hook = None

    def release(self) -> None:
        """Drop the tensors and the output's gradient hook. The hook and
        ``out`` reference each other through autograd, a cycle Python's
        garbage collector cannot see: without this, every analysed batch's
        activations would stay in memory."""
        if self.grad_hook is not None:
            self.grad_hook.remove()
        self.inp = self.out = self.grad = self.on_grad = self.grad_hook = None

    def set_grad(self, grad: Tensor) -> None:
        self.done = True
        if self.on_grad is None:
            self.grad = grad.detach()
        else:
            self.on_grad(self, grad.detach())


class _Recorder:
    """Forward hooks that keep each call of the given layers."""

    def __init__(self, modules: Dict[str, nn.Module], capture_grads: bool):
        self.calls: Dict[str, List[_Call]] = {n: [] for n in modules}
        self._capture = capture_grads
        self._handles = [
            m.register_forward_hook(self._hook(n)) for n, m in modules.items()
        ]

    def _hook(self, name: str):

        def hook(module, args, output):
            if not args or not isinstance(args[0], Tensor) or \
                    not isinstance(output, Tensor):
                raise TypeError(
                    f'layer {name!r} ({type(module).__name__}) must take and '
                    'return one tensor to be analysed')
            call = _Call(args[0], output)
            self.calls[name].append(call)
            if self._capture and output.requires_grad:
                # A tensor hook registered now receives the gradient with
                # respect to this output even if a later in-place op (e.g.
                # ReLU(inplace=True)) modifies it.
                call.grad_hook = output.register_hook(call.set_grad)

        return hook

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()

    def release(self) -> None:
        """Remove the hooks and free every recorded call."""
        self.remove()
        for calls in self.calls.values():
            for call in calls:
                call.release()


class _EvalMode:
    """Put every module in eval mode and restore each one's own flag."""

    def __init__(self, model: nn.Module):
        self._flags = [(m, m.training) for m in model.modules()]
        self._model = model

    def __enter__(self):
        self._model.eval()

    def __exit__(self, *exc):
        for module, flag in self._flags:
            module.training = flag


def select_layers(model: nn.Module, layers: Optional[Sequence[str]],
                  mode: str) -> Tuple[Dict[str, nn.Module], set]:
    """Resolve ``layers`` to ``{name: module}`` in model order.

    ``None`` selects every Linear and Conv layer with trainable parameters.
    A name may be a layer or a container whose Linear and Conv descendants
    are taken. In ``'loop'`` mode a named module of another type that owns
    trainable parameters (e.g. a LayerNorm) is a layer too.

    Returns:
        The selected layers and the set of names given explicitly (these
        must be called by the forward).
    """
    named = dict(model.named_modules())

    def analysable(module):
        return is_supported(module) and trainable_parameters(module)

    if layers is None:
        return {n: m for n, m in named.items() if analysable(m)}, set()
    if isinstance(layers, str):
        layers = [layers]
    chosen, explicit = set(), set()
    for entry in layers:
        if entry not in named:
            close = difflib.get_close_matches(entry, list(named), n=3)
            hint = f'; did you mean {", ".join(map(repr, close))}?' \
                if close else ''
            raise ValueError(f'layers: the model has no module {entry!r}'
                             f'{hint}')
        module = named[entry]
        if analysable(module) or (mode == 'loop'
                                  and trainable_parameters(module)):
            chosen.add(entry)
            explicit.add(entry)
        elif trainable_parameters(module):
            raise ValueError(
                f"layers: {entry!r} is a {type(module).__name__}; mode "
                f"{mode!r} handles nn.Linear and nn.Conv1d/2d/3d only; use "
                "mode='loop' or leave it out")
        else:
            prefix = f'{entry}.' if entry else ''
            found = [n for n, m in named.items()
                     if n.startswith(prefix) and analysable(m)]
            if not found:
                raise ValueError(
                    f'layers: {entry!r} holds no nn.Linear or nn.Conv layer '
                    'with trainable parameters')
            chosen.update(found)
    return {n: m for n, m in named.items() if n in chosen}, explicit


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
                    seed: int = 0) -> ClassGradients:
    """Per-class gradients of ``model``'s layers on one batch.

    Args:
        model: ``model(inputs)`` returns logits, shape (N, C) or
            (N, C, *spatial); segmentation logits of another size than the
            targets are resized to it (bilinear, ``align_corners``) as
            MMSegmentation's decode heads do before their loss.
        batch: ``(inputs, targets)``; targets are class indices, shape (N,)
            or (N, *spatial).
        loss_fn: ``loss_fn(logits, targets, reduction='none')`` returns one
            loss per sample (pixel), each depending only on its own logits.
        classes: Class ids to compute, in row order; default all C.
        layers: Layer or container names (see :func:`select_layers`);
            default every Linear and Conv layer the forward calls.
        mode: ``'fast'``, ``'loop'`` or ``'sketch'`` (module docstring).
        num_classes: Expected number of logit channels (checked).
        ignore_index: Target value to exclude.
        align_corners: For the resize of segmentation logits.
        statistic: ``'grads'`` keeps the class gradients (needed to merge
            batches or all-reduce); ``'gram'`` keeps only their inner
            products, which for wide linear layers in ``'fast'`` mode are
            formed without the gradients.
        sketch_dim: Entries per layer in ``'sketch'`` mode.
        seed: Seed of the sketch's hash functions.

    Returns:
        ClassGradients: Rows in the order of ``classes``.
    """
    if mode not in MODES:
        raise ValueError(f'mode={mode!r}; expected one of {MODES}')
    if statistic not in STATISTICS:
        raise ValueError(f'statistic={statistic!r}; expected one of '
                         f'{STATISTICS}')
    inputs, targets = batch
    modules, explicit = select_layers(model, layers, mode)
    if not modules:
        raise ValueError('the model has no layer with trainable parameters '
                         'to analyse')
    by_samples = mode != 'loop' and targets.dim() == 1
    recorder = _Recorder(modules, capture_grads=by_samples)
    device_type = inputs.device.type if isinstance(inputs, Tensor) else 'cpu'
    try:
        with _EvalMode(model), torch.enable_grad(), torch.autocast(
                device_type=device_type, enabled=False):
            if isinstance(inputs, Tensor) and inputs.is_floating_point():
                # Grouping by samples runs the backward down to the inputs
                # (not the weights), which therefore require gradients.
                inputs = inputs.detach().float().requires_grad_(by_samples)
            logits = model(inputs)
            recorder.remove()
            # A sketch is taken of the class gradients, so keep them.
            result = _compute(inputs, logits, targets, loss_fn, classes,
                              modules, explicit, recorder.calls, mode,
                              num_classes, ignore_index, align_corners,
                              'grads' if mode == 'sketch' else statistic)
    finally:
        recorder.release()
    if mode == 'sketch':
        sketched = {name: count_sketch(g, sketch_dim, seed, name)
                    for name, g in result.grads.items()}
        result = replace(result, grads=sketched, sketch_dim=sketch_dim)
    if statistic == 'gram' and result.gram is None:
        result = replace(result, gram=result.gram_matrices(), grads=None)
    return result


def _compute(inputs, logits, targets, loss_fn, classes, modules, explicit,
             calls, mode, num_classes, ignore_index, align_corners,
             statistic) -> ClassGradients:
    channels = _check_targets(logits, targets, num_classes, ignore_index)
    uncalled = [n for n in modules if not calls[n]]
    missing = [n for n in uncalled if n in explicit]
    if missing:
        raise ValueError(
            f'layers {missing} are not called as modules by the forward '
            '(e.g. weights used functionally, as in '
            'nn.MultiheadAttention.out_proj), so they cannot be analysed')
    names = [n for n in modules if calls[n]]
    ids, row_of = _class_rows(classes, channels, targets.device)
    k = ids.numel()

    valid = torch.ones_like(targets, dtype=torch.bool) if ignore_index is \
        None else targets != ignore_index
    safe = torch.where(valid, targets, torch.zeros_like(targets))
    rows = torch.where(valid, row_of[safe], torch.full_like(safe, -1))
    counts = torch.bincount(rows[rows >= 0], minlength=k).to(torch.float64)
    weight = torch.where(rows >= 0,
                         1.0 / counts.clamp(min=1)[rows.clamp(min=0)],
                         torch.zeros((), dtype=torch.float64,
                                     device=targets.device)).float()

    dense = targets.dim() >= 2
    scores = logits
    if dense and logits.shape[2:] != targets.shape[1:]:
        scores = _resize(logits, targets.shape[1:], align_corners)
    losses = loss_fn(scores, safe, reduction='none')
    if not isinstance(losses, Tensor) or losses.shape != targets.shape:
        raise ValueError(
            'loss_fn(logits, targets, reduction="none") must return one '
            f'loss per target, shape {tuple(targets.shape)}; got '
            f'{getattr(losses, "shape", type(losses).__name__)}')
    params = {n: trainable_parameters(modules[n]) for n in names}
    present = counts > 0

    if mode == 'loop':
        grads = _loop(losses * weight, rows, present, names, params)
    elif not dense:
        grouping = _SampleGrouping(rows, counts, ids, names, modules, calls,
                                   params, statistic)
        return grouping.run((losses * weight).sum(), inputs)
    else:
        grads = _fast_pixels(logits, scores, losses * weight, rows, present,
                             names, modules, calls, params, align_corners)
    return ClassGradients(ids, counts, names, grads=grads)


def _flat(grads: Sequence[Optional[Tensor]],
          params: Sequence[nn.Parameter]) -> Tensor:
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(
        -1).float() for g, p in zip(grads, params)])


def _empty(k: int, names, params, device) -> Dict[str, Tensor]:
    return {
        n: torch.full((k, sum(p.numel() for p in params[n])), float('nan'),
                      device=device)
        for n in names
    }


def _backward_per_class(out: Dict[str, Tensor], names, params,
                        present: Tensor, vjp: Callable) -> None:
    """Fill row r of ``out[name]`` for each present row with one
    ``autograd.grad(*vjp(r))`` (output, grad_output) over the layers'
    parameters, from the shared forward."""
    flat_params = [p for n in names for p in params[n]]
    for r in present.nonzero().squeeze(1).tolist():
        output, grad_output = vjp(r)
        grads = torch.autograd.grad(
            output, flat_params, grad_outputs=grad_output,
            retain_graph=True, allow_unused=True)
        start = 0
        for n in names:
            end = start + len(params[n])
            out[n][r] = _flat(grads[start:end], params[n])
            start = end


def _loop(weighted: Tensor, rows: Tensor, present: Tensor, names,
          params) -> Dict[str, Tensor]:
    out = _empty(present.numel(), names, params, weighted.device)
    _backward_per_class(out, names, params, present,
                        lambda r: ((weighted * (rows == r)).sum(), None))
    return out


class _SampleGrouping:
    """``'fast'`` mode for sample classes: group each layer's per-sample
    weight gradients by class as its output gradient arrives in the
    backward, so that output gradients are never all held at once."""

    def __init__(self, rows: Tensor, counts: Tensor, ids: Tensor, names,
                 modules, calls, params, statistic: str):
        self.n = rows.shape[0]
        self.k = ids.numel()
        self.ids, self.counts = ids, counts
        self.present = counts > 0
        keep = (rows >= 0).nonzero().squeeze(1)
        # None: every sample counts, and indexing (a copy) is skipped.
        self.keep = None if keep.numel() == self.n else keep
        self.rows = rows if self.keep is None else rows[keep]
        self.names, self.modules, self.calls = names, modules, calls
        self.params, self.statistic = params, statistic
        self.acc: Dict[str, Tensor] = {}
        self.pending = {n: len(calls[n]) for n in names}
        self.grads: Dict[str, Tensor] = {}
        self.gram: Dict[str, Tensor] = {}
        for n in names:
            for call in calls[n]:
                self._check(n, call)
                call.on_grad = partial(self._take, n)

    def _check(self, name: str, call: _Call) -> None:
        for what, t in (('input', call.inp), ('output', call.out)):
            if t.shape[0] != self.n:
                raise ValueError(
                    f"mode 'fast' needs dimension 0 of every layer's {what} "
                    f'to be the sample; layer {name!r} has '
                    f'{tuple(t.shape)} for a batch of {self.n}: use '
                    "mode='loop' or leave the layer out")

    def _take(self, name: str, call: _Call, grad: Tensor) -> None:
        module = self.modules[name]
        a, d = call.inp.detach(), grad
        if self.keep is not None:
            a, d = a[self.keep], d[self.keep]
        if self.statistic == 'gram' and _kernel_is_cheaper(
                module, self.calls[name], self.k):
            kernel = per_sample_kernel(module, a.double(), d.double())
            onehot = F.one_hot(self.rows, self.k).to(kernel.dtype)
            inner = onehot.T @ kernel @ onehot
            gram = (inner + inner.T) / 2
            gram[~self.present] = float('nan')
            gram[:, ~self.present] = float('nan')
            self.gram[name] = gram
            return
        if name not in self.acc:
            size = sum(p.numel() for p in self.params[name])
            self.acc[name] = torch.zeros(self.k, size, device=grad.device)
        self.acc[name].index_add_(
            0, self.rows, per_sample_gradients(module, a.float(), d.float()))
        self.pending[name] -= 1
        if self.pending[name] == 0:
            self._close(name)

    def _close(self, name: str) -> None:
        acc = self.acc.pop(name, None)
        if acc is None:
            size = sum(p.numel() for p in self.params[name])
            acc = torch.zeros(self.k, size, device=self.ids.device)
        acc[~self.present] = float('nan')
        if self.statistic == 'gram':
            self.gram[name] = gram_of(acc, self.present)
        else:
            self.grads[name] = acc

    def run(self, total: Tensor, inputs) -> ClassGradients:
        # The backward runs down to the (float) inputs and to the weights of
        # layers whose input needs no gradient, passing every recorded
        # output on its way, and skips the other weight gradients.
        targets = {}
        if isinstance(inputs, Tensor) and inputs.requires_grad:
            targets[id(inputs)] = inputs
        for n in self.names:
            if any(not c.inp.requires_grad for c in self.calls[n]):
                targets.update((id(p), p) for p in self.params[n])
        if targets:
            torch.autograd.grad(total, list(targets.values()),
                                retain_graph=True, allow_unused=True)
        # Layers fed only by parameters are not on those paths.
        missed = {n for n in self.names for c in self.calls[n]
                  if not c.done and c.out.requires_grad}
        if missed:
            torch.autograd.grad(
                total, [p for n in self.names if n in missed
                        for p in self.params[n]], allow_unused=True)
        for n in self.names:
            if n not in self.gram and n not in self.grads:
                # Outputs the loss does not depend on: zero gradient.
                self._close(n)
        if self.statistic == 'gram':
            return ClassGradients(self.ids, self.counts, self.names,
                                  gram={n: self.gram[n] for n in self.names})
        return ClassGradients(self.ids, self.counts, self.names,
                              grads={n: self.grads[n] for n in self.names})


def _kernel_is_cheaper(module: nn.Module, calls: List[_Call], k: int) -> bool:
    """Whether the N x N per-sample kernel of a linear layer applied once to
    one vector per sample costs less than forming K class gradients."""
    if not isinstance(module, nn.Linear) or len(calls) != 1 or \
            calls[0].inp.dim() != 2:
        return False
    n = calls[0].inp.shape[0]
    return n * (module.in_features + module.out_features) < \
        module.in_features * module.out_features * (1 + k * k / max(n, 1))


def _pixel_classifier(module: nn.Module, call: _Call, logits: Tensor) -> bool:
    """Whether ``module`` is a 1x1 convolution whose output is the logits,
    the one layer whose class gradients come from grouping pixels."""
    return (isinstance(module, nn.modules.conv._ConvNd)
            and not module.transposed and call.out is logits
            and module.groups == 1
            and all(s == 1 for s in module.kernel_size)
            and all(s == 1 for s in module.stride)
            and (module.padding == 'valid' or module.padding == 'same'
                 or all(p == 0 for p in module.padding)))


def _fast_pixels(logits, scores, weighted, rows, present, names, modules,
                 calls, params, align_corners) -> Dict[str, Tensor]:
    (e, ) = torch.autograd.grad(weighted.sum(), scores, retain_graph=True)
    out = _empty(present.numel(), names, params, scores.device)
    head = [
        n for n in names if len(calls[n]) == 1
        and _pixel_classifier(modules[n], calls[n][0], logits)
    ]
    rest = [n for n in names if n not in head]
    for n in head:
        out[n] = _classifier_by_pixels(modules[n], calls[n][0].inp.detach(),
                                       e, rows, present, scores.shape[2:],
                                       align_corners)
    if rest:
        # The per-pixel loss gradient e restricted to class r's pixels is
        # the gradient of L_r with respect to the logits.
        _backward_per_class(
            out, rest, params, present,
            lambda r: (scores, e * (rows == r).unsqueeze(1).to(e.dtype)))
    return out


def _classifier_by_pixels(module, a, e, rows, present, size,
                          align_corners) -> Tensor:
    """Class gradients of the 1x1 classifier from per-pixel grouping.

    The resize R to label size is linear per channel and keeps constants, so
    ``R (W a + b) = W (R a) + b`` and the gradient of class c is
    ``sum over its pixels p of e_p (R a)_p^T`` (bias: ``sum e_p``), with
    ``e`` the loss gradient at label resolution.
    """
    k = present.numel()
    with_w = module.weight.requires_grad
    with_b = module.bias is not None and module.bias.requires_grad
    out = torch.zeros(k, sum(p.numel() for p in trainable_parameters(module)),
                      device=e.device)
    for i in range(a.shape[0]):
        ra = a[i:i + 1].float()
        if ra.shape[2:] != size:
            ra = _resize(ra, size, align_corners)
        ra = ra.flatten(2)[0]
        ei = e[i].flatten(1)
        ri = rows[i].flatten()
        for r in ri.unique().tolist():
            if r < 0:
                continue
            m = ri == r
            parts = []
            if with_w:
                parts.append((ei[:, m] @ ra[:, m].T).reshape(-1))
            if with_b:
                parts.append(ei[:, m].sum(1))
            out[r] += torch.cat(parts)
    out[~present] = float('nan')
    return out
