"""Evaluate a checkpoint on a config's test set.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE]
        [--show] [--show-dir DIR] [--interval N] [--wait-time S]
        [--cfg-options k=v ...]
        [--launcher none|pytorch|slurm|mpi]

``mmimb-test`` is the same command.
"""
import argparse
import os.path as osp

from mmimb.engine.config_check import (GENERATED_DATASETS, ConfigError,
                                       infer_scope)
from mmimb.engine.launch import (add_common_args, build_runner, load_config,
                                 run_cli)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--out', help='dump the predictions (pickle) to this file')
    parser.add_argument(
        '--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir',
        help='directory for painted predictions; a relative one lies in the '
        'work dir (segmentation: SHOW_DIR/vis_data/vis_image, '
        'classification: TIMESTAMP/SHOW_DIR)')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='display interval (s)')
    parser.add_argument(
        '--interval',
        type=int,
        default=1,
        help='paint the predictions of every INTERVAL-th batch')
    add_common_args(parser)
    return parser.parse_args(argv)


def enable_visualization(cfg, args, scope: str) -> None:
    """Turn on the config's visualization hook the way mmseg / mmpretrain
    test scripts do."""
    hook = cfg.default_hooks.get('visualization')
    if hook is None:
        raise ConfigError('--show/--show-dir need a "visualization" entry in '
                          'default_hooks')
    if cfg.test_dataloader.dataset.get('type') in GENERATED_DATASETS:
        raise ConfigError(
            '--show/--show-dir paint images read from their files, and '
            f'{cfg.test_dataloader.dataset.type} generates its images; '
            'tools/demo.py draws predictions on generated data')
    hook.interval = args.interval
    if scope == 'mmseg':
        hook.draw = True
        hook.show = args.show
        hook.wait_time = args.wait_time
        if args.show_dir:
            cfg.visualizer.save_dir = osp.join(cfg.work_dir, args.show_dir)
    else:
        hook.enable = True
        hook.show = args.show
        hook.wait_time = args.wait_time
        hook.out_dir = args.show_dir


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args)
    cfg.load_from = args.checkpoint
    if not osp.isfile(args.checkpoint):
        raise ConfigError(f'checkpoint {args.checkpoint!r} does not exist')
    if args.show or args.show_dir:
        enable_visualization(cfg, args, infer_scope(cfg))
    if args.out:
        cfg.test_evaluator = (
            cfg.test_evaluator if isinstance(cfg.test_evaluator, list) else
            [cfg.test_evaluator])
        cfg.test_evaluator.append(
            dict(type='DumpResults', out_file_path=args.out))
    build_runner(cfg, 'test').test()


def cli() -> None:
    """Console entry point (``mmimb-test``)."""
    run_cli(main)
