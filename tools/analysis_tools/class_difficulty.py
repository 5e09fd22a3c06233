"""Per-class Dice of a trained model, written as the difficulty prior of
HCFA (``prior='difficulty'``, ``class_dice=JSON``).

    python tools/analysis_tools/class_difficulty.py CONFIG CHECKPOINT
        [--split val|test] [--out JSON] [--cfg-options k=v ...]

Evaluates CHECKPOINT (a baseline, e.g. trained with bias_mode='none') on the
split's dataset with the config's test settings and writes
``{"classes": [...], "dice": [...], "iou": [...], ...}`` with Dice and IoU in
[0, 1]. The DFA paper takes the difficulty from the validation set.
"""
import argparse
import os.path as osp

from mmimb.datasets.conversion import write_json_atomic
from mmimb.engine.config_check import ConfigError
from mmimb.evaluation import evaluate_class_scores
from mmimb.engine.launch import (add_common_args, build_runner, load_config,
                                 run_cli)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config the checkpoint was trained '
                        'with')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--split', default='val', choices=['val', 'test'],
                        help='dataset to evaluate on (default: val)')
    parser.add_argument('--out', help='JSON to write (default: '
                        'class_dice.json beside the checkpoint)')
    add_common_args(parser)
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    cfg = load_config(args.config, args)
    if not osp.isfile(args.checkpoint):
        raise ConfigError(f'checkpoint {args.checkpoint!r} does not exist')
    cfg.test_dataloader = cfg[f'{args.split}_dataloader']
    runner = build_runner(cfg, 'test')
    runner.load_checkpoint(args.checkpoint, map_location='cpu')
    result = dict(
        **evaluate_class_scores(runner.model, runner.test_dataloader),
        config=args.config,
        checkpoint=args.checkpoint,
        split=args.split)
    classes = result['classes']
    out = args.out or osp.join(
        osp.dirname(osp.abspath(args.checkpoint)), 'class_dice.json')
    write_json_atomic(out, result)
    width = max(map(len, classes))
    for name, dice, iou in zip(classes, result['dice'], result['iou']):
        print(f'{name:<{width}}  Dice {100 * dice:6.2f}  IoU {100 * iou:6.2f}')
    print(f'wrote {out}')
    return result


if __name__ == '__main__':
    run_cli(main)
