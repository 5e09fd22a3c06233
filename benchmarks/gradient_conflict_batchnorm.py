"""What BatchNorm's running statistics do to the Gradient Conflict Matrix
at the start of training, and what GradientConflictHook's guard
(``norm_stats='warm'``) avoids.

ResNet-32 (CIFAR layout, configs/_base_/models/cifar_resnet32.py, 10
classes) trains with SGD on real CIFAR-10 images (``data/cifar10/train``,
batches of ``--batch-size`` drawn with a fixed seed, no augmentation). At
the listed iterations, before the training step, the matrix of the batch
about to be trained on is computed twice:

- ``running``: BatchNorm with its running statistics (eval mode), what the
  analysis uses by default;
- ``batch``: BatchNorm with the batch's statistics, as the training step
  uses them (``norm_stats='batch'``): the count-weighted class gradients
  then add up to the gradient the step follows.

The table gives the largest and mean absolute difference of their
off-diagonal cosines, and whether the hook's guard would analyse (no
BatchNorm layer whose running statistics still weigh their initial values
by more than 1%: 44 batches at momentum 0.1).

``--lr 0`` keeps the weights fixed, so that only the running statistics
change: what remains then is the difference the statistics themselves make.

    python benchmarks/gradient_conflict_batchnorm.py [--lr 0.1]
        [--iterations 0 5 10 20 44 60]
"""
import argparse
import os
import os.path as osp
import sys
import time

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from gradient_conflict import classification  # noqa: E402

from mmimb.analysis import gradient_conflict  # noqa: E402
from mmimb.engine.gradient_probe import (cold_batch_norms,  # noqa: E402
                                         probe_batch)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def cifar_batches(folder: str, batch_size: int, count: int, seed: int):
    """``count`` batches of real images, drawn without replacement."""
    from mmpretrain.structures import DataSample
    classes = sorted(os.listdir(folder))
    files = [(osp.join(folder, c, f), i) for i, c in enumerate(classes)
             for f in sorted(os.listdir(osp.join(folder, c)))]
    order = np.random.default_rng(seed).permutation(len(files))
    needed = batch_size * count
    if needed > len(files):
        raise ValueError(f'{folder} holds {len(files)} images, fewer than '
                         f'{count} batches of {batch_size}')
    batches = []
    for b in range(count):
        chosen = [files[i] for i in order[b * batch_size:(b + 1) *
                                          batch_size]]
        batches.append(
            dict(
                inputs=[
                    torch.from_numpy(
                        np.asarray(Image.open(path).convert('RGB')).copy()
                    ).permute(2, 0, 1) for path, _ in chosen
                ],
                data_samples=[
                    DataSample().set_gt_label(label) for _, label in chosen
                ]))
    return batches


def off_diagonal_difference(a: torch.Tensor, b: torch.Tensor) -> tuple:
    i, j = torch.triu_indices(*a.shape, offset=1)
    diff = (a[i, j] - b[i, j]).abs()
    diff = diff[diff.isfinite()]
    return diff.max().item(), diff.mean().item()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--iterations', type=int, nargs='+', default=[0, 5, 10, 20, 44, 60])
    parser.add_argument('--batch-size', type=int, default=128)
    parser.add_argument('--lr', type=float, default=0.1)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--data', default=osp.join(ROOT, 'data', 'cifar10', 'train'))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    start = time.process_time()
    model, _, wrapper = classification(10, args.batch_size)
    for group in wrapper.optimizer.param_groups:
        group['lr'] = args.lr
    last = max(args.iterations)
    batches = cifar_batches(args.data, args.batch_size, last + 1, args.seed)
    print(f'ResNet-32, 10 classes, real CIFAR-10 batches of '
          f'{args.batch_size}, SGD lr {args.lr}, torch {torch.__version__}, '
          f'{args.threads} threads')
    print(f'{"iteration":>9s} {"guard":>8s} {"max |diff|":>11s} '
          f'{"mean |diff|":>12s}  (running - batch statistics, '
          'off-diagonal cosines)')
    for it, batch in enumerate(batches):
        if it in args.iterations:
            model.train()
            probe = probe_batch(model, batch)
            x, y = probe.inputs, probe.targets
            running, batch_stats = (gradient_conflict(
                model, x, y, num_classes=10, norm_stats=mode)
                for mode in ('running', 'batch'))
            worst, mean = off_diagonal_difference(running.matrix,
                                                  batch_stats.matrix)
            guard = 'waits' if cold_batch_norms(model) else 'analyses'
            print(f'{it:9d} {guard:>8s} {worst:11.3f} {mean:12.3f}',
                  flush=True)
        if it < last:
            model.train()
            model.train_step(batch, wrapper)
    print(f'took {time.process_time() - start:.0f} s CPU')


if __name__ == '__main__':
    main()
