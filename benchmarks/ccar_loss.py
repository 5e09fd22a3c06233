"""Cost of CCAR against plain cross-entropy, measured side by side.

    python benchmarks/ccar_loss.py [--repeat 10] [--device cpu|cuda]
        [--map-size 512]

For a classification batch (N=512, C=1000; called as mmpretrain's
``ClsHead`` does) and a segmentation map (8, 19, 512, 512; 5% of the pixels
ignored, called as mmseg's decode heads do, against
``F.cross_entropy(ignore_index=255)``), one forward plus backward of each
of mmimb's losses (CCAR, LA, CCAR + LA) is timed in alternation with one of
``F.cross_entropy`` (best of ``--repeat`` rounds after a warm-up, 100 times
as many for the millisecond-sized classification case) and its peak memory
is measured; the table prints each loss's time beside the time of the
cross-entropy it alternated with, and their ratio (so the printed times
give the printed ratio), and the peak memory of each against
cross-entropy's.
Targets: CCAR within 1.3x the time and 1.5x the peak memory of
cross-entropy.

Each loss alternates with cross-entropy alone rather than with all the
others: at the classification size the buffers one loss frees (and the
caches it fills) change the cost of the next, and a round of four losses
measured the same CCAR at up to 0.1x more than a round of two.

The ``CrossEntropyLoss`` row is the loss module a config replaces with
CCAR (mmpretrain's for the classification case, mmseg's for the
segmentation case), called the same way; it shows what the module calls
around ``F.cross_entropy`` cost on their own.

Peak memory: on CUDA, ``torch.cuda.max_memory_allocated``. On the CPU
there is no allocator statistic, so the run is recorded with
``torch.profiler`` (``profile_memory=True``), which logs every allocation
and free of PyTorch's CPU allocator with its size; the running sum of those
events, in time order, peaks at the largest amount of tensor memory held
at once beyond what existed before (the logits and labels). Both counts
include the gradient of the logits. The profiler run is separate from the
timed runs, whose clock it would distort.
"""
import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mmimb.models.losses import CCARLoss, LogitAdjustedLoss  # noqa: E402

IGNORE = 255
CE = 'F.cross_entropy'
UPSTREAM_CE = 'CrossEntropyLoss'


def make_case(shape, device, seed=0):
    gen = torch.Generator().manual_seed(seed)
    num_classes = shape[1]
    logits = torch.randn(shape, generator=gen).mul_(3).to(device)
    label_shape = shape[:1] + shape[2:]
    labels = torch.randint(0, num_classes, label_shape, generator=gen)
    if len(shape) > 2:
        labels[torch.rand(label_shape, generator=gen) < 0.05] = IGNORE
    counts = torch.logspace(3, 1, num_classes)
    return logits, labels.to(device), (counts / counts.sum()).tolist()


def loss_fns(class_freq, device, segmentation):
    """The losses as their callers call them: mmpretrain's ClsHead passes
    ``avg_factor=N``, mmseg's decode heads ``ignore_index=255``."""
    ccar = CCARLoss(class_freq).to(device)
    la = LogitAdjustedLoss(class_freq).to(device)
    ccar_la = CCARLoss(class_freq, logit_adjust='la').to(device)

    if segmentation:
        from mmseg.models.losses import CrossEntropyLoss

        # The mean over labelled pixels, as F.cross_entropy and CCARLoss.
        upstream_kwargs = dict(avg_non_ignore=True)
    else:
        from mmpretrain.models.losses import CrossEntropyLoss
        upstream_kwargs = {}

    def call(loss):
        if segmentation:
            return lambda x, y: loss(x, y, ignore_index=IGNORE)
        return lambda x, y: loss(x, y, avg_factor=x.shape[0])

    return {
        CE: call(F.cross_entropy) if segmentation else F.cross_entropy,
        UPSTREAM_CE: call(CrossEntropyLoss(**upstream_kwargs).to(device)),
        'CCARLoss': call(ccar),
        'LogitAdjustedLoss': call(la),
        'CCARLoss(la)': call(ccar_la),
    }


def step(fn, base, labels):
    logits = base.detach().requires_grad_()
    fn(logits, labels).backward()
    return logits.grad


def sync(device):
    if device == 'cuda':
        torch.cuda.synchronize()


def time_steps(fns, logits, labels, device, repeat):
    """Best time of each loss over ``repeat`` interleaved rounds.

    On the CPU the clock is the process's CPU time, which on a shared
    machine does not count the time other processes hold the core (for a
    one-thread run it is the wall time of an idle machine); on CUDA it is
    the wall time between synchronisations. Interleaving and the minimum
    keep the remaining noise from landing on one loss only.
    """
    clock = time.process_time if device == 'cpu' else time.perf_counter
    times = {name: [] for name in fns}
    for round_ in range(repeat + 1):
        for name, fn in fns.items():
            sync(device)
            start = clock()
            step(fn, logits, labels)
            sync(device)
            if round_:  # round 0 warms up
                times[name].append(clock() - start)
    return {name: min(t) for name, t in times.items()}


def peak_bytes(fn, logits, labels, device):
    if device == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        step(fn, logits, labels)
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    with profile(activities=[ProfilerActivity.CPU],
                 profile_memory=True) as prof:
        step(fn, logits, labels)
    events = sorted((e for e in prof.profiler.kineto_results.events()
                     if e.name() == '[memory]' and e.device_type().name ==
                     'CPU'),
                    key=lambda e: e.start_ns())
    held = peak = 0
    for event in events:
        held += event.nbytes()
        peak = max(peak, held)
    return peak


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeat', type=int, default=10)
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--map-size', type=int, default=512,
                        help='side of the segmentation case (quick runs: 32)')
    args = parser.parse_args(argv)
    clock = 'CPU time' if args.device == 'cpu' else 'wall time'
    print(f'torch {torch.__version__}, device {args.device}, {clock}, '
          f'{torch.get_num_threads()} threads, best of {args.repeat} '
          'rounds alternating with cross-entropy (x100 for the small case)')
    header = (f"{'case':<22}{'loss':<20}{'time ms':>9}{'CE ms':>8}"
              f"{'x CE':>7}{'peak MiB':>10}{'x CE':>7}")
    print(header)
    print('-' * len(header))
    for shape in ((512, 1000), (8, 19, args.map_size, args.map_size)):
        logits, labels, freq = make_case(shape, args.device)
        fns = loss_fns(freq, args.device, len(shape) > 2)
        # Millisecond steps need more rounds to get past scheduler noise.
        repeat = args.repeat * (100 if logits.numel() < 10**7 else 1)
        # Each loss against the cross-entropy of its own pair: the printed
        # times give the printed ratio.
        pairs = {
            name: time_steps({CE: fns[CE], name: fn}, logits, labels,
                             args.device, repeat)
            for name, fn in fns.items() if name != CE
        }
        peaks = {
            name: peak_bytes(fn, logits, labels, args.device)
            for name, fn in fns.items()
        }
        for name in fns:
            if name == CE:
                timing = f"{'':>9}{'':>8}{'':>7}"
            else:
                loss_s, ce_s = pairs[name][name], pairs[name][CE]
                timing = (f'{loss_s * 1e3:>9.2f}{ce_s * 1e3:>8.2f}'
                          f'{loss_s / ce_s:>7.2f}')
            print(f'{str(shape):<22}{name:<20}{timing}'
                  f'{peaks[name] / 2**20:>10.1f}'
                  f'{peaks[name] / peaks[CE]:>7.2f}')
        del logits, labels
    print('targets: CCARLoss <= 1.30x time and <= 1.50x peak memory')


if __name__ == '__main__':
    main()
