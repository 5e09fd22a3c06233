"""Measure how confusable the generated tissue classes of a config are, or
calibrate their difficulty settings to measured targets.

    python tools/analysis_tools/synthetic_tissue_difficulty.py CONFIG
        [--split train] [--patches 1 8] [--calibrate CLASS=OVERLAP ...]
        [--cfg-options k=v ...]

Prints, per class, its frequency, difficulty setting and confuser, its
overlap with the confuser and its measured difficulty (largest overlap with
any class), for single pixels and 8x8 patches
(:func:`mmimb.datasets.appearance_overlap`). ``--calibrate necrosis=0.2``
first sets the named classes' difficulty so that their 8x8 overlap with
their confuser is the target, and prints the settings to put in the config.
"""
import argparse

from mmengine.config import Config, DictAction

from mmimb.datasets import (TissueGenerator, calibrate_difficulty,
                            overlap_table)
from mmimb.engine.config_check import ConfigError
from mmimb.engine.launch import run_cli

GENERATOR_ARGS = ('img_size', 'noise_std', 'freq_jitter', 'field_res')


def parse_target(text: str):
    name, sep, value = text.partition('=')
    try:
        return name, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'--calibrate {text!r}: expected CLASS=OVERLAP, e.g. '
            'necrosis=0.2') from None


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--split', default='train',
                        choices=['train', 'val', 'test'])
    parser.add_argument('--patches', nargs='+', type=int, default=[1, 8])
    parser.add_argument('--calibrate', nargs='+', type=parse_target,
                        default=[], metavar='CLASS=OVERLAP')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    dataset = cfg[f'{args.split}_dataloader'].dataset
    if dataset.get('type') != 'SyntheticTissueDataset':
        raise ConfigError(f'{args.config}: {args.split}_dataloader.dataset '
                          f'is {dataset.get("type")!r}, not a '
                          'SyntheticTissueDataset')
    kwargs = {k: dataset[k] for k in GENERATOR_ARGS if k in dataset}
    specs = list(dataset.get('class_specs') or TissueGenerator().specs)
    if args.calibrate:
        try:
            specs = calibrate_difficulty(specs, dict(args.calibrate),
                                         **kwargs)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        print('calibrated difficulty settings: ' + ', '.join(
            f"{s['name']}={s['difficulty']}" for s in specs))
    print(overlap_table(TissueGenerator(specs, **kwargs), args.patches))


if __name__ == '__main__':
    run_cli(main)
