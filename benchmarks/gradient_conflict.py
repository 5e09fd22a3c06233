"""Cost of the Gradient Conflict Matrix against a training step.

Classification: ResNet-32 (CIFAR layout, configs/_base_/models/
cifar_resnet32.py with a 100-class head), batch 128 holding every class,
32x32 inputs. Segmentation: SegFormer-B0 (mmseg's segformer_mit-b0.py, 19
classes, BatchNorm in the head), batch 2 of 128x128 images with random
labels (every class present). Each row is timed side by side with the
training step of its model, in interleaved rounds (best of ``--repeats``
after a warm-up), as CPU time of the process (robust to other jobs on a
shared machine) and wall time:

- training step: mmengine's ``train_step`` (preprocessing, forward,
  backward, optimizer step);
- ``fast``: the Gram statistic (what the hook and ``gradient_conflict`` use
  on one batch), the class gradients (for merging batches or DDP) and the
  sketch, each with its verification;
- GradientConflictHook's whole analysis (probe preprocessing, ``fast``,
  message hub, ``.npz`` and PNG) and its overhead at the default interval;
- the per-class loop of ``autograd.grad`` (the reference), once, on
  ``--loop-classes`` classes (all with ``--loop-classes 100``);
- segmentation: all layers (one vector-Jacobian product per class, and
  ``vjp_batch=19``: all 19 in one ``is_grads_batched`` call), the decode
  head only, the classifier only, and as a bound for any exact scheme, the
  19 vector-Jacobian products through the backbone alone (from given
  cotangents at its outputs to its parameters) that per-class gradients of
  the backbone's layers need.

Peak memory: the resident-set peak of each classification row above the
memory held before it, in a child process whose C allocator returns every
large block to the system on free (``MALLOC_MMAP_THRESHOLD_``), so that
freed memory does not hide later allocations (Linux ``/proc`` only).

With ``--device cuda`` the models and batches are on the GPU, each timed
call ends with a synchronisation, times are wall time only (the process's
CPU time leaves out the GPU's work) and the peak memory of every row,
segmentation included, is the peak allocated on the GPU above the level
before the row, measured after the timing rounds.

    python benchmarks/gradient_conflict.py [--threads 1] [--repeats 3]
        [--loop-classes 20] [--skip-segmentation] [--device cpu|cuda]
"""
import argparse
import json
import os
import os.path as osp
import resource
import subprocess
import sys
import tempfile
import time
from types import SimpleNamespace

import torch
from mmengine.config import Config
from mmengine.logging import MessageHub, MMLogger
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope

from mmimb.analysis import class_gradients, conflict_matrix
from mmimb.apis.inference import resolve_device
from mmimb.engine.gradient_probe import probe_batch
from mmimb.engine.hooks import GradientConflictHook
from mmimb.engine.launch import run_cli

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
MODEL_CONFIG = osp.join(ROOT, 'configs', '_base_', 'models',
                        'cifar_resnet32.py')
STEP = 'training step (train_step)'


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


# Column heading and clock of each time; the first is the ratios' basis.
CPU_CLOCKS = (('CPU s', time.process_time), ('wall s', time.perf_counter))
CUDA_CLOCKS = (('wall s', time.perf_counter), )


def _timed(fn, clocks) -> tuple:
    starts = [clock() for _, clock in clocks]
    fn()
    return tuple(clock() - s for (_, clock), s in zip(clocks, starts))


def best_times(rows, repeats: int, clocks) -> dict:
    """Best time on each clock of each row over ``repeats`` rounds after a
    warm-up; rounds take the rows in turn, so that a change of machine load
    falls on all."""
    times = {name: [] for name, _ in rows}
    for name, fn in rows:
        fn()
    for _ in range(repeats):
        for name, fn in rows:
            times[name].append(_timed(fn, clocks))
    return {name: tuple(map(min, zip(*t))) for name, t in times.items()}


def peak_memory(fn) -> float:
    """Peak resident memory of one call above the level before it (MB)."""
    base = _status('VmRSS')
    _reset_peak()
    fn()
    return _status('VmHWM') - base


def peaks_in_child(argv) -> dict:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_='131072')
    out = subprocess.run(
        [sys.executable,
         osp.abspath(__file__), *argv, '--memory-child'],
        env=env,
        capture_output=True,
        text=True,
        check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def synced(rows):
    """Each row's function followed by a CUDA synchronisation, so that a
    timer read after it counts the GPU's work."""

    def wrap(fn):

        def run():
            out = fn()
            torch.cuda.synchronize()
            return out

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


def on_device(model, inputs, data_samples, device):
    """The model and its batch on ``device`` (data samples with their
    labels), so that no row times a host-to-device copy of the batch."""
    return model.to(device), dict(
        inputs=[x.to(device) for x in inputs],
        data_samples=[s.to(device) for s in data_samples])


def classification(num_classes: int, n: int, device: torch.device):
    """ResNet-32, a batch holding every class, and its optimizer."""
    from mmpretrain.registry import MODELS
    from mmpretrain.structures import DataSample
    cfg = Config.fromfile(MODEL_CONFIG)
    cfg.model.head.num_classes = num_classes
    cfg.model.data_preprocessor = dict(
        type='ClsDataPreprocessor',
        num_classes=num_classes,
        mean=[125.3, 123.0, 113.9],
        std=[63.0, 62.1, 66.7],
        to_rgb=True)
    init_default_scope('mmpretrain')
    model = MODELS.build(cfg.model)
    model.init_weights()
    labels = torch.cat([
        torch.arange(num_classes),
        torch.randint(0, num_classes, (n - num_classes, ))
    ])
    inputs = [
        torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
        for _ in range(n)
    ]
    samples = [DataSample().set_gt_label(int(c)) for c in labels]
    model, batch = on_device(model, inputs, samples, device)
    wrapper = OptimWrapper(
        torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9))
    return model, batch, wrapper


def segmentation(device: torch.device,
                 num_classes: int = 19,
                 n: int = 2,
                 size: int = 128):
    """SegFormer-B0 (BatchNorm in the head, no pretrained weights), a batch
    with random labels, and AdamW."""
    import mmseg
    from mmengine.structures import PixelData
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample
    path = osp.join(
        osp.dirname(mmseg.__file__), '.mim', 'configs', '_base_', 'models',
        'segformer_mit-b0.py')
    cfg = Config.fromfile(path).model
    cfg.decode_head.num_classes = num_classes
    cfg.decode_head.norm_cfg = dict(type='BN', requires_grad=True)
    cfg.backbone.init_cfg = None
    cfg.data_preprocessor.size = (size, size)
    init_default_scope('mmseg')
    model = MODELS.build(cfg)

    def sample():
        s = SegDataSample()
        s.gt_sem_seg = PixelData(
            data=torch.randint(0, num_classes, (1, size, size)))
        s.set_metainfo(
            dict(
                img_shape=(size, size),
                ori_shape=(size, size),
                pad_shape=(size, size)))
        return s

    inputs = [
        torch.randint(0, 256, (3, size, size), dtype=torch.uint8)
        for _ in range(n)
    ]
    samples = [sample() for _ in range(n)]
    model, batch = on_device(model, inputs, samples, device)
    wrapper = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-4))
    return model, batch, wrapper


def _step(model, batch, wrapper):

    def train_step():
        model.train()
        model.train_step(batch, wrapper)

    return train_step


def classification_rows(args):
    model, batch, wrapper = classification(args.classes, args.batch_size,
                                           args.device)
    probe = probe_batch(model, batch)
    x, y = probe.inputs, probe.targets
    hook = GradientConflictHook(norm_stats='running')
    hook.out_dir = tempfile.mkdtemp(prefix='gcm_bench_')
    runner = SimpleNamespace(
        model=model,
        iter=0,
        message_hub=MessageHub.get_instance('gcm_bench'),
        logger=MMLogger.get_instance('gcm_bench', log_level='WARNING'))
    hook._recent.append(batch)
    rows = [
        (STEP, _step(model, batch, wrapper)),
        ('fast, Gram', lambda: conflict_matrix(
            class_gradients(model, (x, y), statistic='gram'))),
        ('fast, class gradients',
         lambda: conflict_matrix(class_gradients(model, (x, y)))),
        (f'sketch, class gradients (k={args.sketch_dim})',
         lambda: conflict_matrix(
             class_gradients(
                 model, (x, y), mode='sketch', sketch_dim=args.sketch_dim))),
        ('GradientConflictHook analysis', lambda: hook.analyse(runner)),
    ]
    loop_classes = list(range(min(args.loop_classes, args.classes)))
    loop = (
        f'loop, {len(loop_classes)} classes (autograd.grad each)',
        lambda: conflict_matrix(
            class_gradients(model, (x, y), mode='loop', classes=loop_classes)))

    def same():
        return conflict_matrix(
            class_gradients(
                model, (x, y), statistic='gram', classes=loop_classes))

    params = sum(p.numel() for p in model.parameters())
    title = (f'ResNet-32 ({params / 1e6:.2f}M parameters), {args.classes} '
             f'classes, batch {args.batch_size} with every class')
    return title, rows, loop, same, hook.interval


def segmentation_rows(args):
    model, batch, wrapper = segmentation(args.device)
    probe = probe_batch(model, batch)
    xy, kw = (probe.inputs, probe.targets), probe.kwargs()
    rows = [
        (STEP, _step(model, batch, wrapper)),
        ('fast, Gram, all layers',
         lambda: class_gradients(model, xy, statistic='gram', **kw)),
        ('fast, Gram, decode_head', lambda: class_gradients(
            model, xy, statistic='gram', layers=['decode_head'], **kw)),
        ('fast, Gram, decode_head.conv_seg', lambda: class_gradients(
            model, xy, statistic='gram', layers=['decode_head.conv_seg'], **kw)
         ),
    ]
    backbone = [p for p in model.backbone.parameters() if p.requires_grad]

    def backbone_vjps():
        model.eval()
        feats = model.backbone(probe.inputs)
        for _ in range(19):
            torch.autograd.grad(
                feats,
                backbone, [torch.ones_like(f) for f in feats],
                retain_graph=True)

    rows.append(('19 VJPs through the backbone alone', backbone_vjps))
    rows.append(
        ('fast, Gram, all layers, vjp_batch=19', lambda: class_gradients(
            model, xy, statistic='gram', vjp_batch=19, **kw)))
    result = class_gradients(model, xy, statistic='gram', **kw)
    params = sum(p.numel() for p in model.parameters())
    title = (f'SegFormer-B0 ({params / 1e6:.2f}M parameters), 19 classes, '
             f'batch 2, 128 px, {result.coverage.describe()}')
    return title, rows


def print_table(title, seconds, clocks, peaks=None):
    step = seconds[STEP][0]
    print(title)
    print(f'{"":44s}' + ''.join(f' {heading:>7s}' for heading, _ in clocks) +
          f' {"/ step":>7s}{" peak MB":>9s}')
    for name, times in seconds.items():
        peak = (peaks or {}).get(name)
        print(f'{name:44s}' + ''.join(f' {t:7.3f}' for t in times) +
              f' {times[0] / step:7.2f}' +
              (f'{peak:9.0f}' if peak is not None else f'{"-":>9s}'))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--classes', type=int, default=100)
    parser.add_argument('--batch-size', type=int, default=128)
    parser.add_argument('--sketch-dim', type=int, default=1024)
    parser.add_argument(
        '--loop-classes',
        type=int,
        default=20,
        help='classes of the per-class loop (its cost grows '
        'linearly; 100 takes about 60 training steps)')
    parser.add_argument('--skip-segmentation', action='store_true')
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument(
        '--memory-child', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.batch_size < args.classes:
        parser.error('--batch-size must be at least --classes so that the '
                     'batch holds every class')
    args.device = resolve_device(args.device)
    cuda = args.device.type == 'cuda'
    clocks, note = CPU_CLOCKS, ''
    if cuda:
        clocks = CUDA_CLOCKS
        note = (f'; {torch.cuda.get_device_name()}, wall time after '
                'synchronising (the process\'s CPU time leaves out the '
                'GPU\'s work), peak MB allocated on the GPU')

    def measure(rows, peaks=None):
        """Best times of the rows and, on CUDA, their peak GPU memory."""
        if cuda:
            rows = synced(rows)
        seconds = best_times(rows, args.repeats, clocks)
        if cuda:
            peaks = {name: cuda_peak_memory(fn) for name, fn in rows}
        return seconds, peaks

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    title, rows, loop, same, interval = classification_rows(args)
    if args.memory_child:
        print(json.dumps({name: peak_memory(fn) for name, fn in rows}))
        return
    start, start_cpu = time.perf_counter(), time.process_time()
    rss_peaks = {} if cuda or not osp.exists('/proc/self/clear_refs') else \
        peaks_in_child(sys.argv[1:])
    seconds, peaks = measure(rows, rss_peaks)
    (loop, ) = synced([loop]) if cuda else [loop]
    looped = {}
    seconds[loop[0]] = _timed(lambda: looped.setdefault('r', loop[1]()),
                              clocks)
    print(f'torch {torch.__version__}, {args.threads} threads; '
          f'{clocks[0][0].split()[0]} seconds are the ratios\' basis')
    print_table(title + note, seconds, clocks, peaks)
    step = seconds[STEP][0]
    hook = seconds['GradientConflictHook analysis'][0]
    print(f'hook overhead at its default interval ({interval} iterations): '
          f'{100 * hook / (interval * step):.2f}% of training time')
    diff = (same().matrix - looped['r'].matrix).abs().nan_to_num().max()
    print(f'max |fast - loop| over the cosine matrix of those classes: '
          f'{diff.item():.1e}')
    if not args.skip_segmentation:
        title, rows = segmentation_rows(args)
        print()
        seconds, peaks = measure(rows)
        print_table(title + note, seconds, clocks, peaks)
    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time() - start_cpu + child.ru_utime + child.ru_stime
    print(f'benchmark took {time.perf_counter() - start:.0f} s wall, '
          f'{cpu:.0f} s CPU (memory child included)')


if __name__ == '__main__':
    run_cli(main)
