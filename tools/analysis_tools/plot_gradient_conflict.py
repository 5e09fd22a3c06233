"""Figures from saved Gradient Conflict Matrices (GradientConflictHook's
``iter_<N>.npz`` files or gradient_conflict.py's output), for one run or
several side by side.

    python tools/analysis_tools/plot_gradient_conflict.py RUN [RUN ...]
        [--labels NAME ...] [--out DIR] [--class-names NAME ...]
        [--iterations N ...]

RUN: a folder of ``.npz`` files (one run) or one ``.npz`` file. Writes to
``--out`` (default: the first run's folder):

- ``heatmap_iter_<N>.png``: the matrix with class names on the axes, for the
  last result or each of ``--iterations`` (with several runs
  ``heatmap_<label>_iter_<N>.png`` for each run);
- ``layers_iter_<N>.png`` (``layers_<label>_iter_<N>.png``): per-layer
  conflict curves (fraction of conflicting pairs, mean cosines) and
  per-class gradient norms per layer;
- ``evolution.png`` (two results or more): one run: whole-model summaries
  and each class's conflict with the other classes over training; several
  runs: one curve per run for each summary and for the mean conflict of
  the classes with the rest and with the count-weighted gradient.
"""
import argparse
import os.path as osp

from mmimb.analysis.plot import (find_results, load_results, plot_evolution,
                                 plot_heatmap, plot_layers, plot_runs)
from mmimb.engine.config_check import ConfigError
from mmimb.engine.launch import run_cli


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Plot saved Gradient Conflict Matrices')
    parser.add_argument('inputs', nargs='+',
                        help='runs: folders of .npz files, or .npz files')
    parser.add_argument('--labels', nargs='+',
                        help='one name per run (default: folder names)')
    parser.add_argument('--out', help='output folder')
    parser.add_argument(
        '--class-names', nargs='+',
        help='class names, if the files do not hold them')
    parser.add_argument(
        '--iterations', nargs='+', type=int,
        help='iterations to draw heatmaps and layer plots of (default: the '
        'last)')
    return parser.parse_args(argv)


def _run_paths(item: str):
    if osp.isdir(item):
        found = find_results(item)
        if not found:
            raise ConfigError(f'{item!r} holds no .npz file')
        return found
    if osp.isfile(item) and item.endswith('.npz'):
        return [item]
    raise ConfigError(f'{item!r} is neither a .npz file nor a folder')


def _default_label(item: str) -> str:
    path = osp.abspath(item)
    name = osp.basename(path)
    if osp.isdir(path) and name == 'gradient_conflict':
        # The hook's folder: <work_dir>/<timestamp>/gradient_conflict.
        return osp.basename(osp.dirname(osp.dirname(path)))
    return name if osp.isdir(path) else osp.splitext(name)[0]


def _names(args, results):
    size = len(results[0]['classes'])
    names = args.class_names
    if names is None and 'class_names' in results[0]:
        names = [str(n) for n in results[0]['class_names']]
    if names is not None and len(names) != size:
        raise ConfigError(f'--class-names gives {len(names)} names for '
                          f'{size} classes')
    return names


def _chosen(args, results, label):
    by_iteration = {int(r['iteration']): r for r in results
                    if 'iteration' in r}
    if args.iterations:
        missing = [i for i in args.iterations if i not in by_iteration]
        if missing:
            raise ConfigError(f'run {label!r} has no result for iterations '
                              f'{missing}; found {sorted(by_iteration)}')
        return [(i, by_iteration[i]) for i in args.iterations]
    last = results[-1]
    return [(int(last['iteration']) if 'iteration' in last else
             len(results) - 1, last)]


def main(argv=None):
    args = parse_args(argv)
    labels = args.labels or [_default_label(i) for i in args.inputs]
    if len(labels) != len(args.inputs):
        raise ConfigError(f'--labels gives {len(labels)} names for '
                          f'{len(args.inputs)} runs')
    if len(set(labels)) != len(labels):
        labels = [osp.abspath(i) for i in args.inputs]
    runs = {label: load_results(_run_paths(item))
            for label, item in zip(labels, args.inputs)}
    out = args.out or osp.dirname(osp.abspath(_run_paths(args.inputs[0])[0]))
    several = len(runs) > 1
    written = []
    for label, results in runs.items():
        names = _names(args, results)
        tag = f'{label}_' if several else ''
        for iteration, result in _chosen(args, results, label):
            heatmap = osp.join(out, f'heatmap_{tag}iter_{iteration}.png')
            plot_heatmap(result['matrix'], heatmap, class_names=names,
                         title=f'Gradient Conflict Matrix, {label}, '
                         f'iteration {iteration}' if several else
                         f'Gradient Conflict Matrix, iteration {iteration}')
            layers = osp.join(out, f'layers_{tag}iter_{iteration}.png')
            plot_layers(result, layers, class_names=names)
            written += [heatmap, layers]
    evolution = osp.join(out, 'evolution.png')
    if several:
        plot_runs(runs, evolution)
        written.append(evolution)
    elif len(next(iter(runs.values()))) > 1:
        results = next(iter(runs.values()))
        plot_evolution(results, evolution, class_names=_names(args, results))
        written.append(evolution)
    for path in written:
        print(f'wrote {path}')


if __name__ == '__main__':
    run_cli(main)
