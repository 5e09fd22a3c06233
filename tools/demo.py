"""Train the demo model on generated tissue images and show what came out.

    python tools/demo.py [--config configs/demo.py] [--work-dir work_dirs/demo]

No download and no data preparation: the data are generated on the fly
(SyntheticTissueDataset). Prints where the log, the checkpoint, the metrics
and a picture of predictions (image | ground truth | prediction) were saved.
"""
import argparse
import json
import os.path as osp
import time
from typing import List

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from mmimb.engine.launch import (add_common_args, build_runner,  # noqa: E402
                                 load_config, run_cli)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--config', default=osp.join(ROOT, 'configs', 'demo.py'))
    parser.add_argument(
        '--num-images', type=int, default=4, help='images in the picture')
    add_common_args(parser)
    args = parser.parse_args(argv)
    if args.work_dir is None:
        args.work_dir = osp.join('work_dirs', 'demo')
    return args


def save_prediction_grid(runner, path: str, num_images: int) -> None:
    """Predict the first validation images and draw image, ground truth and
    prediction side by side, coloured with the dataset palette."""
    dataset = runner.val_dataloader.dataset
    classes = dataset.metainfo['classes']
    palette = np.array(dataset.metainfo['palette'], dtype=np.uint8)
    batch = runner.val_dataloader.collate_fn(
        [dataset[i] for i in range(num_images)])
    runner.model.eval()
    with torch.no_grad():
        samples = runner.model.test_step(batch)
    fig, axes = plt.subplots(
        num_images, 3, figsize=(7.5, 2.5 * num_images), squeeze=False)
    for row, (inputs, sample) in enumerate(zip(batch['inputs'], samples)):
        image = inputs.permute(1, 2, 0).numpy()[..., ::-1]  # BGR -> RGB
        truth = sample.gt_sem_seg.data[0].numpy()
        pred = sample.pred_sem_seg.data[0].numpy()
        for col, (title, shown) in enumerate(
            (('image', image), ('ground truth', palette[truth]),
             ('prediction', palette[pred]))):
            axes[row, col].imshow(shown)
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
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def bias_table(runner) -> List[str]:
    """The learned DFA bias per class, beside the generator's known class
    frequency and difficulty."""
    head = runner.model.decode_head
    bias = head.class_bias() if hasattr(head, 'class_bias') else None
    if bias is None:
        return []
    meta = runner.train_dataloader.dataset.metainfo
    rows = ['  learned DFA bias per class (frequency, difficulty):']
    for name, value, freq, difficulty in zip(
            meta['classes'], bias[0].tolist(), meta['class_freq'],
            meta['class_difficulty']):
        rows.append(f'    {name:<12} {value:+.3f}   ({freq:.2f}, '
                    f'{difficulty:.2f})')
    return rows


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args)
    start = time.time()
    runner = build_runner(cfg, 'train')
    runner.train()
    metrics = {
        key[len('val/'):]: float(value.current())
        for key, value in runner.message_hub.log_scalars.items()
        if key.startswith('val/')
    }
    metrics_path = osp.join(runner.work_dir, 'demo_metrics.json')
    with open(metrics_path, 'w') as f:
        json.dump(metrics, f, indent=2)
    picture = osp.join(runner.work_dir, 'demo_predictions.png')
    save_prediction_grid(runner, picture, args.num_images)
    with open(osp.join(runner.work_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    minutes = (time.time() - start) / 60
    summary = [
        f'demo finished in {minutes:.1f} min: {cfg.model.decode_head.type} '
        f'on generated tissue, mIoU {metrics.get("mIoU", float("nan")):.2f}'
        f', mDice {metrics.get("mDice", float("nan")):.2f}',
        f'  log:         {osp.join(runner.log_dir, runner.timestamp + ".log")}',
        f'  checkpoint:  {checkpoint}',
        f'  metrics:     {metrics_path}',
        f'  predictions: {picture}',
        *bias_table(runner),
    ]
    print('\n'.join(summary))


if __name__ == '__main__':
    run_cli(main)
