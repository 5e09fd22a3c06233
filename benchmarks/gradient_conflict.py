"""Cost of the Gradient Conflict Matrix against a training step.

ResNet-32 (CIFAR layout, configs/_base_/models/cifar_resnet32.py with a
100-class head), batch 128 holding every one of the 100 classes, 32x32
inputs. Timed side by side in one run (best of ``--repeats``):

- one training step: mmengine's ``train_step`` (preprocessing, forward,
  backward, SGD step);
- ``fast`` mode for all 100 classes: the Gram statistic (what the hook and
  ``gradient_conflict`` use on one batch) and the full class gradients
  (what merging batches or DDP needs);
- the per-class loop of ``autograd.grad`` (the reference);
- with ``--batched``: ``autograd.grad(..., is_grads_batched=True)`` over the
  100 class losses;
- GradientConflictHook's whole analysis (probe preprocessing, ``fast``,
  message hub, ``.npz`` and PNG) and its overhead at the default interval:
  analysis time / (interval x training step).

Peak memory: the resident-set peak of each row above the memory held
before it, measured in a child process whose C allocator returns every
large block to the system on free (``MALLOC_MMAP_THRESHOLD_``), so that
freed memory does not hide later allocations (Linux ``/proc`` only); with
``--device cuda`` the peak allocated on the GPU, and times are taken after
synchronising.

    python benchmarks/gradient_conflict.py [--threads 2] [--repeats 3]
        [--batched] [--skip-loop] [--loop-memory] [--device cpu|cuda]
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import tempfile
import time
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.logging import MessageHub, MMLogger
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from mmimb.analysis import class_gradients, conflict_matrix
from mmimb.engine.gradient_probe import probe_batch
from mmimb.engine.hooks import GradientConflictHook

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
MODEL_CONFIG = osp.join(ROOT, 'configs', '_base_', 'models',
                        'cifar_resnet32.py')


def _status(field: str) -> float:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    return float('nan')


def _reset_peak() -> None:
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
    except OSError:
        pass


def best_times(rows, repeats: int) -> dict:
    """Best time of each row over ``repeats`` rounds after a warm-up; rounds
    take the rows in turn, so that a change of machine load falls on all."""
    times = {name: [] for name, _ in rows}
    for name, fn in rows:
        fn()
    for _ in range(repeats):
        for name, fn in rows:
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: min(t) for name, t in times.items()}


def once(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def peak_memory(fn) -> float:
    """Peak resident memory of one call above the level before it (MB)."""
    base = _status('VmRSS')
    _reset_peak()
    fn()
    return _status('VmHWM') - base


def peaks_in_child(argv) -> dict:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_='131072')
    out = subprocess.run(
        [sys.executable, osp.abspath(__file__), *argv, '--memory-child'],
        env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def synced(rows):
    """Each row's function followed by a CUDA synchronisation."""
    def wrap(fn):
        def run():
            fn()
            torch.cuda.synchronize()
        return run
    return [(name, wrap(fn)) for name, fn in rows]


def cuda_peak_memory(fn) -> float:
    """Peak GPU memory allocated during one call above the level before it
    (MB)."""
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn()
    return (torch.cuda.max_memory_allocated() - base) / 2**20


def build(num_classes: int):
    cfg = Config.fromfile(MODEL_CONFIG)
    cfg.model.head.num_classes = num_classes
    cfg.model.data_preprocessor = dict(
        type='ClsDataPreprocessor', num_classes=num_classes,
        mean=[125.3, 123.0, 113.9], std=[63.0, 62.1, 66.7], to_rgb=True)
    init_default_scope('mmpretrain')
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--classes', type=int, default=100)
    parser.add_argument('--batch-size', type=int, default=128)
    parser.add_argument('--batched', action='store_true',
                        help='also time autograd with is_grads_batched '
                        '(about 80 training steps)')
    parser.add_argument('--skip-loop', action='store_true',
                        help='skip the per-class loop (about 60 steps)')
    parser.add_argument('--loop-memory', action='store_true',
                        help='also measure the peak memory of the slow rows '
                        '(runs them a second time)')
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--memory-child', action='store_true',
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    cuda = args.device == 'cuda'
    if args.batch_size < args.classes:
        parser.error('--batch-size must be at least --classes so that the '
                     'batch holds every class')
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    num_classes, n = args.classes, args.batch_size
    model = build(num_classes).to(args.device)
    labels = torch.cat([torch.arange(num_classes),
                        torch.randint(0, num_classes, (n - num_classes, ))])
    batch = dict(
        inputs=[torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
                for _ in range(n)],
        data_samples=[DataSample().set_gt_label(int(c)) for c in labels])
    probe = probe_batch(model, batch)
    x, y = probe.inputs, probe.targets
    wrapper = OptimWrapper(
        torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9))

    def train_step():
        model.train()
        model.train_step(batch, wrapper)

    def fast_gram():
        return conflict_matrix(class_gradients(model, (x, y),
                                               statistic='gram'))

    def fast_grads():
        return conflict_matrix(class_gradients(model, (x, y)))

    def loop():
        return conflict_matrix(class_gradients(model, (x, y), mode='loop'))

    def batched():
        model.eval()
        losses = F.cross_entropy(model(x), y, reduction='none')
        onehot = F.one_hot(y, num_classes).float()
        per_class = (onehot / onehot.sum(0)).T @ losses
        params = [p for p in model.parameters() if p.requires_grad]
        torch.autograd.grad(per_class, params,
                            torch.eye(num_classes, device=x.device),
                            is_grads_batched=True)
        model.train()

    hook = GradientConflictHook()
    hook.out_dir = tempfile.mkdtemp(prefix='gcm_bench_')
    runner = SimpleNamespace(
        model=model, iter=0,
        message_hub=MessageHub.get_instance('gcm_bench'),
        logger=MMLogger.get_instance('gcm_bench', log_level='WARNING'))
    hook._recent.append(batch)

    rows = [('training step (train_step)', train_step),
            ('fast, Gram', fast_gram),
            ('fast, class gradients', fast_grads),
            ('GradientConflictHook analysis', lambda: hook.analyse(runner))]
    slow = []
    if not args.skip_loop:
        slow.append(('loop (autograd.grad per class)', loop))
    if args.batched:
        slow.append(('batched autograd (is_grads_batched)', batched))
    if cuda:
        rows, slow = synced(rows), synced(slow)
    if args.memory_child:
        measured = rows + slow if args.loop_memory else rows
        print(json.dumps({name: peak_memory(fn) for name, fn in measured}))
        return
    if cuda:
        measured = rows + slow if args.loop_memory else rows
        peaks = {name: cuda_peak_memory(fn) for name, fn in measured}
    else:
        peaks = peaks_in_child(sys.argv[1:])
    seconds = best_times(rows, args.repeats)
    seconds.update((name, once(fn)) for name, fn in slow)
    results = {name: (seconds[name], peaks.get(name, float('nan')))
               for name in seconds}

    step = results['training step (train_step)'][0]
    params = sum(p.numel() for p in model.parameters())
    print(f'ResNet-32 ({params / 1e6:.2f}M parameters), {num_classes} '
          f'classes, batch {n} with every class, {args.device}, '
          f'{args.threads} threads, torch {torch.__version__}')
    print(f'{"":34s} {"seconds":>8s} {"/ step":>7s} {"peak MB":>8s}')
    for name, (seconds, peak) in results.items():
        print(f'{name:34s} {seconds:8.3f} {seconds / step:7.2f} {peak:8.0f}')
    hook_seconds = results['GradientConflictHook analysis'][0]
    print(f'hook overhead at its default interval ({hook.interval} '
          f'iterations): {100 * hook_seconds / (hook.interval * step):.2f}% '
          'of training time')
    if not args.skip_loop:
        diff = (fast_gram().matrix - loop().matrix).abs().nan_to_num().max()
        print(f'max |fast - loop| over the cosine matrix: {diff.item():.1e}')


if __name__ == '__main__':
    main()
