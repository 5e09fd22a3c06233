"""Gradient Conflict Matrix during training, for mmseg and mmpretrain runs."""
import copy
import os.path as osp
from collections import deque
from typing import List, Optional, Sequence

import numpy as np
from mmengine.dist import get_dist_info, get_world_size, is_main_process
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from torch.utils.data import DataLoader

from mmimb.analysis import GradientConflict, conflict_matrix
from mmimb.analysis.class_gradients import MODES
from mmimb.analysis.plot import plot_heatmap
from mmimb.datasets.sample_labels import single_labels
from mmimb.engine.gradient_probe import (class_names, preserved_rng,
                                         probe_class_gradients, unwrap_model)

PROBES = ('batch', 'fixed', 'balanced')


def _batch_size(loader: DataLoader) -> int:
    return loader.batch_size or loader.batch_sampler.batch_size


@HOOKS.register_module()
class GradientConflictHook(Hook):
    """Compute the Gradient Conflict Matrix every ``interval`` iterations.

    Before the training step of iterations 0, ``interval``, 2 ``interval``,
    ... (the weights after that many steps) the hook runs its own forward
    and backward on a probe (mmengine zeroes gradients inside
    ``train_step``, so the step's gradients are never visible to hooks) with
    :func:`mmimb.analysis.class_gradients`: cross-entropy of the model's
    logits (``mode='tensor'``; segmentation logits resized to label size),
    each class's loss averaged over its samples or pixels, the model in eval
    mode. It restores every module's mode and the Python, NumPy and torch
    random states and never touches parameter gradients, so training is
    bit-identical to a run without the hook. Under DDP the class-gradient
    sums and counts are all-reduced, so the matrix is that of the global
    batch; under AMP it is computed in fp32.

    Scalars go to the message hub as ``train/gcm/<name>`` (``mean_cosine``,
    ``mean_negative_cosine``, ``conflict_fraction``, optionally
    ``class_conflict_<c>``), hence to the text log, JSON and TensorBoard at
    the next logging iteration. The main process writes
    ``iter_<N>.npz`` (everything, see :meth:`GradientConflict.to_npz`) and
    ``iter_<N>.png`` (heatmap) to ``out_dir``.

    Args:
        interval: Iterations between analyses. The default keeps the cost
            under 5% of training time for a ResNet-32 on 100 classes
            (benchmarks/gradient_conflict.py).
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
            wrapper), default every Linear and Conv layer.
        mode: ``'fast'``, ``'loop'`` or ``'sketch'``
            (:mod:`mmimb.analysis.class_gradients`).
        out_dir: Folder of the ``.npz`` and PNG files; default
            ``<log_dir>/gradient_conflict``.
        save_heatmaps: Write a PNG heatmap per analysis.
        log_per_class: Also log each class's conflict with the other
            classes as a scalar.
        sketch_dim: CountSketch size in ``'sketch'`` mode.
        probe_seed: Seed of the fixed probe's sampler and of the sketch.
    """

    priority = 'LOW'

    def __init__(self,
                 interval: int = 100,
                 probe: str = 'batch',
                 num_probe_batches: int = 1,
                 samples_per_class: Optional[int] = None,
                 layers: Optional[Sequence[str]] = None,
                 mode: str = 'fast',
                 out_dir: Optional[str] = None,
                 save_heatmaps: bool = True,
                 log_per_class: bool = False,
                 sketch_dim: int = 4096,
                 probe_seed: int = 0):
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f'interval={interval!r}; expected a positive '
                             'integer')
        if probe not in PROBES:
            raise ValueError(f'probe={probe!r}; expected one of {PROBES}')
        if not isinstance(num_probe_batches, int) or num_probe_batches < 1:
            raise ValueError(f'num_probe_batches={num_probe_batches!r}; '
                             'expected a positive integer')
        if mode not in MODES:
            raise ValueError(f'mode={mode!r}; expected one of {MODES}')
        if samples_per_class is not None and (
                not isinstance(samples_per_class, int)
                or samples_per_class < 1):
            raise ValueError(f'samples_per_class={samples_per_class!r}; '
                             'expected a positive integer')
        self.interval = interval
        self.probe = probe
        self.num_probe_batches = num_probe_batches
        self.samples_per_class = samples_per_class
        self.layers = layers
        self.mode = mode
        self.out_dir = out_dir
        self.save_heatmaps = save_heatmaps
        self.log_per_class = log_per_class
        self.sketch_dim = sketch_dim
        self.probe_seed = probe_seed
        self._recent = deque(maxlen=num_probe_batches)
        self._fixed: List[dict] = []
        self._class_names = None

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

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch: Optional[dict] = None) -> None:
        to_next = -runner.iter % self.interval
        if self.probe == 'batch' and to_next < self.num_probe_batches:
            # One of the batches of the next analysis. Copied now: the
            # training step's preprocessing may modify the data samples.
            self._recent.append(copy.deepcopy(data_batch))
        if runner.iter % self.interval == 0:
            self.analyse(runner)

    def analyse(self, runner) -> GradientConflict:
        """Compute, log and save the matrix for the current weights."""
        model = unwrap_model(runner.model)
        batches = list(self._recent) if self.probe == 'batch' else \
            self._fixed
        statistic = 'gram' if len(batches) == 1 and \
            get_world_size() == 1 else 'grads'
        with preserved_rng():
            merged, probe = probe_class_gradients(
                model, batches,
                layers=self.layers,
                mode=self.mode,
                statistic=statistic,
                sketch_dim=self.sketch_dim,
                seed=self.probe_seed)
        result = conflict_matrix(merged.all_reduce())
        if self._class_names is not None and \
                len(self._class_names) != probe.num_classes:
            runner.logger.warning(
                f'the dataset names {len(self._class_names)} classes but the '
                f'model predicts {probe.num_classes}: saving without names')
            self._class_names = None
        self._log(runner, result)
        if is_main_process():
            self._save(runner.iter, result)
        return result

    def _log(self, runner, result: GradientConflict) -> None:
        hub = runner.message_hub
        for key, value in result.summary().items():
            hub.update_scalar(f'train/gcm/{key}', value)
        if self.log_per_class:
            for c, value in zip(result.classes.tolist(),
                                result.class_conflict.tolist()):
                hub.update_scalar(f'train/gcm/class_conflict_{c}', value)
        if result.absent_classes:
            runner.logger.info(
                f'gradient conflict at iteration {runner.iter}: classes '
                f'{result.absent_classes} are absent from the probe (NaN)')

    def _save(self, iteration: int, result: GradientConflict) -> None:
        stem = osp.join(self.out_dir, f'iter_{iteration}')
        result.to_npz(
            stem + '.npz',
            class_names=self._class_names,
            iteration=iteration,
            mode=self.mode,
            probe=self.probe)
        if self.save_heatmaps:
            plot_heatmap(
                result.matrix.cpu().numpy(),
                stem + '.png',
                class_names=self._class_names,
                title=f'Gradient Conflict Matrix, iteration {iteration}')
