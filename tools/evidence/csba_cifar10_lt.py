"""Does Class-Specific Branch Attention reduce gradient conflict and help the
tail on CIFAR-10-LT? Plain head vs the class-shared multi-branch baseline vs
CSBA, several seeds, one table.

    python tools/evidence/csba_cifar10_lt.py \
        --data-root /tmp/csba/data/cifar10 --work-dir /tmp/csba/evidence \
        [--seeds 0 1 2] [--methods plain multi-branch csba] [--ccar]
        [--imbalance 100] [--iters N] [--conflict-interval 50]
        [--probe-per-class 16] [--threads 1] [--tiny]

Each run trains ``configs/csba/<method>-<ce|ccar>_resnet32_1xb128-200e_
cifar10-lt-if<IF>.py`` with the short CPU schedule ``configs/_base_/schedules/
cifar_lt_cpu.py`` on top (the one the CCAR evidence uses), with the run's
seed, on one thread. During training, every ``--conflict-interval``
iterations (and before the first), the Gradient Conflict Matrix
(:func:`mmimb.analysis.gradient_conflict`, exact ``fast`` mode) of the
backbone's layers, which all three models share, is measured on one fixed,
class-balanced probe batch drawn from the long-tailed training set (the same
images for every method and seed). Recorded: the mean negative cosine and
the fraction of conflicting class pairs, and for the rarest classes their
conflict with the rest ``cos(g_c, sum_{j != c} g_j)``. At the end the model
is evaluated on the full balanced test set (LongTailMetric: macro-F1,
balanced accuracy, many/medium/few-shot accuracy), and on the test images
the branch attention of the multi-branch necks is summarised: its mean
distance from uniform weights, and its spread over classes (the standard
deviation over classes, 0 for a class-shared attention, and 0 for CSBA at
initialisation).

Results go to ``WORK_DIR/results.md`` (table, mean +- std over seeds, next
to the CSBA abstract's figures), ``results.json`` and
``conflict_curves.png``. Finished runs are kept in ``WORK_DIR/<method>/
seed<S>/run.json`` and skipped when the command is repeated, so an
interrupted sweep resumes. ``--tiny`` checks the whole pipeline in about a
minute (4 iterations, 100 test images); its numbers mean nothing.
"""
import argparse
import copy
import json
import math
import multiprocessing
import os
import os.path as osp
import sys
import time
from typing import Dict, List

import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.dataset import pseudo_collate
from mmengine.hooks import Hook
from mmengine.registry import init_default_scope

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# This checkout's mmimb and the sweep helpers beside this script.
sys.path[:0] = [ROOT, osp.dirname(osp.abspath(__file__))]

from mmimb.analysis import (class_gradients, conflict_with_rest,  # noqa: E402
                            cosine_from_gram, summarize)
from mmimb.engine.launch import build_runner  # noqa: E402
from mmimb.models.layers import attention_statistics  # noqa: E402
from sweep import apply_schedule, check_reuse  # noqa: E402

METHODS = ('plain', 'multi-branch', 'csba')
# The CSBA abstract (arXiv 2606.05740), CIFAR-10-LT; its baseline network
# and schedule are not public.
PAPER = dict(baseline_macro_f1=0.595, csba_macro_f1=0.655,
             baseline_params=1.35e6, csba_params=1.79e6)
METRICS = ('top1', 'balanced_accuracy', 'macro_f1', 'many_shot_acc',
           'medium_shot_acc', 'few_shot_acc', 'attention_from_uniform',
           'attention_class_spread')
# Layer groups whose Gradient Conflict Matrix is followed: the backbone,
# which all three models share, and the branch convolutions of the
# multi-branch necks (absent from the plain model).
GROUPS = dict(backbone='backbone', branches='neck.branches')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data-root', required=True,
                        help='CIFAR-10 JPEG folder with train/ and test/')
    parser.add_argument('--work-dir', default='/tmp/csba/evidence')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--methods', nargs='+', default=list(METHODS),
                        choices=METHODS)
    parser.add_argument('--ccar', action='store_true',
                        help='train every method with CCAR instead of CE')
    parser.add_argument('--imbalance', type=int, default=100,
                        choices=(10, 100))
    parser.add_argument('--iters', type=int,
                        help='training iterations; default: those of the '
                        'CPU schedule (3000)')
    parser.add_argument(
        '--schedule', default=osp.join(ROOT, 'configs', '_base_',
                                       'schedules', 'cifar_lt_cpu.py'),
        help='schedule applied on top of each config')
    parser.add_argument('--threads', type=int,
                        help='torch threads per run (default: torch\'s, one '
                        'per physical core)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of every run, as in '
                        'tools/train.py')
    parser.add_argument('--conflict-interval', type=int, default=50,
                        help='iterations between conflict measurements')
    parser.add_argument('--probe-per-class', type=int, default=16,
                        help='probe images per class (fewer if a class has '
                        'fewer)')
    parser.add_argument('--rare', type=int, default=3,
                        help='how many of the rarest classes to follow')
    parser.add_argument('--test-every', type=int, default=1,
                        help='evaluate on every k-th test image only '
                        '(validation runs)')
    parser.add_argument('--tiny', action='store_true',
                        help='4 iterations of batch 16, a probe of 4 images '
                        'per class and every 100th test image: checks the '
                        'pipeline, not the method')
    return parser.parse_args(argv)


def config_path(method: str, ccar: bool, imbalance: int) -> str:
    name = f'{method}-{"ccar" if ccar else "ce"}_resnet32_1xb128-200e_' \
        f'cifar10-lt-if{imbalance}.py'
    return osp.join(ROOT, 'configs', 'csba', name)


def innermost(dataset_cfg: dict) -> dict:
    """The image-folder dataset inside wrappers such as LongTailedDataset."""
    while 'dataset' in dataset_cfg:
        dataset_cfg = dataset_cfg['dataset']
    return dataset_cfg


def run_config(args, method: str, seed: int, run_dir: str) -> Config:
    """The method's config with the CPU schedule on top (it replaces the
    schedule of a complete config, so it cannot be one of its bases)."""
    iters = 4 if args.tiny else args.iters
    if iters is not None:
        os.environ['MMIMB_CPU_ITERS'] = str(iters)
    cfg = Config.fromfile(config_path(method, args.ccar, args.imbalance))
    apply_schedule(cfg, args.schedule)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        innermost(cfg[loader].dataset).data_root = args.data_root
    cfg.work_dir = run_dir
    cfg.experiment_name = f'{method}_seed{seed}'
    cfg.randomness = dict(seed=seed)
    cfg.launcher = 'none'
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    test_every = 100 if args.tiny else args.test_every
    if test_every > 1:
        # The folders are sorted by class, so every k-th image keeps all
        # ten classes.
        cfg.val_dataloader.dataset.indices = list(range(0, 10000,
                                                        test_every))
    if args.tiny:
        cfg.train_dataloader.batch_size = 16
    return cfg


def build_probe(cfg: Config, per_class: int, data_preprocessor):
    """A fixed class-balanced batch from the long-tailed training set,
    without augmentation; the same for every method and seed."""
    from mmpretrain.registry import DATASETS
    dataset_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    innermost(dataset_cfg).pipeline = cfg.val_dataloader.dataset.pipeline
    dataset = DATASETS.build(dataset_cfg)
    labels = np.asarray(dataset.get_gt_labels())
    rng = np.random.default_rng(0)
    chosen = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        chosen.extend(rng.choice(members, min(per_class, len(members)),
                                 replace=False).tolist())
    batch = pseudo_collate([dataset[i] for i in sorted(chosen)])
    data = data_preprocessor(batch, training=False)
    targets = torch.cat([s.gt_label for s in data['data_samples']])
    counts = np.bincount(labels, minlength=len(dataset.metainfo['classes']))
    return data['inputs'], targets, counts


class ConflictProbe(Hook):
    """Measures the Gradient Conflict Matrix of each layer group (GROUPS)
    on the probe batch before training and every ``interval`` iterations,
    and keeps the validation metrics. It computes its own gradients and
    leaves training unchanged (:func:`mmimb.analysis.class_gradients`
    restores the model's mode and never touches ``.grad``)."""

    priority = 'LOW'

    def __init__(self, inputs, targets, rare: List[int], interval: int):
        self.inputs, self.targets = inputs, targets
        self.rare, self.interval = rare, interval
        self.history, self.metrics = [], {}
        self.seconds = 0.0

    def measure(self, runner, iteration: int) -> None:
        start = time.perf_counter()
        modules = dict(runner.model.named_modules())
        groups = {g: p for g, p in GROUPS.items() if p in modules}
        grams = class_gradients(
            runner.model, (self.inputs, self.targets),
            layers=list(groups.values()),
            num_classes=int(self.targets.max()) + 1,
            statistic='gram').gram_matrices()
        record = dict(iteration=iteration)
        for group, prefix in groups.items():
            gram = sum(g for name, g in grams.items()
                       if name.startswith(prefix + '.'))
            rest = conflict_with_rest(gram)
            record[group] = dict(
                rare_vs_rest=float(rest[self.rare].nanmean()),
                class_conflict=rest.tolist(),
                **summarize(cosine_from_gram(gram)))
        self.history.append(record)
        self.seconds += time.perf_counter() - start

    def before_val(self, runner) -> None:
        self.val_start = time.perf_counter()
        self.attention = []
        attention = getattr(getattr(runner.model, 'neck', None),
                            'attention', None)
        self._handle = attention.register_forward_hook(
            self._record_attention) if attention is not None else None

    def _record_attention(self, module, inputs, weights) -> None:
        self.attention.append((weights.shape[0],
                               *attention_statistics(weights)))

    def before_train(self, runner) -> None:
        self.measure(runner, 0)

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        if (runner.iter + 1) % self.interval == 0 or \
                runner.iter + 1 == runner.max_iters:
            self.measure(runner, runner.iter + 1)

    def after_val_epoch(self, runner, metrics=None) -> None:
        self.metrics = dict(metrics or {})
        self.val_seconds = time.perf_counter() - self.val_start
        if self._handle is not None:
            self._handle.remove()
            n = sum(k for k, _, _ in self.attention)
            self.metrics.update(
                attention_from_uniform=sum(
                    k * u for k, u, _ in self.attention) / n,
                attention_class_spread=sum(
                    k * c for k, _, c in self.attention) / n)


def settings(args) -> dict:
    """What a finished run must share with this sweep to be reused."""
    iters = 4 if args.tiny else (args.iters
                                 or Config.fromfile(args.schedule).cpu_iters)
    return json.loads(json.dumps(dict(
        ccar=args.ccar, imbalance=args.imbalance, tiny=args.tiny, iters=iters,
        schedule=osp.relpath(osp.abspath(args.schedule), ROOT),
        test_every=100 if args.tiny else args.test_every,
        probe_per_class=4 if args.tiny else args.probe_per_class,
        conflict_interval=2 if args.tiny else args.conflict_interval,
        rare=args.rare, cfg_options=args.cfg_options), default=str))


def train_one(args, method: str, seed: int) -> Dict:
    """Train and evaluate one (method, seed) in a child process, unless its
    ``run.json`` exists; return that record."""
    run_dir = osp.join(args.work_dir, method + ('-ccar' if args.ccar else
                                                ''), f'seed{seed}')
    done = osp.join(run_dir, 'run.json')
    if not osp.isfile(done):
        # A fresh process per run, as in the CCAR sweep: whatever a run
        # leaves in memory goes with it (a leak in class_gradients, since
        # fixed, once grew one sweep process to 22 GB).
        child = multiprocessing.get_context('spawn').Process(
            target=_train_in_child, args=(args, method, seed, run_dir, done))
        child.start()
        child.join()
        if child.exitcode != 0 or not osp.isfile(done):
            sys.exit(f'error: {method} seed {seed} failed (exit '
                     f'{child.exitcode}); its log is under {run_dir}')
    with open(done) as f:
        record = json.load(f)
    check_reuse(done, record, settings(args))
    return record


def _train_in_child(args, method: str, seed: int, run_dir: str,
                    done: str) -> None:
    init_default_scope('mmpretrain')
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = run_config(args, method, seed, run_dir)
    start = time.time()
    runner = build_runner(cfg, 'train')
    inputs, targets, counts = build_probe(
        cfg, 4 if args.tiny else args.probe_per_class,
        runner.model.data_preprocessor)
    rare = np.argsort(counts, kind='stable')[:args.rare].tolist()
    probe = ConflictProbe(inputs, targets, rare,
                          2 if args.tiny else args.conflict_interval)
    runner.register_hook(probe)
    runner.train()
    metrics = {k.split('/')[-1]: v for k, v in probe.metrics.items()}
    result = dict(
        method=method, seed=seed, **settings(args),
        params=sum(p.numel() for p in runner.model.parameters()),
        train_counts=counts.tolist(), rare_classes=rare,
        metrics={k: metrics.get(k) for k in METRICS},
        conflict=probe.history, seconds=time.time() - start,
        conflict_seconds=probe.seconds, val_seconds=probe.val_seconds)
    os.makedirs(run_dir, exist_ok=True)
    tmp = done + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(result, f, indent=1)
    os.replace(tmp, done)


def _stat(values: List[float], scale: float = 1.0, digits: int = 3) -> str:
    values = [v * scale for v in values if v is not None and
              not math.isnan(v)]
    if not values:
        return 'n/a'
    if len(values) == 1:
        return f'{values[0]:.{digits}f}'
    mean, std = np.mean(values), np.std(values, ddof=1)
    return f'{mean:.{digits}f} ± {std:.{digits}f}'


def summarise(runs: Dict[str, List[Dict]]) -> str:
    plain_params = runs['plain'][0]['params'] if 'plain' in runs else None
    lines = [
        '| method | params | macro-F1 | balanced acc | few-shot acc | '
        'top-1 | mean neg. cos (final) | conflicting pairs (final) | '
        'rare vs rest cos (final) | rare vs rest cos (mean over training) '
        '| branches: mean neg. cos (final) | attention: from uniform / '
        'spread over classes | many / medium acc | seeds |',
        '|' + ' --- |' * 14
    ]
    for method, group in runs.items():
        params = group[0]['params']
        extra = f' ({100 * (params / plain_params - 1):+.1f}%)' \
            if plain_params and method != 'plain' else ''

        def metric(key):
            # LongTailMetric reports percent; macro-F1 as a fraction, like
            # the abstract.
            return [r['metrics'][key] for r in group]

        def final(key, part='backbone'):
            return [r['conflict'][-1].get(part, {}).get(key) for r in group]

        def over_training(key, part='backbone'):
            return [float(np.nanmean([m[part][key]
                                      for m in r['conflict'][1:]]))
                    for r in group]

        lines.append(
            f'| {method} | {params / 1e6:.3f}M{extra} | '
            f'{_stat(metric("macro_f1"), 0.01)} | '
            f'{_stat(metric("balanced_accuracy"), 1, 1)} | '
            f'{_stat(metric("few_shot_acc"), 1, 1)} | '
            f'{_stat(metric("top1"), 1, 1)} | '
            f'{_stat(final("mean_negative_cosine"))} | '
            f'{_stat(final("conflict_fraction"))} | '
            f'{_stat(final("rare_vs_rest"))} | '
            f'{_stat(over_training("rare_vs_rest"))} | '
            f'{_stat(final("mean_negative_cosine", "branches"))} | '
            f'{_stat(metric("attention_from_uniform"))} / '
            f'{_stat(metric("attention_class_spread"))} | '
            f'{_stat(metric("many_shot_acc"), 1, 1)} / '
            f'{_stat(metric("medium_shot_acc"), 1, 1)} | {len(group)} |')
    p = PAPER
    lines.append(
        '| paper: baseline -> CSBA (abstract) | '
        f'{p["baseline_params"] / 1e6:.2f}M'
        f' -> {p["csba_params"]/1e6:.2f}M (+32.6%) | '
        f'{p["baseline_macro_f1"]} -> {p["csba_macro_f1"]} |' +
        ' |' * 11)
    return '\n'.join(lines)


# Paired differences: per seed, CSBA against the multi-branch network of the
# same size (the test of class-specific attention) and each branched neck
# against the plain head.
COMPARISONS = (('csba', 'multi-branch'), ('csba', 'plain'),
               ('multi-branch', 'plain'))
PAIRED = (('macro-F1 (points)', lambda r: r['metrics']['macro_f1']),
          ('few-shot acc', lambda r: r['metrics']['few_shot_acc']),
          ('many-shot acc', lambda r: r['metrics']['many_shot_acc']),
          ('top-1', lambda r: r['metrics']['top1']),
          ('rare vs rest cos (final)',
           lambda r: r['conflict'][-1]['backbone']['rare_vs_rest']),
          ('conflicting pairs (final)',
           lambda r: r['conflict'][-1]['backbone']['conflict_fraction']))


def _finite(value) -> bool:
    return value is not None and not math.isnan(value)


def paired_table(runs: Dict[str, List[Dict]]) -> str:
    """Per-seed paired differences of the methods (``COMPARISONS``), mean
    and 95% t interval over the seeds both have where the value is finite
    (the pair count is given per cell when a seed had none)."""
    from mmimb.utils import paired_difference
    lines = ['| comparison | ' + ' | '.join(n for n, _ in PAIRED) + ' |',
             '|' + ' --- |' * (len(PAIRED) + 1)]
    for method, baseline in COMPARISONS:
        if method not in runs or baseline not in runs:
            continue
        base = {r['seed']: r for r in runs[baseline]}
        pairs = [(r, base[r['seed']]) for r in runs[method]
                 if r['seed'] in base]
        if not pairs:
            continue
        cells = []
        for _, value in PAIRED:
            kept = [(value(a), value(b)) for a, b in pairs
                    if _finite(value(a)) and _finite(value(b))]
            if not kept:
                cells.append('n/a')
                continue
            cell = str(paired_difference([a for a, _ in kept],
                                         [b for _, b in kept]))
            if 1 < len(kept) < len(pairs):
                cell += f' ({len(kept)} pairs)'
            cells.append(cell)
        lines.append(f'| {method} - {baseline} ({len(pairs)} seeds) | ' +
                     ' | '.join(cells) + ' |')
    return '\n'.join(lines) if len(lines) > 2 else ''


def plot_curves(runs: Dict[str, List[Dict]], path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for method, group in runs.items():
        iters = [m['iteration'] for m in group[0]['conflict']]
        for ax, key in zip(axes, ('mean_negative_cosine', 'rare_vs_rest')):
            values = np.array([[m['backbone'][key] for m in r['conflict']]
                               for r in group], dtype=float)
            mean = np.nanmean(values, 0)
            ax.plot(iters, mean, label=method)
            if len(group) > 1:
                std = np.nanstd(values, 0)
                ax.fill_between(iters, mean - std, mean + std, alpha=0.2)
            ax.set_title(key.replace('_', ' ') + ' (backbone)')
            ax.set_xlabel('iteration')
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None):
    args = parse_args(argv)
    if not osp.isdir(osp.join(args.data_root, 'train')):
        sys.exit(f'error: --data-root {args.data_root!r} has no train/ '
                 'folder; extract it with `tar xzf '
                 '../shared/data/cifar10-jpg.tar.gz -C DIR` and pass '
                 'DIR/cifar10')
    init_default_scope('mmpretrain')
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.time()
    runs = {}
    for method in args.methods:
        for seed in args.seeds:
            print(f'== {method} seed {seed}', flush=True)
            runs.setdefault(method, []).append(train_one(args, method, seed))
    table = summarise(runs)
    header = (f'CIFAR-10-LT IF{args.imbalance} (JPEG), CifarResNet-32, CPU '
              f'schedule, {"CCAR" if args.ccar else "cross-entropy"}; '
              f'conflict on the backbone; rare classes = the {args.rare} '
              'rarest; mean ± std over seeds.')
    text = header + '\n\n' + table + '\n'
    paired = paired_table(runs)
    if paired:
        text += ('\nPaired differences per seed (mean and 95% t interval '
                 'over seeds; accuracies and macro-F1 in points):\n\n' +
                 paired + '\n')
    print(text)
    os.makedirs(args.work_dir, exist_ok=True)
    with open(osp.join(args.work_dir, 'results.md'), 'w') as f:
        f.write(text)
    with open(osp.join(args.work_dir, 'results.json'), 'w') as f:
        json.dump(runs, f, indent=1)
    plot_curves(runs, osp.join(args.work_dir, 'conflict_curves.png'))
    print(f'total {time.time() - start:.0f} s; per run (all / conflict '
          'probe / evaluation): ' + ', '.join(
              f'{r["method"]}/{r["seed"]} {r["seconds"]:.0f}/'
              f'{r["conflict_seconds"]:.0f}/{r["val_seconds"]:.0f} s'
              for group in runs.values() for r in group))


if __name__ == '__main__':
    main()
