"""Plot the DFA bias per class over training, from the scalars that
DFABiasLoggerHook put into a run's JSON log.

    python tools/analysis_tools/plot_dfa_bias.py RUN [--out PNG]

RUN is a work dir (its newest ``*/vis_data/scalars.json`` is read) or a
``scalars.json`` file. Writes the plot (default ``dfa_bias.png`` beside the
JSON), one panel per logged quantity (the raw bias ``dfa_bias``, the
centred bias ``dfa_bias_centred``, an anchored bias's ``dfa_delta``) and
per layer or head where the bias has several, and prints the first and last
value per class.
"""
import argparse
import glob
import json
import os.path as osp
from typing import Dict, List, Tuple

from mmimb.engine.config_check import ConfigError
from mmimb.engine.launch import run_cli

PREFIXES = ('dfa_bias/', 'dfa_bias_centred/', 'dfa_delta/')


def find_scalars(run: str) -> str:
    if osp.isfile(run):
        return run
    found = sorted(glob.glob(osp.join(run, '*', 'vis_data', 'scalars.json')))
    if not found:
        raise ConfigError(f'no */vis_data/scalars.json under {run!r}; pass '
                          'a training work dir or a scalars.json file')
    return found[-1]


def read_trajectories(path: str) -> Dict[str, List[Tuple[int, float]]]:
    """``{key: [(step, value), ...]}`` for every logged DFA bias key."""
    series: Dict[str, List[Tuple[int, float]]] = {}
    with open(path) as f:
        for line_no, line in enumerate(f, 1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise ConfigError(f'{path}:{line_no} is not a JSON line')
            for key, value in row.items():
                if key.startswith(PREFIXES):
                    series.setdefault(key, []).append(
                        (row.get('step', row.get('iter')), value))
    if not series:
        raise ConfigError(
            f'{path!r} holds no dfa_bias/* scalars; train with '
            "custom_hooks=[dict(type='DFABiasLoggerHook')] (the DFA configs "
            'do)')
    return series


def plot(series: Dict[str, List[Tuple[int, float]]], out: str,
         title: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    # One panel per quantity (and layer or head), one line per class.
    panels = sorted({key.rsplit('/', 1)[0] for key in series})
    fig, axes = plt.subplots(
        1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        for key, points in series.items():
            if key.rsplit('/', 1)[0] == panel:
                steps, values = zip(*points)
                ax.plot(steps, values, label=key.rsplit('/', 1)[1])
        ax.axhline(0, color='0.7', lw=0.8)
        ax.set_xlabel('iteration')
        ax.set_ylabel(panel)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main(argv=None) -> Dict[str, List[Tuple[int, float]]]:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('run', help='work dir or scalars.json')
    parser.add_argument('--out', help='PNG to write')
    args = parser.parse_args(argv)
    path = find_scalars(args.run)
    series = read_trajectories(path)
    out = args.out or osp.join(osp.dirname(path), 'dfa_bias.png')
    plot(series, out, osp.relpath(path))
    width = max(map(len, series))
    for key, points in series.items():
        print(f'{key:<{width}}  {points[0][1]:+.4f} -> {points[-1][1]:+.4f}')
    print(f'wrote {out}')
    return series


if __name__ == '__main__':
    run_cli(main)
