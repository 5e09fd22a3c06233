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
from typing import Callable, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .engines import SampleGrouping, per_class_autograd, per_pixel, resize
from .gradient_store import (VERIFY_RTOL, BatchTargets, ClassGradients,
                             Failures, Sink, batch_targets, flat_gradients,
                             merged_coverage, relative_error)
from .layer_selection import Coverage, Layer, select_layers
from .recording import AnalysisMode, Recorder, check_norm_stats

MODES = ('fast', 'loop', 'sketch')
STATISTICS = ('grads', 'gram')
NORM_STATS = ('running', 'batch')
ON_FAILURE = ('raise', 'skip')


class LossError(ValueError):
    """The loss cannot give class gradients: it fails, returns no loss per
    element, or one element's loss depends on other elements' logits."""


def class_gradients(
        model: nn.Module,
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
        accumulate: Optional[ClassGradients] = None) -> ClassGradients:
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
        if accumulate.sketch_dim != (sketch_dim if mode == 'sketch' else None):
            raise ValueError('accumulate holds class gradients of another '
                             'sketch size')
    inputs, targets = batch
    coupled = check_norm_stats(model, norm_stats)
    grouping = mode != 'loop' and targets.dim() == 1 and not coupled
    selected, coverage, explicit = select_layers(model, layers, grouping)
    failures = Failures(on_failure, explicit)
    for name in explicit & set(coverage.skipped):
        failures.refuse(name, coverage.skipped.pop(name))
    if not selected:
        raise ValueError(
            'the model has no layer with trainable parameters '
            'to analyse' +
            (f' ({coverage.describe()})' if coverage.skipped else ''))
    recorder = Recorder(selected, capture=grouping)
    device_type = inputs.device.type if isinstance(inputs, Tensor) else 'cpu'
    try:
        with AnalysisMode(model, norm_stats == 'batch'), \
                torch.enable_grad(), torch.autocast(
                    device_type=device_type, enabled=False):
            if isinstance(inputs, Tensor) and inputs.is_floating_point():
                # Grouping by samples runs the backward down to the inputs
                # (not the weights), which therefore require gradients.
                inputs = inputs.detach().float().requires_grad_(grouping)
            logits = model(inputs)
            recorder.remove()
            result = _compute(inputs, logits, targets, loss_fn, classes,
                              selected, recorder, mode, grouping, num_classes,
                              ignore_index, align_corners, statistic,
                              sketch_dim if mode == 'sketch' else None, seed,
                              failures, coverage, vjp_batch, accumulate)
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
    tg, safe = batch_targets(targets, ids, row_of, ignore_index, seed)
    dense = targets.dim() >= 2
    scores = logits
    if dense and logits.shape[2:] != targets.shape[1:]:
        scores = resize(logits, targets.shape[1:], align_corners)
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
    found = torch.autograd.grad(
        checked, params, retain_graph=True, allow_unused=True)
    reached, totals, start = {}, {}, 0
    for layer in selected:
        part = found[start:start + len(layer.params)]
        start += len(layer.params)
        reached[layer.name] = any(g is not None for g in part)
        totals[layer.name] = flat_gradients(
            part, layer.params) if reached[layer.name] else None
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
                'are used by another module'
                if reached[layer.name] else 'not used by model(inputs)')
    if accumulate is not None:
        result = accumulate
        result.counts = result.counts + tg.counts
    else:
        result = ClassGradients(
            ids,
            tg.counts, [],
            sketch_dim=sketch_dim,
            gram={} if statistic == 'gram' else None)
    sink = Sink(result, tg, totals, failures, statistic, sketch_dim, seed)
    chosen = [by_name[n] for n in names]
    if mode == 'loop':
        per_class_autograd(
            chosen, sink, lambda r:
            ((losses * tg.mask(r, losses)).sum(), None), 1)
    elif grouping:
        grouping = SampleGrouping(tg, chosen, calls, sink, statistic)
        recorder.arm()
        grouping.run(total, inputs)
    else:
        per_pixel(scores, logits, e, tg, chosen, calls, sink, align_corners,
                  vjp_batch)
    return _finish(result, sink, selected, coverage, failures, accumulate)


def _finish(result: ClassGradients, sink: Sink, selected: List[Layer],
            coverage: Coverage, failures: Failures,
            accumulate: Optional[ClassGradients]) -> ClassGradients:
    coverage.skipped.update(failures.reasons)
    done = [layer.name for layer in selected if layer.name in set(sink.done)]
    if accumulate is None:
        result.layers = done
        result.sizes = {
            layer.name: layer.size
            for layer in selected if layer.name in done
        }
        coverage.analysed = sum(result.sizes.values())
        result.coverage = coverage
    else:
        result.coverage = merged_coverage(result.coverage, coverage)
        for name in [n for n in result.layers if n not in done]:
            result._drop([name],
                         coverage.skipped.get(name,
                                              'not analysed in every batch'))
        for name in [n for n in done if n not in result.layers]:
            # New in this batch: its earlier batches are missing.
            result.sums.pop(name)
            result.rows.pop(name)
            result.coverage.skipped[name] = 'not analysed in every batch'
    if not result.layers:
        raise ValueError('no layer could be analysed: ' +
                         result.coverage.describe())
    return result


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


def _check_loss(scores: Tensor, total: Tensor, checked: Tensor,
                tg: BatchTargets) -> Tensor:
    """The loss gradient at the scores; refuses a loss in which one sample's
    (pixel's) loss depends on other samples' logits: then the gradient of
    ``sum(check * losses)`` is not ``check`` times that of the losses."""
    (e, ) = torch.autograd.grad(total, scores, retain_graph=True)
    (e_check, ) = torch.autograd.grad(checked, scores, retain_graph=True)
    check = tg.check.unsqueeze(1) if e.dim() > tg.check.dim() else tg.check
    expected = e * check
    scale = expected.norm().item() + e_check.norm().item()
    err = relative_error(e_check, expected, scale)
    if err > VERIFY_RTOL:
        raise LossError(
            f'loss_fn is not per-sample: the loss of a sample (pixel) '
            f'depends on the logits of others (relative error {err:.2g}); '
            'the class gradients need a loss such as cross-entropy or '
            'focal loss, not Dice or Lovasz')
    return e


__all__ = [
    'ClassGradients', 'LossError', 'class_gradients', 'MODES', 'STATISTICS',
    'NORM_STATS', 'ON_FAILURE'
]
