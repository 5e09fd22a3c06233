"""CSBA neck cost side by side: time of forward + backward and activation
memory for plain (pooling + linear head), the class-shared multi-branch
baseline and CSBA (full and factorized), as the number of classes grows.

    python benchmarks/csba_neck.py [--batch 128] [--channels 64] [--size 8]
        [--classes 10 100 1000] [--repeats 5] [--device cpu|cuda]

The neck works on a backbone's last map (defaults: CIFAR ResNet-32, 64
channels at 8x8); the backbone itself is the same for all and left out.
Memory is what autograd saves for the backward pass
(:func:`mmimb.utils.autograd_footprint`), plus the peak allocation on a GPU.
"""
import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmimb.models import ClassWiseLinearClsHead, CSBANeck, MultiBranchNeck
from mmimb.utils import autograd_footprint


def variants(channels: int, num_classes: int):
    plain = nn.Sequential(
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels,
                                                         num_classes))
    multi = nn.Sequential(
        MultiBranchNeck(channels), nn.Linear(channels, num_classes))
    csba = nn.Sequential(
        CSBANeck(channels, num_classes),
        ClassWiseLinearClsHead(num_classes, channels))
    factorized = nn.Sequential(
        CSBANeck(channels, num_classes, factorized=True),
        ClassWiseLinearClsHead(num_classes, channels))
    return dict(plain=plain, multi_branch=multi, csba=csba,
                csba_factorized=factorized)


def measure(model, x, labels, repeats):
    def step():
        return F.cross_entropy(model(x), labels)

    step().backward()  # warm-up
    times = []
    for _ in range(repeats):
        if x.is_cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        step().backward()
        if x.is_cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    peak = None
    if x.is_cuda:
        torch.cuda.reset_peak_memory_stats()
        step().backward()
        peak = torch.cuda.max_memory_allocated()
    footprint = autograd_footprint(step)
    params = sum(p.numel() for p in model.parameters())
    return statistics.median(times), footprint.saved_bytes, peak, params


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--batch', type=int, default=128)
    parser.add_argument('--channels', type=int, default=64)
    parser.add_argument('--size', type=int, default=8)
    parser.add_argument('--classes', type=int, nargs='+',
                        default=[10, 100, 1000])
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args()
    torch.manual_seed(0)
    x = torch.randn(args.batch, args.channels, args.size, args.size,
                    device=args.device)
    print(f'input ({args.batch}, {args.channels}, {args.size}, {args.size}) '
          f'on {args.device}, {torch.get_num_threads()} threads; ratios are '
          'against multi_branch in the same run')
    header = (f'{"C":>5s} {"variant":16s} {"params":>9s} {"ms":>8s} '
              f'{"x multi":>8s} {"saved MB":>9s} {"x multi":>8s}')
    if args.device != 'cpu':
        header += f' {"peak MB":>8s}'
    print(header)
    for c in args.classes:
        labels = torch.randint(0, c, (args.batch, ), device=args.device)
        rows = {
            name: measure(model.to(args.device), x, labels, args.repeats)
            for name, model in variants(args.channels, c).items()
        }
        t_multi, s_multi = rows['multi_branch'][0], rows['multi_branch'][1]
        for name, (t, saved, peak, params) in rows.items():
            line = (f'{c:5d} {name:16s} {params:9d} {1e3 * t:8.2f} '
                    f'{t / t_multi:8.2f} {saved / 2**20:9.2f} '
                    f'{saved / s_multi:8.2f}')
            if peak is not None:
                line += f' {peak / 2**20:8.1f}'
            print(line)


if __name__ == '__main__':
    main()
