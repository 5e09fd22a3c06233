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
from typing import Dict, Sequence

import torch
from mmseg.evaluation import IoUMetric

from mmimb.datasets.conversion import write_json_atomic
from mmimb.engine.config_check import ConfigError
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


def class_scores(areas: torch.Tensor,
                 classes: Sequence[str]) -> Dict[str, list]:
    """Dice and IoU per class from summed (intersection, union, prediction,
    label) areas, shape (4, C).

    Raises:
        ConfigError: If a class is neither labelled nor predicted (its Dice
            is undefined).
    """
    inter, union, pred, label = areas.double()
    undefined = [c for c, n in zip(classes, pred + label) if n == 0]
    if undefined:
        raise ConfigError(
            f'classes {undefined} occur neither in the labels nor in the '
            'predictions of this split: their Dice is undefined; evaluate on '
            'a split that contains them')
    return dict(
        dice=(2 * inter / (pred + label)).tolist(),
        iou=(inter / union.clamp(min=1)).tolist())


def label_ignore_index(model, dataset, default: int = 255) -> int:
    """The label that evaluation leaves out: the decode head's
    ``ignore_index`` (the one training used), else the dataset's (mmseg
    keeps it as an attribute of ``BaseSegDataset``, not in its metainfo),
    else ``default``."""
    for owner in (getattr(model, 'decode_head', None), dataset):
        value = getattr(owner, 'ignore_index', None)
        if value is not None:
            return int(value)
    return default


def main(argv=None) -> dict:
    args = parse_args(argv)
    cfg = load_config(args.config, args)
    if not osp.isfile(args.checkpoint):
        raise ConfigError(f'checkpoint {args.checkpoint!r} does not exist')
    cfg.test_dataloader = cfg[f'{args.split}_dataloader']
    runner = build_runner(cfg, 'test')
    runner.load_checkpoint(args.checkpoint, map_location='cpu')
    model = runner.model.eval()
    loader = runner.test_dataloader
    classes = list(loader.dataset.metainfo['classes'])
    ignore_index = label_ignore_index(model, loader.dataset)
    areas = torch.zeros(4, len(classes), dtype=torch.float64)
    with torch.no_grad():
        for batch in loader:
            for sample in model.test_step(batch):
                areas += torch.stack(
                    IoUMetric.intersect_and_union(
                        sample.pred_sem_seg.data.squeeze(0).cpu(),
                        sample.gt_sem_seg.data.squeeze(0).cpu(),
                        len(classes), ignore_index)).double()
    result = dict(
        classes=classes,
        **class_scores(areas, classes),
        config=args.config,
        checkpoint=args.checkpoint,
        split=args.split)
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
