"""Gradient Conflict Matrix of a trained checkpoint over a number of batches.

    python tools/analysis_tools/gradient_conflict.py CONFIG CHECKPOINT
        [--num-batches 1] [--mode fast|loop|sketch] [--out DIR]
        [--layers NAME ...] [--classes ID ...] [--loss model|cross_entropy]
        [--norm-stats running|batch] [--split train|val|test] [--seed 0]
        [--sketch-dim 4096] [--device cpu|cuda] [--cfg-options k=v ...]

Batches come from the config's dataloader of ``--split`` (pipeline
included, batch augmentations off), each class's loss (the model's own if
it is per-sample, else cross-entropy) is averaged over all its samples
(pixels) in the batches, and the model runs in eval mode. Layers that
cannot be analysed exactly are left out and listed with the reason. Writes
``gradient_conflict.npz`` (everything: see GradientConflict.to_npz),
``heatmap.png`` and ``layers.png`` (per-layer conflict and gradient flow) to
``--out`` (default ``work_dirs/gradient_conflict/<config name>``) and prints
the summary.
"""
import argparse
import os.path as osp

from mmimb.analysis import conflict_matrix
from mmimb.analysis.class_gradients import MODES, NORM_STATS
from mmimb.analysis.plot import load_results, plot_heatmap, plot_layers
from mmimb.engine.gradient_probe import ProbeLoss, class_names
from mmimb.engine.launch import (add_checkpoint_args,
                                 load_checkpoint_and_batches, run_cli)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Gradient Conflict Matrix of a checkpoint')
    add_checkpoint_args(parser, num_batches=1)
    parser.add_argument('--mode', choices=MODES, default='fast')
    parser.add_argument('--out', help='output folder')
    parser.add_argument(
        '--layers', nargs='+', help='layer or container names (default: '
        'every Linear and Conv layer)')
    parser.add_argument('--classes', nargs='+', type=int,
                        help='class ids to analyse (default: all)')
    parser.add_argument(
        '--loss', choices=['model', 'cross_entropy'], default='model',
        help="the model's own loss if it is per-sample (else cross-entropy), "
        'or cross-entropy')
    parser.add_argument(
        '--norm-stats', choices=NORM_STATS, default='running',
        help='BatchNorm with its running statistics, or with the batch\'s '
        '(as in training; classification then costs one backward per '
        'class)')
    parser.add_argument('--sketch-dim', type=int, default=4096,
                        help='the sketch\'s dimension (seeded by --seed)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    model, dataset, batches = load_checkpoint_and_batches(args)
    names = class_names(dataset)
    if args.norm_stats == 'batch':
        model.train()
    loss = ProbeLoss(None if args.loss == 'model' else args.loss)
    merged, probe = loss.class_gradients(
        model, batches,
        warn=lambda message: print(f'warning: {message}'),
        layers=args.layers,
        classes=args.classes,
        mode=args.mode,
        statistic='gram' if len(batches) == 1 else 'grads',
        sketch_dim=args.sketch_dim,
        seed=args.seed,
        norm_stats=args.norm_stats,
        on_failure='skip')
    seen = len(batches)
    if names is not None and len(names) != probe.num_classes:
        names = None
    result = conflict_matrix(merged)

    out = args.out or osp.join(
        'work_dirs', 'gradient_conflict',
        osp.splitext(osp.basename(args.config))[0])
    path = osp.join(out, 'gradient_conflict.npz')
    result.to_npz(path, class_names=names, num_batches=seen, mode=args.mode,
                  checkpoint=osp.abspath(args.checkpoint), loss=loss.name,
                  norm_stats=args.norm_stats)
    row_names = None if names is None else [
        names[c] for c in result.classes.tolist()]
    plot_heatmap(result.matrix.cpu().numpy(), osp.join(out, 'heatmap.png'),
                 class_names=row_names,
                 title=f'Gradient Conflict Matrix, {seen} batches')
    plot_layers(load_results([path])[0], osp.join(out, 'layers.png'),
                class_names=row_names)
    print_summary(result, names, loss.name)
    print(f'saved {path}, heatmap.png and layers.png in {out}')


def print_summary(result, names=None, loss='cross_entropy') -> None:
    ids = result.classes.tolist()
    labels = [names[c] for c in ids] if names else [str(c) for c in ids]
    print(f'{len(result.layers)} layers, {int(result.present.sum())} of '
          f'{len(labels)} classes present, loss {loss}; '
          f'{result.coverage.describe(limit=len(result.skipped))}')
    for key, value in result.summary().items():
        print(f'  {key:22s} {value: .4f}')
    if result.absent_classes:
        print('  absent (NaN): ' + ', '.join(
            labels[i] for i, p in enumerate(result.present.tolist())
            if not p))
    print('conflict of each class with the other classes, '
          'cos(g_c, sum of the others):')
    order = result.class_conflict.nan_to_num(2.0).argsort().tolist()
    for i in order:
        if result.present[i]:
            print(f'  {labels[i]:20s} {result.class_conflict[i].item(): .4f}'
                  f'  (n={int(result.counts[i])})')


if __name__ == '__main__':
    run_cli(main)
