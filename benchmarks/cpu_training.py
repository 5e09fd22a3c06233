"""CPU training speed: fp32 against bf16 autocast and bf16 + channels-last,
side by side in one run, for ResNet-32 on CIFAR (batch 128) and the CPU DFA
config (SegFormer-B0 + DFA head, batch 8, 128 px).

    python benchmarks/cpu_training.py [--models resnet32 dfa] [--rounds 8]
        [--warmup 3] [--threads N] [--compile]

Each variant is a copy of the same model, trained through the real
``model.train_step`` (data preprocessing, forward, loss, backward, optimizer
step) with mmengine's ``OptimWrapper`` (fp32) or mmimb's
``CPUAmpOptimWrapper`` (bf16), the last one also with ``ChannelsLastHook``.
Rounds interleave the variants (a different order each round), so that a
change of machine load hits all of them alike; the table gives the median
step time, its ratio to fp32, and the activation memory (bytes autograd
saves for the backward pass, :func:`mmimb.utils.autograd_footprint`). The
first bf16 + channels-last steps are slow while oneDNN builds its kernels:
``--warmup`` steps per variant are not timed. ``--compile`` adds fp32 and
bf16 + channels-last with ``train_step`` compiled by ``torch.compile``, as
mmengine's runner does for ``compile = True`` in a config; the table gives
the time of their first ``--warmup`` steps, the compilation's (their
activation memory is not measured: the compiled graph saves what it
chooses).

A first table gives the CPU's own bf16 gain on arithmetic, as context for
the steps' gains: a large matrix product in fp32 and in bf16, timed the
same way. It varies from run to run and is no bound on a step's gain.
"""
import argparse
import copy
import os
import os.path as osp
import statistics
import sys
import time
from types import SimpleNamespace

import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

from mmengine.config import Config  # noqa: E402
from mmengine.registry import MODELS, OPTIM_WRAPPERS  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

from mmimb.engine import resolve_config  # noqa: E402
from mmimb.engine.hooks import ChannelsLastHook  # noqa: E402
from mmimb.engine.optimizers import cpu_bf16_support  # noqa: E402
from mmimb.utils import autograd_footprint  # noqa: E402

MODELS_TO_CONFIG = {
    'resnet32': 'configs/ccar/ce_resnet32_1xb128-200e_cifar10-lt-if100.py',
    'dfa':
    'configs/dfa/dfa_mit-b0_1xb8-300it_synthetic-tissue-crossed-128x128.py',
}
VARIANTS = ('fp32', 'bf16', 'bf16 + channels_last')
COMPILED = ('fp32 + compile', 'bf16 + channels_last + compile')


def cifar_batch(batch_size: int) -> dict:
    from mmpretrain.structures import DataSample
    g = torch.Generator().manual_seed(0)
    return dict(
        inputs=[torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8,
                              generator=g) for _ in range(batch_size)],
        data_samples=[DataSample().set_gt_label(int(i)) for i in
                      torch.randint(0, 10, (batch_size, ), generator=g)])


def dataloader_batch(cfg: Config) -> dict:
    from mmengine.runner import Runner
    loader_cfg = copy.deepcopy(cfg.train_dataloader)
    loader_cfg.update(num_workers=0, persistent_workers=False)
    return next(iter(Runner.build_dataloader(loader_cfg, seed=0)))


def build(name: str):
    """The model of ``name``'s config, its optimizer config and a batch."""
    cfg = Config.fromfile(osp.join(ROOT, MODELS_TO_CONFIG[name]))
    init_default_scope(cfg.default_scope)
    cfg = resolve_config(cfg)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    batch = cifar_batch(128) if name == 'resnet32' else dataloader_batch(cfg)
    return model, cfg.optim_wrapper.optimizer, batch


def variant(model, optimizer_cfg: dict, kind: str):
    model = copy.deepcopy(model).train()
    if kind.endswith(' + compile'):
        model.train_step = torch.compile(model.train_step)
        kind = kind[:-len(' + compile')]
    optimizer = copy.deepcopy(dict(optimizer_cfg))
    optimizer['params'] = model.parameters()
    from mmengine.registry import OPTIMIZERS
    wrapper = OPTIM_WRAPPERS.build(
        dict(type='OptimWrapper' if kind == 'fp32' else 'CPUAmpOptimWrapper',
             optimizer=OPTIMIZERS.build(optimizer)))
    if kind == 'bf16 + channels_last':
        ChannelsLastHook().before_run(SimpleNamespace(model=model))
    return model, wrapper


def saved_bytes(model, wrapper, batch) -> int:
    def step():
        with wrapper.optim_context(model):
            data = model.data_preprocessor(copy.copy(batch), True)
            losses = model(**data, mode='loss')
        return model.parse_losses(losses)[0]

    footprint = autograd_footprint(step)
    wrapper.zero_grad()
    return footprint.saved_bytes


def ceiling_row(rounds: int = 30, n: int = 1024) -> str:
    """Median time of an ``n`` x ``n`` x ``n`` matrix product in fp32 and
    bf16, interleaved over ``rounds`` rounds, and their ratio."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    operands = {'fp32': (a, b), 'bf16': (a.bfloat16(), b.bfloat16())}
    times = {kind: [] for kind in operands}
    for _ in range(rounds + 1):
        for kind, (x, y) in operands.items():
            start = time.perf_counter()
            x @ y
            times[kind].append(time.perf_counter() - start)
    # The first round is oneDNN's warm-up.
    fp32, bf16 = (statistics.median(times[kind][1:]) for kind in operands)
    flop = 2 * n**3
    return (f'| matmul {n}x{n}x{n} | {flop / fp32 / 1e9:.0f} | '
            f'{flop / bf16 / 1e9:.0f} | {fp32 / bf16:.2f}x |')


def benchmark(name: str, rounds: int, warmup: int, kinds: tuple) -> list:
    model, optimizer_cfg, batch = build(name)
    runs = {kind: variant(model, optimizer_cfg, kind) for kind in kinds}
    warmup_s, failed = {}, {}
    for kind, (m, w) in runs.items():
        start = time.perf_counter()
        try:
            for _ in range(warmup):
                m.train_step(copy.copy(batch), w)
        # torch.compile fails with many exception types; an eager
        # variant's failure is a bug and propagates.
        except Exception as e:
            if kind in VARIANTS:
                raise
            failed[kind] = f'{type(e).__name__}: {e}'.splitlines()[0][:120]
        warmup_s[kind] = time.perf_counter() - start
    kinds = tuple(k for k in kinds if k not in failed)
    times = {kind: [] for kind in kinds}
    for r in range(rounds):
        order = kinds[r % len(kinds):] + kinds[:r % len(kinds)]
        for kind in order:
            m, w = runs[kind]
            start = time.perf_counter()
            m.train_step(copy.copy(batch), w)
            times[kind].append(time.perf_counter() - start)
    memory = {kind: saved_bytes(*runs[kind], batch) for kind in VARIANTS}
    base = statistics.median(times['fp32'])
    rows = []
    for kind in kinds:
        median = statistics.median(times[kind])
        mem = (f'{memory[kind] / 2**20:.1f} | '
               f'{memory[kind] / memory["fp32"]:.2f}'
               if kind in memory else '- | -')
        rows.append(
            f'| {name} | {kind} | {median:.3f} | {min(times[kind]):.3f} | '
            f'{base / median:.2f}x | {mem} | {warmup_s[kind]:.0f} |')
    for kind, error in failed.items():
        rows.append(f'| {name} | {kind} | failed after '
                    f'{warmup_s[kind]:.0f} s: {error} | | | | | |')
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--models', nargs='+', default=list(MODELS_TO_CONFIG),
                        choices=list(MODELS_TO_CONFIG))
    parser.add_argument('--rounds', type=int, default=8)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--threads', type=int, default=None,
                        help='torch threads (default: torch\'s, one per '
                        'physical core)')
    parser.add_argument('--compile', action='store_true',
                        help='also time fp32 and bf16 + channels_last with '
                        'train_step compiled (torch.compile)')
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    supported, reason = cpu_bf16_support()
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, '
          f'{os.cpu_count()} logical CPUs, bf16: {reason}, load average '
          f'{os.getloadavg()[0]:.1f}')
    print('\n| arithmetic | fp32 GFLOP/s | bf16 GFLOP/s | bf16 speed-up |')
    print('| --- | --- | --- | --- |')
    print(ceiling_row(), flush=True)
    print('\n| model | variant | median step (s) | fastest step (s) | '
          'speed-up over fp32 | activation memory (MiB) | memory x fp32 | '
          'warm-up (s) |')
    print('| --- | --- | --- | --- | --- | --- | --- | --- |')
    kinds = VARIANTS + COMPILED * args.compile
    for name in args.models:
        for row in benchmark(name, args.rounds, args.warmup, kinds):
            print(row, flush=True)


if __name__ == '__main__':
    main()
