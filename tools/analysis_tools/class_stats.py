"""Count the classes of a config's dataset: a table, a JSON file that model
configs can point to (``class_freq='path.json'``) and a bar plot.

    python tools/analysis_tools/class_stats.py CONFIG [--split train]
        [--out JSON] [--plot PNG] [--workers N] [--no-cache]
        [--cfg-options k=v ...]

Pixels per class for segmentation datasets (label files are streamed, 255
is not counted), samples per class for classification datasets. Results
are cached by dataset fingerprint under $MMIMB_CACHE_DIR (default
~/.cache/mmimb/class_stats).
"""
import argparse
import os.path as osp
import tempfile

from mmengine.config import Config, DictAction

from mmimb.datasets import ClassStats, class_frequencies
from mmimb.engine.config_check import ConfigError, infer_scope
from mmimb.engine.launch import run_cli


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('--split', default='train',
                        choices=['train', 'val', 'test'],
                        help='which dataloader\'s dataset to count')
    parser.add_argument('--out', help='JSON file to write (default: '
                        '<config name>_<split>_class_stats.json)')
    parser.add_argument('--plot', help='bar plot to write (PNG)')
    parser.add_argument('--workers', type=int, default=0,
                        help='worker processes reading label files')
    parser.add_argument('--no-cache', action='store_true',
                        help='count again even if a cached result exists')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, as in tools/train.py')
    return parser.parse_args(argv)


def plot(stats: ClassStats, path: str, title: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(max(4, 0.6 * len(stats.classes) + 2), 4))
    ax.bar(range(len(stats.classes)), stats.frequencies, color='#8a4f9e')
    ax.set_xticks(range(len(stats.classes)))
    ax.set_xticklabels(stats.classes, rotation=45, ha='right')
    ax.set_ylabel(f'{stats.kind} frequency')
    ax.set_title(title)
    for x, freq in enumerate(stats.frequencies):
        ax.text(x, freq, f'{freq:.3f}', ha='center', va='bottom', fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> ClassStats:
    args = parse_args(argv)
    if not osp.isfile(args.config):
        raise ConfigError(f'config file {args.config!r} does not exist')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    loader = cfg.get(f'{args.split}_dataloader')
    if not loader or 'dataset' not in loader:
        raise ConfigError(f'{args.config!r} has no {args.split}_dataloader '
                          'with a dataset')
    try:
        scope = infer_scope(cfg)
    except ConfigError:
        scope = None
    with tempfile.TemporaryDirectory() as no_cache:
        try:
            stats = class_frequencies(
                loader.dataset,
                num_workers=args.workers,
                cache_dir=no_cache if args.no_cache else None,
                default_scope=scope,
                progress=True)
        except ValueError as e:
            raise ConfigError(
                f'{args.split}_dataloader.dataset: {e}') from None
    name = osp.splitext(osp.basename(args.config))[0]
    out = args.out or f'{name}_{args.split}_class_stats.json'
    print(f'{name}, {args.split} split: {stats.num_images} images, '
          f'{stats.kind} counts')
    print(stats.table())
    stats.to_json(out)
    print(f'wrote {out}')
    if args.plot:
        plot(stats, args.plot, f'{name} ({args.split})')
        print(f'wrote {args.plot}')
    return stats


if __name__ == '__main__':
    run_cli(main)
