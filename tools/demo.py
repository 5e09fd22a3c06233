"""Train the demo model on generated tissue images without and with the DFA
bias, and show what came out.

    python tools/demo.py [--config configs/demo.py] [--work-dir work_dirs/demo]
        [--modes none learned] [--num-images 4] [--threads N]

No download and no data preparation: the data are generated on the fly
(SyntheticTissueDataset, the calibrated crossed benchmark of docs/dfa.md).
The same short schedule runs once per bias mode (default: ``none`` and
``learned``, i.e. DFA), one after another with all cores; then the tool
prints per-class IoU of the modes side by side, with each class's
frequency and measured difficulty, the learned bias per class, and where
the logs, checkpoints, metrics and a picture of predictions (image | ground
truth | one column per mode) were saved.
"""
import argparse
import json
import os.path as osp
import time
from typing import Dict, List

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from mmimb.datasets import (TissueGenerator, appearance_overlap,  # noqa: E402
                            measured_difficulty)
from mmimb.engine.launch import (add_common_args, build_runner,  # noqa: E402
                                 load_config, run_cli)
from mmimb.evaluation import evaluate_class_scores  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
MODES = ('none', 'fixed', 'learned', 'anchored')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--config', default=osp.join(ROOT, 'configs', 'demo.py'))
    parser.add_argument('--modes', nargs='+', default=['none', 'learned'],
                        choices=MODES, help='bias modes to train')
    parser.add_argument(
        '--num-images', type=int, default=4, help='images in the picture')
    add_common_args(parser)
    args = parser.parse_args(argv)
    if args.work_dir is None:
        args.work_dir = osp.join('work_dirs', 'demo')
    return args


def predict(runner, batch) -> List[np.ndarray]:
    runner.model.eval()
    with torch.no_grad():
        samples = runner.model.test_step(batch)
    return [s.pred_sem_seg.data[0].numpy() for s in samples]


def save_prediction_grid(dataset, batch, predictions: Dict[str, list],
                         path: str) -> None:
    """Draw image, ground truth and each mode's prediction side by side,
    coloured with the dataset palette."""
    classes = dataset.metainfo['classes']
    palette = np.array(dataset.metainfo['palette'], dtype=np.uint8)
    rows, cols = len(batch['inputs']), 2 + len(predictions)
    fig, axes = plt.subplots(rows, cols, figsize=(2.5 * cols, 2.5 * rows),
                             squeeze=False)
    for row, (inputs, sample) in enumerate(
            zip(batch['inputs'], batch['data_samples'])):
        shown = [('image', inputs.permute(1, 2, 0).numpy()[..., ::-1]),
                 ('ground truth', palette[sample.gt_sem_seg.data[0].numpy()])]
        shown += [(f'bias {mode}', palette[pred[row]])
                  for mode, pred in predictions.items()]
        for col, (title, image) in enumerate(shown):
            axes[row, col].imshow(image)
            axes[row, col].set_axis_off()
            if row == 0:
                axes[row, col].set_title(title)
    fig.legend(
        handles=[
            Patch(color=palette[i] / 255, label=name)
            for i, name in enumerate(classes)
        ],
        loc='lower center',
        ncol=len(classes),
        fontsize='small')
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def class_difficulty(dataset_cfg) -> List[float]:
    """Measured difficulty of the generated classes (largest 8x8 appearance
    overlap with another class)."""
    kwargs = {k: dataset_cfg[k] for k in ('img_size', 'noise_std')
              if k in dataset_cfg}
    generator = TissueGenerator(
        dataset_cfg.get('class_specs') or TissueGenerator().specs, **kwargs)
    return measured_difficulty(appearance_overlap(generator)).tolist()


def comparison_table(scores: Dict[str, dict], freq: List[float],
                     difficulty: List[float]) -> List[str]:
    modes = list(scores)
    classes = next(iter(scores.values()))['classes']
    width = max(map(len, classes + ['mean']))
    head = f'  {"class":<{width}}  freq  difficulty' + ''.join(
        f'  IoU {m:>8}' for m in modes)
    rows = [head]
    for c, name in enumerate(classes):
        rows.append(f'  {name:<{width}}  {freq[c]:.2f}  {difficulty[c]:10.2f}'
                    + ''.join(f'  {100 * scores[m]["iou"][c]:12.2f}'
                              for m in modes))
    rows.append(f'  {"mean":<{width}}  {"":4}  {"":10}' + ''.join(
        f'  {100 * np.mean(scores[m]["iou"]):12.2f}' for m in modes))
    return rows


def bias_rows(runner, classes) -> List[str]:
    head = runner.model.decode_head
    bias = head.class_bias() if hasattr(head, 'class_bias') else None
    if bias is None:
        return []
    bias = bias.detach().float().mean(0)
    bias = bias - bias.mean()
    values = ', '.join(
        f'{c} {v:+.3f}' for c, v in zip(classes, bias.tolist()))
    return ['  final DFA bias per class (centred; only differences act): ' +
            values]


def main(argv=None):
    args = parse_args(argv)
    start = time.time()
    scores, predictions, outputs, bias = {}, {}, [], []
    batch = dataset = None
    for mode in args.modes:
        mode_args = argparse.Namespace(**vars(args))
        mode_args.work_dir = osp.join(args.work_dir, mode)
        cfg = load_config(args.config, mode_args)
        cfg.model.decode_head.bias_mode = mode
        if mode == 'none':
            # No bias, so no class frequencies to count.
            cfg.model.decode_head.class_freq = None
        runner = build_runner(cfg, 'train')
        runner.train()
        scores[mode] = evaluate_class_scores(runner.model,
                                             runner.val_dataloader)
        if batch is None:
            dataset = runner.val_dataloader.dataset
            batch = runner.val_dataloader.collate_fn(
                [dataset[i] for i in range(args.num_images)])
            freq = runner.train_dataloader.dataset.metainfo['class_freq']
            difficulty = class_difficulty(cfg.train_dataloader.dataset)
        predictions[mode] = predict(runner, batch)
        with open(osp.join(runner.work_dir, 'last_checkpoint')) as f:
            checkpoint = f.read().strip()
        outputs += [
            f'  {mode + " log:":<18} '
            f'{osp.join(runner.log_dir, runner.timestamp + ".log")}',
            f'  {mode + " checkpoint:":<18} {checkpoint}'
        ]
        bias += bias_rows(runner, scores[mode]['classes'])
    metrics_path = osp.join(args.work_dir, 'demo_metrics.json')
    with open(metrics_path, 'w') as f:
        json.dump(scores, f, indent=2)
    picture = osp.join(args.work_dir, 'demo_predictions.png')
    save_prediction_grid(dataset, batch, predictions, picture)
    minutes = (time.time() - start) / 60
    summary = [
        f'demo finished in {minutes:.1f} min: DFAHead on generated tissue, '
        f'{cfg.train_cfg.max_iters} iterations per bias mode; validation '
        'IoU (%) per class:',
        *comparison_table(scores, freq, difficulty),
        *bias,
        f'  {"metrics:":<18} {metrics_path}',
        f'  {"predictions:":<18} {picture}',
        *outputs,
    ]
    print('\n'.join(summary))


if __name__ == '__main__':
    run_cli(main)
