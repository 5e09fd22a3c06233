"""Does DFA help, along the learning curve, and does its learned bias track
difficulty or frequency?

    python tools/evidence/dfa_synthetic.py
        [--config
         configs/dfa/dfa_mit-b0_1xb8-300it_synthetic-tissue-crossed-128x128.py]
        [--modes none fixed learned anchored] [--seeds 0 1 2 3 4]
        [--iters 1200] [--curve-every 150] [--threads N] [--jobs N]
        [--work-dir work_dirs/evidence/dfa_synthetic] [--cfg-options ...]

For every bias mode and seed it trains the config once, in its own process,
for ``--iters`` iterations (the CPU configs' warm-up and linear decay
stretched to that length), keeps a checkpoint every ``--curve-every``
iterations, and evaluates each on the validation split per class (Dice and
IoU over the whole split, as tools/analysis_tools/class_difficulty.py
does). It prints (and writes to WORK_DIR/summary.md and summary.json):

- per-class IoU, mIoU and mDice at the end, mean and standard deviation
  over seeds, and each mode's paired difference to bias ``none`` (per seed,
  then mean and 95% t interval);
- the learning curve: mIoU, and the IoU of the rare classes (frequency below
  0.1), of each mode at every checkpoint, with the paired differences to
  ``none``;
- for the learned modes, the Spearman correlation of the final ``delta``,
  and of its change during training, with the class frequency, the
  measured difficulty (for generated tissue: each class's largest
  appearance overlap with another class,
  :func:`mmimb.datasets.appearance_overlap`) and the baseline's ``1 -
  Dice`` of bias ``none`` at the end (the paper's Fig. 3).

Finished runs are reused, so an interrupted sweep continues where it
stopped. The EBHI-Seg comparison is the same command with
``--config configs/dfa/dfa_mit-b0_1xb8-300it_ebhi-seg-224x224.py`` (and the
data roots through ``--cfg-options``).
"""
import argparse
import json
import os
import os.path as osp
import statistics
import sys
from typing import Dict, List, Optional, Sequence

import numpy as np

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path[:0] = [ROOT, osp.dirname(osp.abspath(__file__))]

from sweep import (Run, add_sweep_args, check_reuse,  # noqa: E402
                   current_config_name, run_all, sweep_env)

MODES = ('none', 'fixed', 'learned', 'anchored')
RARE = 0.1


def run_options(mode: str, seed: int, iters: int, every: int) -> List[str]:
    """The run's settings; the schedule is the CPU configs' warm-up then
    linear decay (schedule_cpu_demo.py), stretched to ``iters``."""
    warmup = max(1, min(20, iters // 10))
    return [
        f'model.decode_head.bias_mode={mode}',
        f'randomness.seed={seed}',
        f'train_cfg.max_iters={iters}',
        f'train_cfg.val_interval={iters + 1}',
        f'param_scheduler.0.end={warmup}',
        f'param_scheduler.1.begin={warmup}',
        f'param_scheduler.1.end={iters}',
        f'default_hooks.checkpoint.interval={every}',
        'default_hooks.checkpoint.max_keep_ckpts=-1',
        'default_hooks.checkpoint.save_optimizer=False',
        'default_hooks.checkpoint.save_best=None',
    ]


def curve_points(iters: int, every: int) -> List[int]:
    return sorted({*range(every, iters + 1, every), iters})


def run_dir(args, mode: str, seed: int) -> str:
    return osp.join(args.work_dir, f'{mode}_seed{seed}')


def bias_vectors(model) -> dict:
    """The learned part ``delta`` and the effective bias ``b`` of the
    decode head, each averaged over heads and layers and centred (only
    differences between classes act); ``None`` where absent."""
    head = model.decode_head
    deltas, biases = [], []
    for _, module in head.dfa_biases():
        if module.delta is not None:
            deltas.append(module.delta.detach().float().mean(0))
        bias = module()
        if bias is not None:
            biases.append(bias.detach().float().mean(0))

    def centred(vectors):
        if not vectors:
            return None
        v = sum(vectors) / len(vectors)
        return (v - v.mean()).tolist()

    return dict(delta=centred(deltas), bias=centred(biases))


def run_single(args) -> None:
    """Train one (mode, seed), evaluate its checkpoints, write
    result.json."""
    import time

    import torch
    from mmengine.runner import Runner

    from mmimb.cli.train import parse_args as train_args
    from mmimb.engine.launch import build_runner, load_config
    from mmimb.evaluation import evaluate_class_scores
    if args.threads:
        torch.set_num_threads(args.threads)
    work = run_dir(args, args.mode, args.seed)
    options = run_options(args.mode, args.seed, args.iters,
                          args.curve_every) + args.cfg_options
    cfg = load_config(
        args.config,
        train_args([args.config, '--work-dir', work, '--cfg-options',
                    *options]))
    runner = build_runner(cfg, 'train')
    start = time.perf_counter()
    runner.train()
    train_seconds = time.perf_counter() - start
    loader = Runner.build_dataloader(cfg.val_dataloader)
    curve = []
    for point in curve_points(args.iters, args.curve_every):
        checkpoint = osp.join(work, f'iter_{point}.pth')
        runner.load_checkpoint(checkpoint, map_location='cpu')
        scores = evaluate_class_scores(runner.model, loader)
        curve.append(dict(iter=point, iou=scores['iou'],
                          dice=scores['dice'], **bias_vectors(runner.model)))
        if point != args.iters:
            os.remove(checkpoint)
    result = dict(mode=args.mode, seed=args.seed, classes=scores['classes'],
                  curve=curve, train_seconds=train_seconds,
                  threads=torch.get_num_threads(), **settings(args))
    tmp = osp.join(work, 'result.json.tmp')
    with open(tmp, 'w') as f:
        json.dump(result, f, indent=1)
    os.replace(tmp, osp.join(work, 'result.json'))


def settings(args) -> dict:
    """What a finished run must share with this sweep to be reused."""
    return dict(config=args.config, iters=args.iters,
                curve_every=args.curve_every,
                cfg_options=list(args.cfg_options))


def finished(args, mode: str, seed: int) -> Optional[dict]:
    """The result of a finished (mode, seed) run, None if there is none;
    stops the sweep if it was made with other settings. Results written
    before the settings were stored are checked on their curve's
    iterations."""
    path = osp.join(run_dir(args, mode, seed), 'result.json')
    if not osp.isfile(path):
        return None
    with open(path) as f:
        result = json.load(f)
    record = dict(result, curve_points=[c['iter'] for c in result['curve']])
    # Runs recorded before the configs were renamed name the old file
    # (sweep.RENAMED_CONFIGS): the same config.
    if 'config' in result:
        record['config'] = current_config_name(result['config'])
    else:
        # The runner dumped the config it trained beside the result, under
        # the config's file name.
        dumps = sorted(current_config_name(f)
                       for f in os.listdir(osp.dirname(path))
                       if f.endswith('.py'))
        record['config'] = args.config \
            if osp.basename(args.config) in dumps else \
            ', '.join(dumps) or 'unknown (no config dump beside it)'
        if args.cfg_options:
            print(f'warning: {path} was written before the settings were '
                  'stored; its --cfg-options cannot be checked', flush=True)
    check_reuse(path, record,
                dict(settings(args),
                     curve_points=curve_points(args.iters,
                                               args.curve_every)))
    return result


def single_command(args, mode: str, seed: int) -> List[str]:
    command = [
        sys.executable,
        osp.abspath(__file__), '--single', '--mode', mode, '--seed',
        str(seed), '--config', args.config, '--iters',
        str(args.iters), '--curve-every',
        str(args.curve_every), '--work-dir', args.work_dir
    ]
    if args.threads:
        command += ['--threads', str(args.threads)]
    if args.cfg_options:
        command += ['--cfg-options', *args.cfg_options]
    return command


def dataset_statistics(config: str, cfg_options: List[str]) -> dict:
    """Class names, training-set frequencies and, for generated tissue, the
    measured difficulty, as the runs see them."""
    from mmimb.cli.train import parse_args
    from mmimb.datasets import (TissueGenerator, appearance_overlap,
                                class_frequencies, measured_difficulty)
    from mmimb.engine import load_config
    options = ['--cfg-options', *cfg_options] if cfg_options else []
    cfg = load_config(config, parse_args([config, *options]))
    dataset = cfg.train_dataloader.dataset
    stats = class_frequencies(dataset, default_scope='mmseg')
    difficulty = None
    if dataset.get('type') == 'SyntheticTissueDataset':
        kwargs = {k: dataset[k] for k in ('img_size', 'noise_std')
                  if k in dataset}
        generator = TissueGenerator(
            dataset.get('class_specs') or TissueGenerator().specs, **kwargs)
        difficulty = measured_difficulty(
            appearance_overlap(generator)).tolist()
    return dict(freq=list(stats.frequencies), difficulty=difficulty,
                head=cfg.model.decode_head)


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    from scipy.stats import spearmanr
    return float(spearmanr(a, b).statistic)


def mean_sd(values: Sequence[float], scale: float = 1.0) -> str:
    values = [scale * v for v in values]
    if len(values) == 1:
        return f'{values[0]:.2f}'
    return f'{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}'


def paired(runs: List[dict], base: List[dict], value) -> str:
    """Paired difference ``value(run) - value(baseline run)`` over the seeds
    both have, in points."""
    from mmimb.utils import paired_difference
    by_seed = {r['seed']: r for r in base}
    pairs = [(r, by_seed[r['seed']]) for r in runs if r['seed'] in by_seed]
    if not pairs:
        return 'n/a'
    return str(paired_difference([100 * value(a) for a, _ in pairs],
                                 [100 * value(b) for _, b in pairs]))


def at(run: dict, point: Optional[int] = None) -> dict:
    """The curve entry of ``run`` at iteration ``point`` (default: last)."""
    if point is None:
        return run['curve'][-1]
    return next(c for c in run['curve'] if c['iter'] == point)


def initial_delta(mode: str, head: dict, freq: List[float]) -> np.ndarray:
    from mmimb.models.layers import class_prior
    if mode == 'anchored':
        return np.zeros(len(freq))
    p = class_prior(head.prior, len(freq), class_freq=freq,
                    gamma=head.gamma).numpy()
    return head.init_scale * (p - p.mean())


def summarise(results: Dict[str, List[dict]], stats: dict) -> str:
    first = next(iter(results.values()))[0]
    classes = first['classes']
    seeds = sorted({r['seed'] for runs in results.values() for r in runs})
    last = first['curve'][-1]['iter']
    lines = [f'Validation IoU (%) at iteration {last}, mean ± sd over seeds '
             f'{seeds}:', '',
             '| mode | ' + ' | '.join(classes) + ' | mIoU | mDice |',
             '|' + ' --- |' * (len(classes) + 3)]
    for mode, runs in results.items():
        cells = [mean_sd([at(r)['iou'][c] for r in runs], 100)
                 for c in range(len(classes))]
        cells.append(mean_sd([np.mean(at(r)['iou']) for r in runs], 100))
        cells.append(mean_sd([np.mean(at(r)['dice']) for r in runs], 100))
        lines.append(f'| {mode} | ' + ' | '.join(cells) + ' |')
    base = results.get('none')
    others = [m for m in results if m != 'none']
    if base and others:
        lines += ['', f'Paired difference to bias none at iteration {last} '
                  '(IoU points; mean [95% t interval] over seeds):', '',
                  '| mode | ' + ' | '.join(classes) + ' | mIoU |',
                  '|' + ' --- |' * (len(classes) + 2)]
        for mode in others:
            cells = [paired(results[mode], base,
                            lambda r, c=c: at(r)['iou'][c])
                     for c in range(len(classes))]
            cells.append(paired(results[mode], base,
                                lambda r: np.mean(at(r)['iou'])))
            lines.append(f'| {mode} | ' + ' | '.join(cells) + ' |')

    points = [c['iter'] for c in first['curve']]
    rare = [c for c, f in enumerate(stats['freq']) if f < RARE]
    if len(points) > 1:
        focus = [('mIoU', lambda r, p: np.mean(at(r, p)['iou']))] + [
            (f'{classes[c]} IoU', lambda r, p, c=c: at(r, p)['iou'][c])
            for c in rare
        ]
        for name, value in focus:
            lines += ['', f'Learning curve, {name} (%): mean ± sd, and the '
                      'paired difference to none [95% t interval]:', '',
                      '| iteration | ' + ' | '.join(results) + ' | ' +
                      ' | '.join(f'{m} - none' for m in others
                                 if base) + ' |',
                      '|' + ' --- |' * (1 + len(results) +
                                        (len(others) if base else 0))]
            for p in points:
                cells = [mean_sd([value(r, p) for r in runs], 100)
                         for runs in results.values()]
                if base:
                    cells += [paired(results[m], base,
                                     lambda r, p=p: value(r, p))
                              for m in others]
                lines.append(f'| {p} | ' + ' | '.join(cells) + ' |')

    targets = {'frequency': stats['freq']}
    if stats['difficulty'] is not None:
        targets['measured difficulty'] = stats['difficulty']
    if base:
        targets['baseline 1 - Dice'] = list(1 - np.mean(
            [at(r)['dice'] for r in base], axis=0))
    learned = {m: rs for m, rs in results.items() if at(rs[0])['delta']}
    if learned:
        lines += ['', '| mode | quantity | ' + ' | '.join(
            f'Spearman with {t}' for t in targets) + ' |',
                  '|' + ' --- |' * (len(targets) + 2)]
        for mode, runs in learned.items():
            start = initial_delta(mode, stats['head'], stats['freq'])
            start = start - start.mean()
            for name, vectors in (
                    ('final delta', [np.array(at(r)['delta'])
                                     for r in runs]),
                    ('delta change', [np.array(at(r)['delta']) - start
                                      for r in runs])):
                cells = [mean_sd([spearman(v, t) for v in vectors])
                         for t in targets.values()]
                lines.append(f'| {mode} | {name} | ' + ' | '.join(cells) +
                             ' |')
        lines.append('')
        lines.append('Final centred bias b per class (what acts), mean over '
                     'seeds: ' + '; '.join(
                         f'{mode}: ' + ', '.join(
                             f'{c} {v:+.3f}' for c, v in zip(
                                 classes, np.mean([at(r)['bias']
                                                   for r in runs], axis=0)))
                         for mode, runs in learned.items()))
    lines.append('')
    lines.append('Training-set frequency: ' + ', '.join(
        f'{c} {f:.3f}' for c, f in zip(classes, stats['freq'])) + (
            '; measured difficulty (largest 8x8 overlap): ' + ', '.join(
                f'{c} {d:.2f}' for c, d in zip(classes, stats['difficulty']))
            if stats['difficulty'] is not None else ''))
    return '\n'.join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--config',
        default='configs/dfa/'
        'dfa_mit-b0_1xb8-300it_synthetic-tissue-crossed-128x128.py')
    parser.add_argument('--modes', nargs='+', default=list(MODES),
                        choices=MODES)
    parser.add_argument('--seeds', nargs='+', type=int,
                        default=[0, 1, 2, 3, 4])
    parser.add_argument('--iters', type=int, default=1200)
    parser.add_argument('--curve-every', type=int, default=150,
                        help='evaluate a checkpoint every N iterations')
    parser.add_argument('--work-dir', default='work_dirs/evidence/'
                        'dfa_synthetic')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='extra key=value options for every run')
    add_sweep_args(parser)
    parser.add_argument('--single', action='store_true',
                        help=argparse.SUPPRESS)
    parser.add_argument('--mode', choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument('--seed', type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.iters < 1 or not 1 <= args.curve_every <= args.iters:
        parser.error('--iters and --curve-every must be positive, '
                     '--curve-every at most --iters')
    args.config = osp.relpath(osp.abspath(args.config), ROOT)
    args.work_dir = osp.abspath(args.work_dir)
    return args


def main(argv: Optional[List[str]] = None) -> Optional[str]:
    args = parse_args(argv)
    if args.single:
        run_single(args)
        return None
    runs = [
        Run(f'{mode} seed {seed}', single_command(args, mode, seed),
            osp.join(run_dir(args, mode, seed), 'train.out'))
        for mode in args.modes for seed in args.seeds
        if finished(args, mode, seed) is None
    ]
    run_all(runs, args.jobs, sweep_env(args.threads, PYTHONPATH=ROOT), ROOT)
    results = {mode: [finished(args, mode, seed) for seed in args.seeds]
               for mode in args.modes}
    summary = summarise(
        results, dataset_statistics(osp.join(ROOT, args.config),
                                    args.cfg_options))
    command = ' '.join(['python tools/evidence/dfa_synthetic.py'] +
                       (argv if argv is not None else sys.argv[1:]))
    summary = f'{args.config}, {args.iters} iterations, command: ' \
        f'{command}\n\n{summary}'
    with open(osp.join(args.work_dir, 'summary.md'), 'w') as f:
        f.write(summary + '\n')
    with open(osp.join(args.work_dir, 'summary.json'), 'w') as f:
        json.dump(results, f, indent=1)
    print(summary)
    return summary


if __name__ == '__main__':
    main()
