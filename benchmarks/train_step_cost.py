"""What one training step of a config costs, split into a fixed part per
step and a part per sample, and what that makes of its whole schedule on a
GPU.

    python benchmarks/train_step_cost.py CONFIG [--cfg-options ...]
        [--device cpu|cuda] [--threads 1] [--batches 1 2 4 8]
        [--repeats 5] [--gpu-tflops 15 60] [--launch-us 4] [--runs 5]

It builds the config's runner (model, optimizer, training data), takes one
batch of the config's size from its training loader, and times
``train_step`` (data preprocessor, forward, backward, optimizer step; best
of ``--repeats``; the process's CPU time on the CPU, so that other jobs on
the machine do not count, wall time synchronised on a GPU) on the first
``B`` samples of it for each ``B`` of ``--batches``. A straight line fitted
through these times gives the fixed cost of a step (Python, operator
dispatch, the optimizer over every parameter: what a GPU does not make
faster) and the cost per sample. The profiler counts the operators of a
step at the config's batch size (each becomes at least one kernel launch
on a GPU) and mmengine's FlopAnalyzer the multiply-accumulates of one
sample's forward pass. Loading the data is not timed.

The projection for the config's schedule takes, per step, the longer of the
host's time (the fitted fixed cost, measured here; the GPU machine's CPU may
be faster) and the GPU's: 3 x the forward FLOPs of the batch at each
effective rate of ``--gpu-tflops``, but at least ``--launch-us`` per
operator. ``--runs`` runs side by side as processes share the GPU by time
slicing, so their GPU times add up while each has its own host. The rates
are assumptions, not measurements; evaluation is left out.
"""
import argparse
import os.path as osp
import statistics
import sys
import time

import torch
from mmengine.analysis import FlopAnalyzer
from torch.profiler import ProfilerActivity, profile

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

from mmimb.engine import build_runner, load_config  # noqa: E402
from mmimb.engine.launch import add_common_args  # noqa: E402


def first(batch: dict, size: int) -> dict:
    """The first ``size`` samples of a collated batch."""
    return {key: value[:size] for key, value in batch.items()}


def best_time(fn, repeats: int, sync, clock) -> float:
    fn()  # warm-up (allocations, cuDNN's choice of kernels)
    times = []
    for _ in range(repeats):
        sync()
        start = clock()
        fn()
        sync()
        times.append(clock() - start)
    return min(times)


def fit_line(xs, ys):
    """Least-squares intercept and slope of ``ys`` against ``xs``."""
    mx, my = statistics.mean(xs), statistics.mean(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum(
        (x - mx)**2 for x in xs)
    return my - slope * mx, slope


class TensorForward(torch.nn.Module):
    """The model's forward on preprocessed inputs, for FlopAnalyzer."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, inputs):
        return self.model(inputs, mode='tensor')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    add_common_args(parser)
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--batches', type=int, nargs='+',
                        default=[1, 2, 4, 8])
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--gpu-tflops', type=float, nargs='+',
                        default=[15.0, 60.0],
                        help='effective GPU rates to project with')
    parser.add_argument('--launch-us', type=float, default=4.0,
                        help='least GPU time per operator, microseconds')
    parser.add_argument('--runs', type=int, default=5,
                        help='runs side by side in the projection')
    args = parser.parse_args()
    args.threads = args.threads or 1
    cfg = load_config(args.config, args)
    batch_size = cfg.train_dataloader.batch_size
    if len(set(args.batches)) < 2 or min(args.batches) < 1 or \
            max(args.batches) > batch_size:
        parser.error(f'--batches {args.batches}: expected at least two '
                     'different sizes from 1 to the config\'s batch size '
                     f'({batch_size}), to fit a line')
    cfg.train_dataloader.num_workers = 0
    cfg.train_dataloader.persistent_workers = False
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.work_dir = cfg.work_dir + '_train_step_cost'
    cuda = args.device == 'cuda'
    if not cuda:
        cfg.setdefault('env_cfg', {})['cudnn_benchmark'] = False
    runner = build_runner(cfg, 'train')
    loop = runner.train_loop  # built here: its length is the schedule's
    steps = loop.max_iters
    model = runner.model.to(args.device)
    # What runner.train() does first.
    wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    model.train()
    batch = next(iter(loop.dataloader))
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    clock = time.perf_counter if cuda else time.process_time
    seconds = {}
    for size in sorted(set(args.batches)):
        data = first(batch, size)
        seconds[size] = best_time(lambda: model.train_step(data, wrapper),
                                  args.repeats, sync, clock)
    fixed, per_sample = fit_line(list(seconds), list(seconds.values()))
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        model.train_step(batch, wrapper)
    # Operators called from Python or autograd, not from another operator.
    ops = sum(1 for e in prof.events() if e.name.startswith('aten::') and not (
        e.cpu_parent and e.cpu_parent.name.startswith('aten::')))
    model.eval()
    with torch.no_grad():
        inputs = model.data_preprocessor(first(batch, 1), False)['inputs']
    analyzer = FlopAnalyzer(TensorForward(model), (inputs, ))
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    macs = analyzer.total()
    step_flop = 3 * 2 * macs * batch_size

    print(f'{osp.relpath(osp.abspath(args.config), ROOT)}: train_step on '
          f'{args.device}, {args.threads} threads, '
          f'{"wall" if cuda else "CPU"} time, best of {args.repeats}, '
          f'torch {torch.__version__}')
    print(f'{"batch":>6s} {"ms / step":>10s}')
    for size, s in seconds.items():
        print(f'{size:6d} {1e3 * s:10.2f}')
    print(f'fitted: {1e3 * fixed:.2f} ms per step + {1e3 * per_sample:.3f} '
          f'ms per sample; {ops} operators per step (batch {batch_size})')
    print(f'forward: {macs / 1e9:.3f} G multiply-accumulates per sample; a '
          f'training step of {batch_size}: {step_flop / 1e9:.1f} GFLOP; '
          f'the schedule: {steps} steps, {steps * step_flop / 1e12:.0f} '
          'TFLOP')
    print(f'projection, {args.runs} runs side by side as processes, host '
          f'{1e3 * fixed:.2f} ms per step each:')
    print(f'{"GPU TFLOPS":>10s} {"GPU ms / step":>13s} {"one run s":>9s} '
          f'{args.runs:>2d} runs s')
    for rate in args.gpu_tflops:
        gpu = max(step_flop / (rate * 1e12), ops * args.launch_us * 1e-6)
        print(f'{rate:10.0f} {1e3 * gpu:13.2f} '
              f'{steps * max(fixed, gpu):9.0f} '
              f'{steps * max(fixed, args.runs * gpu):9.0f}')


if __name__ == '__main__':
    main()
