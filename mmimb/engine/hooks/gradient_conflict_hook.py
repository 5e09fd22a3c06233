"""Gradient Conflict Matrix during training, for mmseg and mmpretrain runs."""
import copy
import math
import os.path as osp
from collections import deque
from typing import Callable, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.dist import (all_reduce, get_dist_info, get_world_size,
                           is_main_process)
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from torch.utils.data import DataLoader

from mmimb.analysis import GradientConflict, conflict_matrix, summarize
from mmimb.analysis.class_gradients import MODES
from mmimb.analysis.conflict import SUMMARY_KEYS
from mmimb.analysis.plot import heatmap_figure, save_figure
from mmimb.datasets.sample_labels import single_labels
from mmimb.engine.gradient_probe import (ProbeLoss, class_names,
                                         cold_batch_norms, preserved_rng,
                                         unwrap_model)

PROBES = ('batch', 'fixed', 'balanced')
HOOK_NORM_STATS = ('warm', 'running', 'batch')


def _batch_size(loader: DataLoader) -> int:
    return loader.batch_size or loader.batch_sampler.batch_size


def _finite(values: dict) -> dict:
    return {k: v for k, v in values.items() if math.isfinite(v)}


@HOOKS.register_module()
class GradientConflictHook(Hook):
    """Compute the Gradient Conflict Matrix every ``interval`` iterations.

    Before the training step of iterations ``begin``, ``begin + interval``,
    ... (the weights after that many steps) the hook runs its own forward
    and backward on a probe (mmengine zeroes gradients inside
    ``train_step``, so the step's gradients are never visible to hooks) with
    :func:`mmimb.analysis.class_gradients`: the model's own loss (or
    ``loss_fn``) of its logits (``mode='tensor'``; segmentation logits
    resized to label size), each class's loss averaged over its samples or
    pixels, the model in eval mode. It restores every module's mode and the
    Python, NumPy and torch random states and never touches parameter
    gradients or BatchNorm statistics, so training is bit-identical to a
    run without the hook. Under DDP the class-gradient sums and counts are
    all-reduced layer by layer, so the matrix is that of the global batch;
    under AMP it is computed in fp32.

    It never stops training: a layer that cannot be analysed exactly is left
    out with a warning (once per layer), and an analysis that fails on any
    process is skipped on all of them with a warning (once per reason).

    Scalars go to the message hub as ``train/gcm/<name>``
    (``mean_cosine``, ``mean_negative_cosine``, ``conflict_fraction``,
    optionally per class ``class_conflict_<c>`` and
    ``weighted_conflict_<c>``), hence to the text log, JSON and TensorBoard
    at the next logging iteration; per-stage (and optionally per-layer)
    summaries and the heatmap go to the runner's visualizer at the
    analysis iteration. Non-finite values (e.g. fewer than two classes
    present) are never logged. The main process writes ``iter_<N>.npz``
    (everything, see :meth:`GradientConflict.to_npz`) and ``iter_<N>.png``
    (heatmap) to ``out_dir``.

    Args:
        interval: Iterations between analyses. The default keeps the cost
            under 5% of training time for a ResNet-32 on 100 classes
            (benchmarks/gradient_conflict.py).
        begin: First iteration to analyse.
        probe: ``'batch'``: the batch about to be trained on, together with
            the ``num_probe_batches - 1`` batches before it; ``'fixed'``:
            ``num_probe_batches`` batches drawn once (seeded by
            ``probe_seed``) from the training set with its pipeline and
            reused at every analysis, so that matrices over training are
            comparable; ``'balanced'`` (classification): like ``'fixed'``,
            but ``samples_per_class`` images of every class (all of a class
            that has fewer), so that rare classes are present in a
            long-tailed training set.
        num_probe_batches: Batches per analysis; classes are averaged over
            all of them (per process; all processes together under DDP).
            With ``'balanced'``: the default probe size is
            ``num_probe_batches`` training batches.
        samples_per_class: Images per class of the ``'balanced'`` probe;
            default ``num_probe_batches * batch_size // num_classes`` (at
            least 1). The probe is split into batches of the training batch
            size (and over the processes under DDP).
        layers: Layer or container names of the model (without the DDP
            wrapper), default every layer with trainable parameters.
        classes: Class ids to analyse (rows in that order), default all.
        loss_fn: None: the model's own loss (mmseg ``decode_head.
            loss_decode``, mmpretrain ``head.loss_module``) if it gives a
            loss per sample (pixel) that depends on that sample's logits
            only, else cross-entropy (with a warning); ``'cross_entropy'``;
            a loss config dict (built by the registry, called with
            ``reduction_override='none'``); or a callable
            ``loss_fn(logits, targets, reduction='none')``.
        norm_stats: ``'warm'``: BatchNorm with its running statistics, but
            no analysis while a BatchNorm layer that trains with batch
            statistics has running ones that still weigh their initial
            values by more than 1% (44 batches at momentum 0.1; a message
            says so; warm statistics still lag weights that change quickly,
            see docs/gradient_conflict.md); ``'running'``: the running
            statistics as they are;
            ``'batch'``: the batch's statistics, as the training step uses
            them, without updating the running ones (classification then
            costs one backward per class).
        mode: ``'fast'``, ``'loop'`` or ``'sketch'``
            (:mod:`mmimb.analysis.class_gradients`).
        out_dir: Folder of the ``.npz`` and PNG files; default
            ``<log_dir>/gradient_conflict``.
        save_heatmaps: Write a PNG heatmap per analysis.
        vis_heatmaps: Also send the heatmap to the runner's visualizer
            (its backends: local files, TensorBoard, ...).
        log_per_class: Also log each class's conflict with the other
            classes and with the count-weighted gradient as scalars.
        stage_depth: Per-stage summaries of the layers grouped by the first
            ``stage_depth`` components of their names (2: ``backbone.
            layer1``, ``decode_head.conv_seg``...); None for none.
        log_per_layer: Also log every layer's summary.
        sketch_dim: CountSketch size in ``'sketch'`` mode.
        probe_seed: Seed of the fixed probe's sampler, of the sketch and of
            the verification.
    """

    priority = 'LOW'

    def __init__(self,
                 interval: int = 100,
                 begin: int = 0,
                 probe: str = 'batch',
                 num_probe_batches: int = 1,
                 samples_per_class: Optional[int] = None,
                 layers: Optional[Sequence[str]] = None,
                 classes: Optional[Sequence[int]] = None,
                 loss_fn: Union[None, str, dict, Callable] = None,
                 norm_stats: str = 'warm',
                 mode: str = 'fast',
                 out_dir: Optional[str] = None,
                 save_heatmaps: bool = True,
                 vis_heatmaps: bool = True,
                 log_per_class: bool = False,
                 stage_depth: Optional[int] = 2,
                 log_per_layer: bool = False,
                 sketch_dim: int = 4096,
                 probe_seed: int = 0):
        for name, value, low in (('interval', interval, 1),
                                 ('begin', begin, 0),
                                 ('num_probe_batches', num_probe_batches, 1)):
            if not isinstance(value, int) or value < low:
                raise ValueError(f'{name}={value!r}; expected an integer >= '
                                 f'{low}')
        if probe not in PROBES:
            raise ValueError(f'probe={probe!r}; expected one of {PROBES}')
        if mode not in MODES:
            raise ValueError(f'mode={mode!r}; expected one of {MODES}')
        if norm_stats not in HOOK_NORM_STATS:
            raise ValueError(f'norm_stats={norm_stats!r}; expected one of '
                             f'{HOOK_NORM_STATS}')
        if samples_per_class is not None and (
                not isinstance(samples_per_class, int)
                or samples_per_class < 1):
            raise ValueError(f'samples_per_class={samples_per_class!r}; '
                             'expected a positive integer')
        if stage_depth is not None and (not isinstance(stage_depth, int)
                                        or stage_depth < 1):
            raise ValueError(f'stage_depth={stage_depth!r}; expected a '
                             'positive integer or None')
        self.interval = interval
        self.begin = begin
        self.probe = probe
        self.num_probe_batches = num_probe_batches
        self.samples_per_class = samples_per_class
        self.layers = layers
        self.classes = classes
        self._loss = ProbeLoss(loss_fn)
        self.norm_stats = norm_stats
        self.mode = mode
        self.out_dir = out_dir
        self.save_heatmaps = save_heatmaps
        self.vis_heatmaps = vis_heatmaps
        self.log_per_class = log_per_class
        self.stage_depth = stage_depth
        self.log_per_layer = log_per_layer
        self.sketch_dim = sketch_dim
        self.probe_seed = probe_seed
        self._recent = deque(maxlen=num_probe_batches)
        self._fixed: List[dict] = []
        self._class_names = None
        self._warned = set()
        self._coverage_logged = False

    def before_train(self, runner) -> None:
        if self.out_dir is None:
            self.out_dir = osp.join(runner.log_dir, 'gradient_conflict')
        loader = runner.train_dataloader
        self._class_names = class_names(loader.dataset)
        if self.probe == 'fixed':
            with preserved_rng():
                self._fixed = self._draw_fixed(loader)
        elif self.probe == 'balanced':
            with preserved_rng():
                self._fixed = self._draw_balanced(loader)

    def _draw_balanced(self, loader: DataLoader) -> List[dict]:
        dataset = loader.dataset
        labels = single_labels(dataset, "probe='balanced'")
        num_classes = int(labels.max()) + 1
        names = class_names(dataset)
        if names is not None:
            num_classes = max(num_classes, len(names))
        batch_size = _batch_size(loader)
        per_class = self.samples_per_class or max(
            1, self.num_probe_batches * batch_size // num_classes)
        rng = np.random.default_rng(self.probe_seed)
        chosen = []
        for c in range(num_classes):
            members = np.flatnonzero(labels == c)
            chosen.extend(rng.permutation(members)[:per_class].tolist())
        rank, world = get_dist_info()
        # Every process draws the same samples, so all of them refuse here,
        # before any collective; otherwise the processes left without a
        # batch would fail while the others wait in all_reduce.
        if len(chosen) < world:
            raise ValueError(
                f"probe='balanced' drew {len(chosen)} samples ({per_class} "
                f'per class over {num_classes} classes) for {world} '
                'processes, but every process needs at least one; raise '
                'samples_per_class or num_probe_batches')
        mine = chosen[rank::world]
        return [
            loader.collate_fn([dataset[i] for i in mine[s:s + batch_size]])
            for s in range(0, len(mine), batch_size)
        ]

    def _draw_fixed(self, loader: DataLoader) -> List[dict]:
        from mmengine.dataset import DefaultSampler
        sampler = DefaultSampler(
            loader.dataset, shuffle=True, seed=self.probe_seed)
        probe_loader = DataLoader(
            loader.dataset,
            batch_size=_batch_size(loader),
            sampler=sampler,
            collate_fn=loader.collate_fn,
            num_workers=0)
        batches = []
        for batch in probe_loader:
            batches.append(batch)
            if len(batches) == self.num_probe_batches:
                break
        if len(batches) < self.num_probe_batches:
            raise ValueError(
                f'num_probe_batches={self.num_probe_batches} but the '
                f'training set gives only {len(batches)} batches per process')
        return batches

    def _next_analysis(self, iteration: int) -> int:
        if iteration <= self.begin:
            return self.begin
        steps = -(-(iteration - self.begin) // self.interval)
        return self.begin + steps * self.interval

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch: Optional[dict] = None) -> None:
        to_next = self._next_analysis(runner.iter) - runner.iter
        if self.probe == 'batch' and to_next < self.num_probe_batches:
            # One of the batches of the next analysis. Copied now: the
            # training step's preprocessing may modify the data samples.
            self._recent.append(copy.deepcopy(data_batch))
        if to_next == 0:
            self.analyse(runner)

    def _warn(self, runner, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            runner.logger.warning(f'GradientConflictHook: {message}')

    def _cold(self, runner, model) -> bool:
        if self.norm_stats != 'warm':
            return False
        cold = cold_batch_norms(model)
        if cold:
            name, seen, needed = cold[0]
            self._warn(
                runner, 'cold',
                f'not analysing at iteration {runner.iter}: BatchNorm '
                f'{name!r} (and {len(cold) - 1} more) has seen {seen} '
                f'batches; its running statistics weigh their initial '
                f'values by more than 1% until {needed}, and the analysis '
                '(eval mode) would use them while training normalises with '
                'batch statistics. Analyses start once they are warm; '
                "norm_stats='batch' analyses with batch statistics "
                "instead, 'running' with the running ones as they are")
        return bool(cold)

    def _class_gradients(self, runner, model, batches, statistic):
        return self._loss.class_gradients(
            model, batches, warn=lambda m: self._warn(runner, 'loss', m),
            layers=self.layers, classes=self.classes, mode=self.mode,
            statistic=statistic, sketch_dim=self.sketch_dim,
            seed=self.probe_seed, on_failure='skip',
            norm_stats='batch' if self.norm_stats == 'batch' else 'running')

    def analyse(self, runner) -> Optional[GradientConflict]:
        """Compute, log and save the matrix for the current weights; None
        when the analysis is skipped (with a warning, once per reason)."""
        model = unwrap_model(runner.model)
        if self._cold(runner, model):
            return None
        batches = list(self._recent) if self.probe == 'batch' else \
            self._fixed
        world = get_world_size()
        statistic = 'gram' if len(batches) == 1 and world == 1 else 'grads'
        merged, error = None, None
        with preserved_rng():
            try:
                merged, probe = self._class_gradients(runner, model, batches,
                                                      statistic)
            except Exception as err:  # noqa: BLE001 (never stop training)
                error = err
        if world > 1:
            # Every process takes part in the all-reduce, or none does.
            ok = torch.tensor([0 if error is None else 1])
            all_reduce(ok, op='sum')
            if ok.item() and error is None:
                error = RuntimeError('the analysis failed on another '
                                     'process')
        if error is not None:
            self._warn(runner, f'{type(error).__name__}: {error}',
                       f'skipping the analysis at iteration {runner.iter}: '
                       f'{type(error).__name__}: {error}')
            return None
        result = conflict_matrix(merged.all_reduce())
        for name, reason in result.skipped.items():
            self._warn(runner, f'layer {name}',
                       f'layer {name or "<model>"!r} left out: {reason}')
        if not self._coverage_logged:
            self._coverage_logged = True
            runner.logger.info(
                f'GradientConflictHook: {len(result.layers)} layers, loss '
                f'{self._loss.name}; {result.coverage.describe()}')
        if self._class_names is not None and \
                len(self._class_names) != probe.num_classes:
            self._warn(runner, 'names',
                       f'the dataset names {len(self._class_names)} classes '
                       f'but the model predicts {probe.num_classes}: saving '
                       'without names')
            self._class_names = None
        self._log(runner, result)
        if is_main_process():
            self._save(runner, result)
        return result

    def _log(self, runner, result: GradientConflict) -> None:
        hub = runner.message_hub
        for key, value in _finite(result.summary()).items():
            hub.update_scalar(f'train/gcm/{key}', value)
        if self.log_per_class:
            for c, rest, weighted in zip(
                    result.classes.tolist(), result.class_conflict.tolist(),
                    result.weighted_class_conflict.tolist()):
                for key, value in ((f'class_conflict_{c}', rest),
                                   (f'weighted_conflict_{c}', weighted)):
                    if math.isfinite(value):
                        hub.update_scalar(f'train/gcm/{key}', value)
        if result.absent_classes:
            runner.logger.info(
                f'gradient conflict at iteration {runner.iter}: classes '
                f'{result.absent_classes} are absent from the probe (NaN)')
        scalars = {}
        if self.stage_depth is not None:
            for stage, cos in result.group_matrices(
                    self.stage_depth).items():
                scalars.update({f'gcm/stage/{stage}/{k}': v
                                for k, v in summarize(cos).items()})
        if self.log_per_layer:
            for name, values in result.layer_summary().items():
                scalars.update({f'gcm/layer/{name}/{k}': values[k]
                                for k in SUMMARY_KEYS})
        scalars = _finite(scalars)
        visualizer = getattr(runner, 'visualizer', None)
        if scalars and visualizer is not None and is_main_process():
            visualizer.add_scalars(scalars, step=runner.iter)

    def _save(self, runner, result: GradientConflict) -> None:
        iteration = runner.iter
        stem = osp.join(self.out_dir, f'iter_{iteration}')
        result.to_npz(
            stem + '.npz',
            class_names=self._class_names,
            iteration=iteration,
            mode=self.mode,
            probe=self.probe,
            loss=self._loss.name,
            norm_stats=self.norm_stats)
        visualizer = getattr(runner, 'visualizer', None)
        send = self.vis_heatmaps and visualizer is not None
        if not (self.save_heatmaps or send):
            return
        names = None if self._class_names is None else [
            self._class_names[c] for c in result.classes.tolist()]
        fig, image = heatmap_figure(
            result.matrix.cpu().numpy(), class_names=names,
            title=f'Gradient Conflict Matrix, iteration {iteration}')
        if self.save_heatmaps:
            save_figure(fig, stem + '.png')
        if send:
            visualizer.add_image('gcm_heatmap', image, step=iteration)
