"""The engines that compute class-gradient sums layer by layer:

- :class:`SampleGrouping` (classification with independent samples): per-
  sample terms grouped by class as each layer's output gradient arrives in
  one backward (closed forms), or autograd through the module alone;
- :func:`per_class_autograd`: one vector-Jacobian product per class from the
  shared forward (the loop, segmentation, coupled samples);
- :func:`per_pixel`: segmentation, with the classifier by grouping pixels.
"""
from functools import partial
from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .gradient_store import BatchTargets, Sink, flat_gradients
from .layer_gradients import (class_sums, kernel_gradient_sum,
                              per_sample_kernel)
from .layer_selection import CLOSED_FORM, Layer
from .recording import LayerCall, is_1x1_conv
from .sketch import count_sketch, sketch_hash

_RESIZE_MODES = {1: 'linear', 2: 'bilinear', 3: 'trilinear'}


def resize(x: Tensor, size, align_corners: bool) -> Tensor:
    return F.interpolate(
        x,
        size=size,
        mode=_RESIZE_MODES[x.dim() - 2],
        align_corners=align_corners)


def _write_row(out: Tensor, grads: Sequence[Optional[Tensor]],
               params: Sequence[nn.Parameter]) -> None:
    """Flatten one row of parameter gradients into ``out``; a parameter
    that does not reach the output (None) has gradient zero."""
    start = 0
    for g, p in zip(grads, params):
        end = start + p.numel()
        if g is None:
            out[start:end] = 0
        else:
            out[start:end] = g.reshape(-1)
        start = end


def per_class_autograd(layers: List[Layer], sink: Sink,
                       vjp: Callable[[int], tuple], batch: int) -> None:
    """Row r of every layer from ``autograd.grad(*vjp(r))`` (an output and
    its cotangent; several rows at once with ``is_grads_batched`` when
    ``batch > 1``), over the layers' parameters, from the shared forward.
    Layers larger than the sketch are sketched row by row, so that only
    one row of them is held exactly."""
    if not layers:
        return
    tg = sink.tg
    flat_params = [p for layer in layers for p in layer.params]
    sketched = {
        layer.name
        for layer in layers
        if sink.sketch_dim is not None and layer.size > sink.sketch_dim
    }
    weights = (tg.factors / tg.counts[tg.present]).float()
    store, hashes, combos, scales, rows = {}, {}, {}, {}, {}
    for layer in layers:
        device = layer.params[0].device
        if layer.name in sketched:
            store[layer.name] = torch.empty(
                tg.r, sink.sketch_dim, device=device)
            hashes[layer.name] = sketch_hash(layer.size, sink.sketch_dim,
                                             sink.seed, layer.name, device)
            combos[layer.name] = torch.zeros(layer.size, device=device)
            scales[layer.name] = 0.0
            rows[layer.name] = torch.empty(layer.size, device=device)
        else:
            store[layer.name] = torch.empty(tg.r, layer.size, device=device)
    for first in range(0, tg.r, batch):
        chunk = list(range(first, min(first + batch, tg.r)))
        if batch == 1:
            output, cotangent = vjp(chunk[0])
            found = [
                torch.autograd.grad(
                    output,
                    flat_params,
                    grad_outputs=cotangent,
                    retain_graph=True,
                    allow_unused=True)
            ]
        else:
            outputs = [vjp(r) for r in chunk]
            cotangent = torch.stack([c for _, c in outputs])
            batched = torch.autograd.grad(
                outputs[0][0],
                flat_params,
                grad_outputs=cotangent,
                retain_graph=True,
                allow_unused=True,
                is_grads_batched=True)
            found = [[g[i] if g is not None else None for g in batched]
                     for i in range(len(chunk))]
        for r, grads in zip(chunk, found):
            start = 0
            for layer in layers:
                part = grads[start:start + len(layer.params)]
                start += len(layer.params)
                if layer.name not in sketched:
                    _write_row(store[layer.name][r], part, layer.params)
                    continue
                row = rows[layer.name]
                _write_row(row, part, layer.params)
                combos[layer.name] += weights[r] * row
                scales[layer.name] += abs(weights[r].item()) * \
                    row.norm().item()
                store[layer.name][r] = count_sketch(row[None], sink.sketch_dim,
                                                    sink.seed, layer.name,
                                                    hashes[layer.name])[0]
    for layer in layers:
        sums = store.pop(layer.name)
        if layer.name in sketched:
            combination, scale = combos.pop(layer.name), scales[layer.name]
        else:
            combination = weights @ sums
            scale = (weights.abs() * sums.norm(dim=1)).sum().item()
        if sink.verify(layer.name, combination, scale):
            sink.store(layer.name, sums, sketched=True)


class SampleGrouping:
    """``'fast'`` mode for sample classes: group each layer's per-sample
    gradients by class as its output gradient arrives in the backward, so
    that output gradients are never all held at once. Layers without a
    closed form get their class sums from autograd through the module
    alone, one masked output gradient per class, after the backward."""

    def __init__(self, tg: BatchTargets, layers: List[Layer], calls,
                 sink: Sink, statistic: str):
        self.tg = tg
        self.n = tg.local.shape[0]
        keep = (tg.local >= 0).nonzero().squeeze(1)
        # None: every sample counts, and indexing (a copy) is skipped.
        self.keep = None if keep.numel() == self.n else keep
        self.local = tg.local if self.keep is None else tg.local[keep]
        self.layers = {layer.name: layer for layer in layers}
        self.calls, self.sink, self.statistic = calls, sink, statistic
        self.acc: Dict[str, Tensor] = {}
        self.pending = {layer.name: len(calls[layer.name]) for layer in layers}
        self.failed = set()
        for layer in layers:
            for call in calls[layer.name]:
                if not self._shape_ok(layer, call):
                    break
                if layer.grouping == CLOSED_FORM:
                    call.on_grad = partial(self._take, layer.name)

    def _shape_ok(self, layer: Layer, call: LayerCall) -> bool:
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

    def _take(self, name: str, call: LayerCall, grad: Tensor) -> None:
        if name in self.failed:
            return
        layer = self.layers[name]
        if call.inp._version != call.version:
            self._fail(
                name, 'its input was modified in place after the '
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
        inner = (onehot.T @ kernel @ onehot) / (
            counts[:, None] * counts[None, :])
        norms = inner.diagonal().clamp(min=0).sqrt() * counts
        scale = (tg.factors.abs() / counts * norms).sum().item()
        if self.sink.verify(layer.name, combination, scale):
            gram = torch.full(
                (tg.ids.numel(), ) * 2,
                float('nan'),
                dtype=torch.float64,
                device=inner.device)
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
                grads = torch.autograd.grad([o for o, _, _ in pairs],
                                            layer.params,
                                            cotangents,
                                            retain_graph=True,
                                            allow_unused=True)
                acc[r] += flat_gradients(grads, layer.params)
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
            torch.autograd.grad(
                total,
                list(targets.values()),
                retain_graph=True,
                allow_unused=True)
        # Layers fed only by parameters are not on those paths.
        missed = [
            layer for n, layer in self.layers.items()
            if any(not c.done and any(o.requires_grad for o in c.outs)
                   for c in self.calls[n])
        ]
        if missed:
            torch.autograd.grad(
                total, [p for layer in missed for p in layer.params],
                retain_graph=True,
                allow_unused=True)
        for name, layer in self.layers.items():
            if name in self.failed or name in self.sink.done or \
                    name in self.sink.failures.reasons:
                continue
            if layer.grouping != CLOSED_FORM:
                self._local(layer)
            else:
                # Outputs the loss does not depend on: zero gradient.
                self.sink.add(
                    name,
                    self.acc.pop(
                        name,
                        torch.zeros(
                            self.tg.r,
                            layer.size,
                            device=layer.params[0].device)))


def _kernel_is_cheaper(layer: Layer, calls: List[LayerCall], r: int) -> bool:
    """Whether the N x N per-sample kernel of a linear layer applied once to
    one vector per sample costs less than forming R class gradients."""
    module = layer.module
    if not isinstance(module, nn.Linear) or len(calls) != 1 or \
            calls[0].inp.dim() != 2:
        return False
    n = calls[0].inp.shape[0]
    return n * (module.in_features + module.out_features) < \
        module.in_features * module.out_features * (1 + r * r / max(n, 1))


def per_pixel(scores, logits, e, tg, layers, calls, sink, align_corners,
              vjp_batch) -> None:
    """Segmentation (or coupled samples): the classifier by grouping pixels,
    every other layer by one vector-Jacobian product per class."""
    head = [
        layer for layer in layers if len(calls[layer.name]) == 1
        and calls[layer.name][0].out is logits and is_1x1_conv(layer)
    ]
    for layer in head:
        sink.add(
            layer.name,
            _classifier_by_pixels(layer.module,
                                  calls[layer.name][0].inp.detach(), e, tg,
                                  scores.shape[2:], align_corners))
    rest = [layer for layer in layers if layer not in head]
    # The per-pixel loss gradient e restricted to class r's pixels is the
    # gradient of its loss sum with respect to the logits.
    per_class_autograd(rest, sink, lambda r: (scores, e * tg.mask(r, e)),
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
            ra = resize(ra, size, align_corners)
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
