"""Cost of the Gradient Conflict Matrix against a training step.

ResNet-32 (CIFAR layout), 100 classes, batch 128 holding every class, 32x32
inputs. Times, side by side in one run: one training step (forward, backward,
SGD step), the per-class loop (one autograd.grad per class), ``fast`` mode
(one forward and one backward; Gram statistic and full class gradients) and,
with ``--batched``, autograd with ``is_grads_batched=True`` over the 100
class losses; peak resident memory above the model's; and the overhead of
GradientConflictHook at its default interval (analysis + .npz + PNG per
``interval`` training steps).

    python benchmarks/gradient_conflict.py [--threads 2] [--repeats 3]
        [--batched] [--skip-loop]
"""
import argparse
import os
import tempfile
import time

import torch
import torch.nn.functional as F
from torch import nn

from mmimb.analysis import class_gradients, conflict_matrix
from mmimb.analysis.plot import plot_heatmap
from mmimb.engine.hooks import GradientConflictHook


class BasicBlock(nn.Module):

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False),
                nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet32(nn.Module):
    """ResNet-32 in the CIFAR layout (3 stages of 5 basic blocks, 16/32/64
    channels), a local stand-in for mmimb's CifarResNet."""

    def __init__(self, num_classes=100):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, cin = [], 16
        for cout, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(5):
                layers.append(BasicBlock(cin, cout, stride if i == 0 else 1))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        x = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def peak_rss_mb() -> float:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmHWM'):
                return int(line.split()[1]) / 1024
    return float('nan')


def rss_mb() -> float:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS'):
                return int(line.split()[1]) / 1024
    return float('nan')


def reset_peak() -> bool:
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def measure(fn, repeats):
    fn()  # warm-up
    base = rss_mb()
    reset_peak()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), peak_rss_mb() - base


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--classes', type=int, default=100)
    parser.add_argument('--batch-size', type=int, default=128)
    parser.add_argument('--batched', action='store_true',
                        help='also time autograd with is_grads_batched')
    parser.add_argument('--skip-loop', action='store_true',
                        help='skip the per-class loop (about 60 steps)')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    num_classes, n = args.classes, args.batch_size
    model = ResNet32(num_classes)
    x = torch.randn(n, 3, 32, 32)
    y = torch.cat([torch.arange(num_classes),
                   torch.randint(0, num_classes, (n - num_classes, ))])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def train_step():
        model.train()
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    def fast_gram():
        return conflict_matrix(class_gradients(model, (x, y), statistic='gram'))

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
        torch.autograd.grad(per_class, params, torch.eye(num_classes),
                            is_grads_batched=True)
        model.train()

    hook = GradientConflictHook()
    out_dir = tempfile.mkdtemp(prefix='gcm_bench_')

    def hook_work():
        result = fast_gram()
        result.to_npz(os.path.join(out_dir, 'gcm.npz'))
        plot_heatmap(result.matrix.numpy(), os.path.join(out_dir, 'gcm.png'))

    rows = [('training step', train_step), ('fast (Gram)', fast_gram),
            ('fast (class gradients)', fast_grads)]
    if not args.skip_loop:
        rows.append(('loop (autograd.grad per class)', loop))
    if args.batched:
        rows.append(('batched autograd (is_grads_batched)', batched))
    results = {}
    for name, fn in rows:
        repeats = 1 if name.startswith(('loop', 'batched')) else args.repeats
        results[name] = measure(fn, repeats)
    step = results['training step'][0]
    print(f'ResNet-32, {num_classes} classes, batch {n}, '
          f'{args.threads} threads, torch {torch.__version__}; '
          f'peak memory is resident memory above the start of each row')
    print(f'{"method":40s} {"seconds":>9s} {"steps":>7s} {"peak MB":>8s}')
    for name, (seconds, peak) in results.items():
        print(f'{name:40s} {seconds:9.3f} {seconds / step:7.2f} '
              f'{peak:8.0f}')
    hook_seconds, _ = measure(hook_work, args.repeats)
    overhead = hook_seconds / (hook.interval * step)
    print(f'hook at its default interval ({hook.interval} iterations): '
          f'{hook_seconds:.3f} s per analysis (fast + .npz + PNG) = '
          f'{100 * overhead:.2f}% of training time')
    ref = fast_grads()
    if not args.skip_loop:
        diff = (ref.matrix - loop().matrix).abs().nan_to_num().max().item()
        print(f'max |fast - loop| over the cosine matrix: {diff:.2e}')


if __name__ == '__main__':
    main()
