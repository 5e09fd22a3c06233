"""Does DFA help, and does its learned bias track difficulty or frequency?

    python tools/evidence/dfa_synthetic.py
        [--config configs/dfa/dfa_tiny_synthetic.py]
        [--modes none fixed learned anchored] [--seeds 0 1 2] [--iters 300]
        [--work-dir work_dirs/evidence/dfa_synthetic] [--cfg-options ...]

For every bias mode and seed it trains the config through tools/train.py
(one process per run, one thread), evaluates the final checkpoint per class
on the validation split with tools/analysis_tools/class_difficulty.py, and
prints (and writes to WORK_DIR/summary.md and summary.json):

- per-class IoU, mIoU and mDice, mean and standard deviation over seeds;
- for the learned modes, the Spearman correlation of the final delta, and of
  its change during training, with the known difficulty (the synthetic
  generator's ``class_difficulty``, when the dataset has one), with the
  training-set class frequency, and with the baseline's difficulty
  ``1 - Dice`` of bias ``none`` (the paper's Fig. 3), mean and standard
  deviation over seeds.

Finished runs are reused, so an interrupted sweep continues where it
stopped. The EBHI-Seg comparison is the same command with
``--config configs/dfa/dfa_tiny_ebhi_seg.py --cfg-options
train_dataloader.dataset.data_root=DIR val_dataloader.dataset.data_root=DIR
test_dataloader.dataset.data_root=DIR``.
"""
import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

from mmimb.models.layers import class_prior  # noqa: E402

MODES = ('none', 'fixed', 'learned', 'anchored')


def run_options(mode: str, seed: int, iters: int, work: str) -> List[str]:
    """The run's settings; the schedule is the CPU configs' warm-up then
    linear decay (schedule_cpu_demo.py), stretched to ``iters``."""
    warmup = max(1, min(20, iters // 10))
    return [
        f'model.decode_head.bias_mode={mode}',
        f'randomness.seed={seed}',
        f'train_cfg.max_iters={iters}',
        f'train_cfg.val_interval={iters}',
        f'param_scheduler.0.end={warmup}',
        f'param_scheduler.1.begin={warmup}',
        f'param_scheduler.1.end={iters}',
        f'default_hooks.checkpoint.interval={iters}',
        f'visualizer.name=evidence_{osp.basename(work)}',
    ]


def run(cmd: Sequence[str], log: str) -> None:
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1',
               MKL_NUM_THREADS='1')
    with open(log, 'w') as f:
        done = subprocess.run(list(cmd), stdout=f, stderr=subprocess.STDOUT,
                              env=env, cwd=ROOT)
    if done.returncode:
        sys.exit(f'failed ({done.returncode}): {" ".join(cmd)}; see {log}')


def train_and_evaluate(args, mode: str, seed: int) -> dict:
    work = osp.join(args.work_dir, f'{mode}_seed{seed}')
    result_file = osp.join(work, 'result.json')
    if osp.isfile(result_file):
        with open(result_file) as f:
            return json.load(f)
    os.makedirs(work, exist_ok=True)
    options = run_options(mode, seed, args.iters, work) + args.cfg_options
    checkpoint = osp.join(work, f'iter_{args.iters}.pth')
    if not osp.isfile(checkpoint):
        run([sys.executable, 'tools/train.py', args.config, '--work-dir',
             work, '--cfg-options', *options], osp.join(work, 'train.out'))
    dice_file = osp.join(work, 'class_dice.json')
    run([sys.executable, 'tools/analysis_tools/class_difficulty.py',
         args.config, checkpoint, '--split', 'val', '--out', dice_file,
         '--work-dir', osp.join(work, 'eval'), '--cfg-options', *options],
        osp.join(work, 'eval.out'))
    with open(dice_file) as f:
        scores = json.load(f)
    state = torch.load(checkpoint, map_location='cpu',
                       weights_only=False)['state_dict']
    deltas = [v for k, v in state.items() if k.endswith('dfa_delta')]
    result = dict(
        mode=mode,
        seed=seed,
        classes=scores['classes'],
        iou=scores['iou'],
        dice=scores['dice'],
        delta=deltas[0].float().mean(0).tolist() if deltas else None)
    with open(result_file, 'w') as f:
        json.dump(result, f, indent=1)
    return result


def dataset_statistics(config: str, cfg_options: List[str]) -> dict:
    """Class names, training-set frequencies and the generator's known
    difficulty (``None`` for real data), as the runs see them."""
    from mmimb.cli.train import parse_args
    from mmimb.datasets import class_frequencies
    from mmimb.engine import load_config
    options = ['--cfg-options', *cfg_options] if cfg_options else []
    cfg = load_config(config, parse_args([config, *options]))
    stats = class_frequencies(
        cfg.train_dataloader.dataset, default_scope='mmseg')
    difficulty = None
    specs = cfg.train_dataloader.dataset.get('class_specs')
    if specs:
        difficulty = [s['difficulty'] for s in specs]
    return dict(
        freq=list(stats.frequencies),
        difficulty=difficulty,
        head=cfg.model.decode_head)


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    from scipy.stats import spearmanr
    return float(spearmanr(a, b).statistic)


def mean_sd(values: Sequence[float], scale: float = 1.0) -> str:
    values = [scale * v for v in values]
    if len(values) == 1:
        return f'{values[0]:.2f}'
    return f'{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}'


def initial_delta(mode: str, head: dict, freq: List[float]) -> np.ndarray:
    if mode == 'anchored':
        return np.zeros(len(freq))
    p = class_prior(head.prior, len(freq), class_freq=freq,
                    gamma=head.gamma).numpy()
    return head.init_scale * (p - p.mean())


def summarise(results: Dict[str, List[dict]], stats: dict) -> str:
    classes = next(iter(results.values()))[0]['classes']
    lines = ['| mode | ' + ' | '.join(classes) + ' | mIoU | mDice |',
             '|' + ' --- |' * (len(classes) + 3)]
    for mode, runs in results.items():
        cells = [mean_sd([r['iou'][c] for r in runs], 100)
                 for c in range(len(classes))]
        cells.append(mean_sd([np.mean(r['iou']) for r in runs], 100))
        cells.append(mean_sd([np.mean(r['dice']) for r in runs], 100))
        lines.append(f'| {mode} | ' + ' | '.join(cells) + ' |')
    lines.append('')
    seeds = sorted({r['seed'] for runs in results.values() for r in runs})
    lines.append('Per-class IoU (%) on the validation split, mean ± sd over '
                 f'seeds {seeds}.')

    targets = {'frequency': stats['freq']}
    if stats['difficulty'] is not None:
        targets['known difficulty'] = stats['difficulty']
    if 'none' in results:
        targets['baseline 1 - Dice'] = list(1 - np.mean(
            [r['dice'] for r in results['none']], axis=0))
    learned = {m: rs for m, rs in results.items() if rs[0]['delta']}
    if learned:
        lines += ['', '| mode | quantity | ' + ' | '.join(
            f'Spearman with {t}' for t in targets) + ' |',
                  '|' + ' --- |' * (len(targets) + 2)]
        for mode, runs in learned.items():
            start = initial_delta(mode, stats['head'], stats['freq'])
            for name, vectors in (
                    ('final delta', [np.array(r['delta']) for r in runs]),
                    ('delta change', [np.array(r['delta']) - start
                                      for r in runs])):
                cells = [mean_sd([spearman(v, t) for v in vectors])
                         for t in targets.values()]
                lines.append(f'| {mode} | {name} | ' + ' | '.join(cells) +
                             ' |')
        lines.append('')
        lines.append('Final delta per class, mean over seeds: ' + '; '.join(
            f'{mode}: ' + ', '.join(
                f'{c} {v:+.3f}' for c, v in zip(
                    classes, np.mean([r['delta'] for r in runs], axis=0)))
            for mode, runs in learned.items()))
    lines.append('')
    lines.append('Training-set frequency: ' + ', '.join(
        f'{c} {f:.3f}' for c, f in zip(classes, stats['freq'])) + (
            '; known difficulty: ' + ', '.join(
                f'{c} {d:.2f}' for c, d in zip(classes, stats['difficulty']))
            if stats['difficulty'] is not None else ''))
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--config', default='configs/dfa/dfa_tiny_synthetic.py')
    parser.add_argument('--modes', nargs='+', default=list(MODES),
                        choices=MODES)
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    parser.add_argument('--iters', type=int, default=300)
    parser.add_argument('--work-dir', default='work_dirs/evidence/'
                        'dfa_synthetic')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='extra key=value options for every run')
    args = parser.parse_args(argv)
    args.config = osp.relpath(osp.abspath(args.config), ROOT)
    args.work_dir = osp.abspath(args.work_dir)
    results = {
        mode: [train_and_evaluate(args, mode, seed) for seed in args.seeds]
        for mode in args.modes
    }
    summary = summarise(
        results, dataset_statistics(osp.join(ROOT, args.config),
                                    args.cfg_options))
    command = ' '.join(['python tools/evidence/dfa_synthetic.py'] +
                       (argv or sys.argv[1:]))
    header = f'{args.config}, {args.iters} iterations, command: {command}'
    summary = header + '\n\n' + summary
    with open(osp.join(args.work_dir, 'summary.md'), 'w') as f:
        f.write(summary + '\n')
    with open(osp.join(args.work_dir, 'summary.json'), 'w') as f:
        json.dump(results, f, indent=1)
    print(summary)
    return summary


if __name__ == '__main__':
    main()
