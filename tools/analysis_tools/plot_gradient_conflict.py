"""Figures from saved Gradient Conflict Matrices (GradientConflictHook's
``iter_<N>.npz`` files or gradient_conflict.py's output).

    python tools/analysis_tools/plot_gradient_conflict.py INPUT [INPUT ...]
        [--out DIR] [--class-names NAME ...] [--iterations N ...]

INPUT: ``.npz`` files or folders of them. Writes to ``--out`` (default: the
first input's folder):

- ``heatmap_iter_<N>.png``: the matrix with class names on the axes, for the
  last result or each of ``--iterations``;
- ``layers_iter_<N>.png``: per-layer conflict curves (fraction of
  conflicting pairs, mean cosines) and per-class gradient norms per layer;
- ``evolution.png`` (two results or more): whole-model summaries and each
  class's conflict with the other classes over training.
"""
import argparse
import os.path as osp

from mmimb.analysis.plot import (find_results, load_results, plot_evolution,
                                 plot_heatmap, plot_layers)
from mmimb.engine.config_check import ConfigError
from mmimb.engine.launch import run_cli


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Plot saved Gradient Conflict Matrices')
    parser.add_argument('inputs', nargs='+', help='.npz files or folders')
    parser.add_argument('--out', help='output folder')
    parser.add_argument(
        '--class-names', nargs='+',
        help='class names, if the files do not hold them')
    parser.add_argument(
        '--iterations', nargs='+', type=int,
        help='iterations to draw heatmaps and layer plots of (default: the '
        'last)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    paths = []
    for item in args.inputs:
        if osp.isdir(item):
            found = find_results(item)
            if not found:
                raise ConfigError(f'{item!r} holds no .npz file')
            paths.extend(found)
        elif osp.isfile(item) and item.endswith('.npz'):
            paths.append(item)
        else:
            raise ConfigError(f'{item!r} is neither a .npz file nor a folder')
    results = load_results(paths)
    out = args.out or osp.dirname(osp.abspath(paths[0]))
    size = len(results[0]['classes'])
    names = args.class_names
    if names is None and 'class_names' in results[0]:
        names = [str(n) for n in results[0]['class_names']]
    if names is not None and len(names) != size:
        raise ConfigError(f'--class-names gives {len(names)} names for '
                          f'{size} classes')
    by_iteration = {int(r['iteration']): r for r in results
                    if 'iteration' in r}
    if args.iterations:
        missing = [i for i in args.iterations if i not in by_iteration]
        if missing:
            raise ConfigError(f'no result for iterations {missing}; found '
                              f'{sorted(by_iteration)}')
        chosen = [(i, by_iteration[i]) for i in args.iterations]
    else:
        last = results[-1]
        chosen = [(int(last['iteration']) if 'iteration' in last else
                   len(results) - 1, last)]
    written = []
    for iteration, result in chosen:
        heatmap = osp.join(out, f'heatmap_iter_{iteration}.png')
        plot_heatmap(result['matrix'], heatmap, class_names=names,
                     title=f'Gradient Conflict Matrix, iteration {iteration}')
        layers = osp.join(out, f'layers_iter_{iteration}.png')
        plot_layers(result, layers, class_names=names)
        written += [heatmap, layers]
    if len(results) > 1:
        evolution = osp.join(out, 'evolution.png')
        plot_evolution(results, evolution, class_names=names)
        written.append(evolution)
    for path in written:
        print(f'wrote {path}')


if __name__ == '__main__':
    run_cli(main)
