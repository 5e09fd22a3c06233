"""The GPU reproduction pack: the CIFAR-10-LT protocol of configs/ccar/, the
DFA evidence and paper path, and the CUDA micro-benchmarks, on one GPU in
one command.

    python tools/repro/gpu_pack.py --out DIR [--smoke]
        [--parts cifar dfa-synthetic dfa-paper micro] [--work-dir DIR]
        [--cifar-data PATH] [--cifar-methods ce la bs ccar ccar-la]
        [--cifar-seeds 1] [--cifar-epochs 200] [--cifar-jobs N]
        [--cifar-precision fp32|bf16] [--dfa-iters 3600]
        [--dfa-curve-every 450] [--dfa-seeds 0 1 2] [--dfa-jobs 12]
        [--paper-iters 50] [--paper-workers 8]
        [--paper-configs CONFIG ...] [--budget PART=SECONDS ...]

Parts (docs/gpu_pack.md says what each measures and what it is compared
with):

1. ``cifar``: ResNet-32 on CIFAR-10-LT IF100 with the 200-epoch LDAM
   protocol, ``configs/ccar/{METHOD}_resnet32_1xb128-200e_cifar10-lt-if100.py``
   with their dataset base swapped for ``cifar10_lt_if100_bank.py`` (the
   data decoded once and kept on the GPU, crop and flip there), all runs
   side by side as processes on the one GPU, after a short profile of one
   run alone that says where an iteration's time goes.
2. ``dfa-synthetic``: ``tools/evidence/dfa_synthetic.py`` (the calibrated
   benchmark
   configs/dfa/dfa_mit-b0_1xb8-300it_synthetic-tissue-crossed-128x128.py),
   all four bias modes, its runs side by side.
3. ``dfa-paper``: the DFA paper path at 1024 px (``--paper-configs``,
   default configs/dfa_bcss.py and, where the checkout has it,
   configs/dfa/dfa_sam-vit-b_1xb2-20k_bcss-1024x1024.py) with random SAM
   ViT-B weights on generated tiles in the BCSS layout, with ``--amp``:
   iterations per second, peak memory, the loss, and how many parameters
   the run changed.
4. ``micro``: benchmarks/dfa_attention.py, ccar_loss.py and
   gradient_conflict.py with ``--device cuda``.

It writes DIR/pack.json (every figure), DIR/pack.md (the tables, with the
GPU, torch and CUDA versions and the wall time of each part) and
DIR/logs.tar.gz (the runs' logs), after every part, so that a stopped pack
keeps what it finished. Each part has a wall-time budget (defaults sum to
8 minutes); runs still going at its end are stopped and reported with how
far they got. ``--smoke`` runs every part at toy size on the CPU, with
generated CIFAR-like images (tests/test_gpu_pack.py).
"""
import argparse
import copy
import json
import math
import os
import os.path as osp
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from io import BytesIO
from typing import Callable, Dict, List, Optional, Sequence

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# This checkout's mmimb, not an installed one.
sys.path.insert(0, ROOT)

PARTS = ('cifar', 'dfa-synthetic', 'dfa-paper', 'micro')
# Wall-time budget per part on one H200, seconds (docs/gpu_pack.md: how
# they were estimated); 480 s in all, the 8 minutes of the pack.
BUDGETS = {'cifar': 290, 'dfa-synthetic': 90, 'dfa-paper': 60, 'micro': 40}
SMOKE_BUDGET = 600
CIFAR_METHODS = ('ce', 'la', 'bs', 'ccar', 'ccar-la')
# A run's time beyond its training iterations: process start, decoding the
# bank, 20 evaluations (docs/gpu_pack.md).
CIFAR_START_SECONDS = 20
CIFAR_LABELS = {'ce': 'CE', 'la': 'LA (tau = 1)', 'bs': 'Balanced Softmax',
                'ccar': 'CCAR', 'ccar-la': 'CCAR + LA'}
# Published top-1 of ResNet-32 on CIFAR-10-LT IF100 (../shared/METHODS.md):
# CE under the 200-epoch LDAM protocol (Cao et al. 2019); LA's 77.7 (Menon
# et al. 2021) comes from a 1241-epoch protocol, so LDAM-DRW's 77.0 (Cao
# et al., the same 200 epochs) is the same-protocol reference for a method
# that favours the tail.
PUBLISHED = {'ce': '70.4 (200 ep.)', 'la': '77.7 (1241 ep.); LDAM-DRW '
             '77.0 (200 ep.)', 'bs': 'as LA (same loss, tau = 1)'}
METHOD_CONFIG = 'configs/ccar/{}_resnet32_1xb128-200e_cifar10-lt-if100.py'
PLAIN_BASE = 'configs/_base_/datasets/cifar10_lt_if100.py'
BANK_BASE = 'configs/_base_/datasets/cifar10_lt_if100_bank.py'
CIFAR_ARCHIVES = ('.gpu/carry/cifar10-jpg.tar.gz',
                  '../shared/data/cifar10-jpg.tar.gz')
CIFAR_CLASSES = ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog',
                 'frog', 'horse', 'ship', 'truck')
DFA_MODES = ('none', 'fixed', 'learned', 'anchored')
# Part 3's configs: the paper config, and its full-fine-tuning variant
# where the checkout has one. The pack reads no recipe from them: each row
# reports what its run trained (the parameters that changed).
PAPER_CONFIGS = ('configs/dfa_bcss.py',
                 'configs/dfa/dfa_sam-vit-b_1xb2-20k_bcss-1024x1024.py')
# BCSS's 5 classes in its label order, each with about its pixel frequency
# in BCSS (docs/datasets.md) and the look of the tissue generator's default
# class nearest to it, all easy (difficulty 0).
BCSS_LOOKS = (('tumor', 0.40, 'tumor'), ('stroma', 0.35, 'stroma'),
              ('inflammatory', 0.08, 'lymphocytes'),
              ('necrosis', 0.08, 'necrosis'), ('other', 0.09, 'fat'))
LOG_TAIL_BYTES = 256 * 1024


# --------------------------------------------------------------- settings
@dataclass
class Sizes:
    """Every size the parts run at; ``smoke`` shrinks them to seconds on a
    CPU."""
    cifar_epochs: int = 200
    cifar_profile_epochs: int = 2
    # Config changes (merged as by --cfg-options; none for the protocol).
    cifar_options: Dict[str, object] = field(default_factory=dict)
    cifar_train_per_class: Optional[int] = None  # generated data (smoke)
    # 3 times the 1200 iterations of the CPU evidence (docs/dfa.md); more
    # than the part's default budget fits by the estimate (docs/gpu_pack.md).
    dfa_iters: int = 3600
    dfa_curve_every: int = 450
    dfa_options: List[str] = field(default_factory=list)
    paper_iters: int = 50
    paper_tile: int = 1024
    paper_tiles: int = 48
    paper_options: List[str] = field(default_factory=list)
    micro_args: Dict[str, List[str]] = field(default_factory=dict)
    # Runs side by side at most (None: all); the CPU's cores for --smoke.
    max_jobs: Optional[int] = None
    default_dfa_seeds: List[int] = field(default_factory=lambda: [0, 1, 2])


def smoke_sizes() -> Sizes:
    tiny_vit = ('model.backbone.arch.embed_dims=32',
                'model.backbone.arch.num_layers=2',
                'model.backbone.arch.num_heads=2',
                'model.backbone.arch.feedforward_channels=64',
                'model.backbone.arch.global_attn_indexes=[1]',
                'model.backbone.img_size=128',
                'model.data_preprocessor.size=[128,128]',
                'train_dataloader.batch_size=2')
    return Sizes(
        cifar_epochs=1, cifar_profile_epochs=1,
        cifar_options={'train_dataloader.batch_size': 32,
                       'model.backbone.depth': 8},
        # IF100 leaves the rarest class 1 image of 100.
        cifar_train_per_class=100,
        dfa_iters=4, dfa_curve_every=2, default_dfa_seeds=[0],
        max_jobs=os.cpu_count(),
        dfa_options=['train_dataloader.dataset.num_samples=16',
                     'val_dataloader.dataset.num_samples=4',
                     # The smallest size at which the crossed benchmark
                     # can measure its classes' difficulty (6 stripes).
                     'train_dataloader.dataset.img_size=96',
                     'val_dataloader.dataset.img_size=96',
                     'model.data_preprocessor.size=[96,96]',
                     'train_dataloader.num_workers=0',
                     'train_dataloader.persistent_workers=False',
                     'val_dataloader.num_workers=0',
                     'val_dataloader.persistent_workers=False'],
        paper_iters=3, paper_tile=128, paper_tiles=4,
        paper_options=list(tiny_vit),
        micro_args={
            'dfa_attention': ['--repeat', '1', '--batch', '1', '--grid', '8',
                              '--classes', '5', '--head-batch', '1'],
            'ccar_loss': ['--repeat', '1', '--map-size', '32'],
            'gradient_conflict': ['--repeats', '1', '--classes', '10',
                                  '--batch-size', '16', '--loop-classes', '2',
                                  '--skip-segmentation'],
        })


# ------------------------------------------------------------ processes
@dataclass
class Job:
    label: str
    command: List[str]
    log: str


def run_jobs(jobs: Sequence[Job], parallel: int, deadline: float,
             env: Optional[dict] = None) -> Dict[str, dict]:
    """Run ``jobs``, at most ``parallel`` at a time, each in its own process
    group with its output in its log; stop what still runs at ``deadline``
    (``time.monotonic()``). Returns per label ``status`` ('ok', 'failed',
    'stopped at the budget', 'not started') and ``seconds``."""
    pending, running, done = list(jobs), [], {}

    def stop(entry, status):
        job, proc, start = entry
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        done[job.label] = dict(status=status,
                               seconds=time.monotonic() - start,
                               returncode=proc.returncode)

    try:
        while pending or running:
            now = time.monotonic()
            while pending and len(running) < parallel and now < deadline:
                job = pending.pop(0)
                os.makedirs(osp.dirname(job.log), exist_ok=True)
                with open(job.log, 'w') as log:
                    proc = subprocess.Popen(
                        job.command, stdout=log, stderr=subprocess.STDOUT,
                        cwd=ROOT, env=env, start_new_session=True)
                running.append((job, proc, now))
            if now >= deadline:
                for entry in running:
                    stop(entry, 'stopped at the budget')
                running = []
                for job in pending:
                    done[job.label] = dict(status='not started', seconds=0.0,
                                           returncode=None)
                pending = []
                break
            for entry in list(running):
                job, proc, start = entry
                if proc.poll() is not None:
                    running.remove(entry)
                    done[job.label] = dict(
                        status='ok' if proc.returncode == 0 else 'failed',
                        seconds=now - start, returncode=proc.returncode)
            time.sleep(0.2)
    finally:
        for entry in running:
            stop(entry, 'stopped (pack interrupted)')
    return done


def child_env(threads: int = 1) -> dict:
    env = dict(os.environ, PYTHONUNBUFFERED='1',
               OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    env['PYTHONPATH'] = os.pathsep.join(
        filter(None, [ROOT, os.environ.get('PYTHONPATH')]))
    return env


def single(kind: str, spec: dict, spec_path: str) -> List[str]:
    """The command that runs one ``kind`` of run in a child process."""
    os.makedirs(osp.dirname(spec_path), exist_ok=True)
    with open(spec_path, 'w') as f:
        json.dump(spec, f, indent=1)
    return [sys.executable, osp.abspath(__file__), '--single', kind,
            '--spec', spec_path]


def write_json(path: str, data) -> None:
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def read_json(path: str) -> Optional[dict]:
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def log_tail(path: str, lines: int = 15) -> str:
    if not osp.isfile(path):
        return ''
    with open(path, errors='replace') as f:
        return ''.join(f.readlines()[-lines:])


# ------------------------------------------------------------ environment
def environment(device: str) -> dict:
    import torch
    info = dict(device=device, python=platform.python_version(),
                torch=torch.__version__, cuda=torch.version.cuda,
                cudnn=torch.backends.cudnn.version(), cpus=os.cpu_count(),
                platform=platform.platform())
    for name in ('mmengine', 'mmcv', 'mmseg', 'mmpretrain', 'mmimb'):
        try:
            info[name] = __import__(name).__version__
        except Exception as e:  # reported, not fatal: the part says more
            info[name] = f'not importable ({type(e).__name__})'
    if device == 'cuda':
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name,
                    gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    capability=f'{props.major}.{props.minor}')
        try:
            info['driver'] = subprocess.run(
                ['nvidia-smi', '--query-gpu=driver_version',
                 '--format=csv,noheader'], capture_output=True, text=True,
                timeout=20).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            info['driver'] = 'nvidia-smi not available'
    try:
        info['commit'] = subprocess.run(
            ['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT,
            capture_output=True, text=True, timeout=20).stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        info['commit'] = None
    return info


def peak_memory(device: str) -> dict:
    """Peak memory of this process: allocated and reserved on the GPU, or
    the resident-set peak on the CPU."""
    import resource

    import torch
    if device == 'cuda':
        return dict(peak_allocated_gib=torch.cuda.max_memory_allocated() /
                    2**30,
                    peak_reserved_gib=torch.cuda.max_memory_reserved() /
                    2**30)
    return dict(peak_rss_gib=resource.getrusage(
        resource.RUSAGE_SELF).ru_maxrss / 2**20)


def history(runner, key: str) -> List[float]:
    """Every value the message hub holds for ``key`` (per iteration for
    training scalars, per evaluation for metrics)."""
    hub = runner.message_hub
    if key not in hub.log_scalars:
        return []
    return [float(v) for v in hub.get_scalar(key).data[0]]


def median_after(values: Sequence[float], skip: int) -> Optional[float]:
    rest = list(values[skip:]) or list(values)
    return statistics.median(rest) if rest else None


# ------------------------------------------------------------ CIFAR part
def swap_dataset_base(cfg, old_base: str, new_base: str) -> None:
    """Replace, in place, what the dataset base ``old_base`` put into the
    complete config ``cfg`` by what ``new_base`` puts there, as if ``cfg``
    listed ``new_base`` among its bases instead; ``custom_hooks`` are added
    to the config's (one per type).

    Raises:
        ValueError: If ``cfg`` changed a key of ``old_base`` (then the swap
            would drop that change), naming the key.
    """
    from mmengine.config import Config
    old = Config.fromfile(osp.join(ROOT, old_base)).to_dict()
    new = Config.fromfile(osp.join(ROOT, new_base)).to_dict()
    for key, value in old.items():
        if key in cfg and cfg[key] != value and key in new:
            raise ValueError(f'{cfg.filename}: {key} differs from {old_base}'
                             f', so swapping in {new_base} would lose the '
                             'change; write the config on top of '
                             f'{new_base} instead')
    for key, value in new.items():
        if key == 'custom_hooks':
            hooks = list(cfg.get('custom_hooks', []))
            types = {h['type'] for h in hooks}
            cfg.custom_hooks = hooks + [h for h in value
                                        if h['type'] not in types]
        else:
            cfg[key] = copy.deepcopy(value)


def cifar_config(spec: dict):
    """The run's config: the method's config from configs/ccar/ on the
    device-side data path, with the run's seed, data and length."""
    from mmengine.config import Config
    path = osp.join(ROOT, METHOD_CONFIG.format(spec['method']))
    cfg = Config.fromfile(path)
    swap_dataset_base(cfg, PLAIN_BASE, BANK_BASE)
    root = spec['data_root']
    cfg.train_dataloader.dataset.dataset.dataset.data_root = root
    cfg.val_dataloader.dataset.dataset.data_root = root
    cfg.test_dataloader.dataset.dataset.data_root = root
    cfg.work_dir = spec['work_dir']
    cfg.launcher = 'none'
    cfg.randomness = dict(seed=spec['seed'], deterministic=False)
    # Fixed input shapes: let cuDNN pick its fastest kernels.
    cfg.env_cfg.cudnn_benchmark = True
    cfg.train_cfg.max_epochs = spec['epochs']
    cfg.merge_from_dict(spec['options'])
    if spec.get('precision') == 'bf16':
        from mmimb.engine.launch import enable_amp
        enable_amp(cfg)
        if cfg.optim_wrapper.type == 'AmpOptimWrapper':
            cfg.optim_wrapper.dtype = 'bfloat16'
    return cfg


def write_cifar_like(root: str, train_per_class: int,
                     test_per_class: int) -> str:
    """A CIFAR-10-like JPEG tree (``root/{train,test}/<class>/*.jpg``), each
    class its own colour, for smoke runs without the real archive."""
    import cv2
    import numpy as np
    rng = np.random.default_rng(0)
    for split, count in (('train', train_per_class),
                         ('test', test_per_class)):
        for c, name in enumerate(CIFAR_CLASSES):
            folder = osp.join(root, split, name)
            os.makedirs(folder, exist_ok=True)
            for i in range(count):
                img = rng.integers(0, 60, (32, 32, 3)) + 19 * c
                cv2.imwrite(osp.join(folder, f'{i:04d}.jpg'),
                            img.astype(np.uint8))
    return root


def cifar_data(args, sizes: Sizes, work: str) -> str:
    """A folder with train/ and test/ class folders: --cifar-data (a folder
    or a .tar.gz of the JPEG release), else data/cifar10, else the archive
    carried in .gpu/carry or beside the repository; generated for --smoke."""
    if sizes.cifar_train_per_class and not args.cifar_data:
        root = osp.join(work, 'cifar_like')
        if not osp.isdir(osp.join(root, 'test')):
            write_cifar_like(root, sizes.cifar_train_per_class, 10)
        return root
    candidates = [args.cifar_data] if args.cifar_data else [
        osp.join(ROOT, p) for p in ('data/cifar10', ) + CIFAR_ARCHIVES]
    for path in candidates:
        if osp.isdir(osp.join(path, 'train')) and \
                osp.isdir(osp.join(path, 'test')):
            return osp.abspath(path)
        if osp.isfile(path) and path.endswith(('.tar.gz', '.tgz')):
            dest = osp.join(work, 'cifar10_extracted')
            done = osp.join(dest, '.complete')
            if not osp.isfile(done):
                shutil.rmtree(dest, ignore_errors=True)
                os.makedirs(dest)
                subprocess.run(['tar', 'xzf', path, '-C', dest], check=True)
                open(done, 'w').close()
            for sub in ('cifar10', '.'):
                found = osp.join(dest, sub)
                if osp.isdir(osp.join(found, 'train')):
                    return osp.abspath(found)
            raise SystemExit(f'error: {path} holds no train/ folder '
                             '(expected cifar10/{train,test}/<class>/*.jpg)')
    raise SystemExit('error: no CIFAR-10 JPEG data: give --cifar-data (a '
                     'folder with train/ and test/, or cifar10-jpg.tar.gz); '
                     f'looked at {", ".join(candidates)}')


def last_validation(work_dir: str) -> Optional[dict]:
    """The epoch and top-1 of the last validation of a run that did not
    finish, from mmengine's scalars file, or None."""
    import glob
    last = None
    for path in glob.glob(osp.join(work_dir, '*', 'vis_data',
                                   'scalars.json')):
        with open(path) as f:
            for line in f:
                entry = json.loads(line)
                if 'lt/top1' in entry:
                    last = dict(epoch=entry['step'], top1=entry['lt/top1'])
    return last


def run_cifar_train(spec: dict) -> None:
    """One (method, seed) run of part 1: train, test, write result.json."""
    import torch

    from mmimb.engine import build_runner
    cfg = cifar_config(spec)
    runner = build_runner(cfg, 'train')
    start = time.perf_counter()
    runner.train()
    seconds = time.perf_counter() - start
    metrics = runner.test()
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    result = dict(
        method=spec['method'], seed=spec['seed'], epochs=spec['epochs'],
        iterations=runner.iter, train_seconds=seconds,
        iteration_ms=1e3 * median_after(history(runner, 'train/time'), 50),
        metrics={k: v for k, v in metrics.items()
                 if not isinstance(v, (list, tuple))},
        val_top1=history(runner, 'val/lt/top1'), **peak_memory(device))
    write_json(osp.join(spec['work_dir'], 'result.json'), result)


def _timed(fn: Callable, sync: Callable, repeat: int) -> float:
    """Median seconds of ``fn`` over ``repeat`` calls, synchronised."""
    times = []
    for _ in range(repeat):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_cifar_profile(spec: dict) -> None:
    """Where one CIFAR iteration's time goes, in one run alone: the
    training loop as it runs (mmengine's logged per-iteration time), then
    its parts timed in isolation on the warm model: fetching a batch, the
    data preprocessor (gather, crop, flip, normalise), ``train_step``
    (preprocessor, forward, backward, SGD step) synchronised and as the
    host sees it, the GPU kernels of a step (profiler), and train_step in
    bf16 autocast and channels-last for comparison."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from mmimb.engine import build_runner
    cfg = cifar_config(spec)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    runner = build_runner(cfg, 'train')
    start = time.perf_counter()
    runner.train()
    loop_seconds = time.perf_counter() - start
    epoch_iters = len(runner.train_dataloader)
    iter_times = history(runner, 'train/time')
    data_times = history(runner, 'train/data_time')
    cuda = torch.cuda.is_available()
    device = 'cuda' if cuda else 'cpu'
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    model, wrapper = runner.model, runner.optim_wrapper
    model.train()

    def endless():
        while True:
            yield from runner.train_dataloader

    loader = endless()
    repeat = spec['repeat']
    batches = [next(loader) for _ in range(repeat)]
    fetch = _timed(lambda: next(loader), sync, repeat)
    position = iter(range(10**9))

    def batch():
        return batches[next(position) % repeat]

    pre = _timed(lambda: model.data_preprocessor(batch(), True), sync,
                 repeat)
    step = _timed(lambda: model.train_step(batch(), wrapper), sync, repeat)
    host = []
    for _ in range(repeat):
        sync()
        t0 = time.perf_counter()
        model.train_step(batch(), wrapper)
        host.append(time.perf_counter() - t0)
        sync()
    activities = [ProfilerActivity.CPU] + (
        [ProfilerActivity.CUDA] if cuda else [])
    steps = min(5, repeat)
    with profile(activities=activities) as prof:
        for _ in range(steps):
            model.train_step(batch(), wrapper)
        sync()
    events = prof.events()
    launches = sum(1 for e in events if 'LaunchKernel' in e.name) / steps
    # Each operator's own kernel time, summed: the GPU's busy time.
    kernel_ms = sum(
        getattr(e, 'self_device_time_total', 0) for e in
        prof.key_averages()) / 1e3 / steps if cuda else None
    ops = sum(1 for e in events if e.name.startswith('aten::')) / steps
    variants = {}

    def bf16_step():
        with torch.autocast(device, dtype=torch.bfloat16):
            model.train_step(batch(), wrapper)

    variants['bf16 autocast'] = _timed(bf16_step, sync, repeat)
    from mmimb.engine.hooks.channels_last_hook import _channels_last_inputs
    model.to(memory_format=torch.channels_last)
    model.data_preprocessor.register_forward_hook(_channels_last_inputs)
    variants['channels-last'] = _timed(
        lambda: model.train_step(batch(), wrapper), sync, repeat)
    variants['channels-last + bf16'] = _timed(bf16_step, sync, repeat)
    steady = iter_times[epoch_iters:] or iter_times
    iteration = statistics.median(steady)
    result = dict(
        device=device, batch=cfg.train_dataloader.batch_size,
        iterations=runner.iter, epoch_iterations=epoch_iters,
        loop_seconds=loop_seconds, iteration_ms=1e3 * iteration,
        logged_data_ms=1e3 * statistics.median(
            data_times[epoch_iters:] or data_times),
        fetch_ms=1e3 * fetch, preprocessor_ms=1e3 * pre,
        train_step_ms=1e3 * step, train_step_host_ms=1e3 * statistics.median(
            host), gpu_kernel_ms=kernel_ms,
        kernel_launches_per_step=launches if cuda else None,
        aten_ops_per_step=ops,
        hooks_and_loop_ms=1e3 * (iteration - fetch - step),
        variants_ms={k: 1e3 * v for k, v in variants.items()},
        **peak_memory(device))
    write_json(osp.join(spec['work_dir'], 'profile.json'), result)


def fit_projection(profile: dict, runs: int, iterations: int,
                   seconds: float) -> dict:
    """How many runs of ``iterations`` fit in ``seconds``, from a profile of
    one run alone: k runs side by side go at most k times as fast as one
    (each bound by its own host), and at most as fast as the GPU's kernel
    time per iteration allows (time slicing serialises the processes'
    kernels). Process start and CPU contention are not modelled;
    ``runs_that_fit`` is None without a GPU kernel time."""
    alone = profile['iteration_ms'] / 1e3
    kernel = (profile.get('gpu_kernel_ms') or 0) / 1e3
    rate = runs / alone if not kernel else min(runs / alone, 1 / kernel)
    if not kernel:
        fit = None
    elif iterations * alone > seconds:
        fit = 0
    else:
        fit = math.floor(seconds / (iterations * kernel))
    return dict(projected_seconds=runs * iterations / rate,
                gpu_bound=bool(kernel) and 1 / kernel < runs / alone,
                runs_that_fit=fit)


def part_cifar(args, sizes: Sizes, work: str, deadline: float) -> dict:
    root = cifar_data(args, sizes, work)
    base = osp.join(work, 'cifar')
    env = child_env()
    profile_spec = dict(method='ce', seed=0, epochs=sizes.cifar_profile_epochs,
                        data_root=root, work_dir=osp.join(base, 'profile'),
                        repeat=20 if not args.smoke else 2,
                        precision=args.cifar_precision,
                        options=sizes.cifar_options)
    shutil.rmtree(profile_spec['work_dir'], ignore_errors=True)
    jobs = [Job('profile', single('cifar-profile', profile_spec,
                                  osp.join(base, 'profile.spec.json')),
                osp.join(base, 'profile.log'))]
    status = run_jobs(jobs, 1, deadline, env)
    profile = read_json(osp.join(profile_spec['work_dir'], 'profile.json'))
    jobs = []
    # Seed 0 of every method first, should not all of them fit.
    for seed in range(args.cifar_seeds):
        for method in args.cifar_methods:
            spec = dict(method=method, seed=seed, epochs=sizes.cifar_epochs,
                        data_root=root, precision=args.cifar_precision,
                        options=sizes.cifar_options,
                        work_dir=osp.join(base, f'{method}_seed{seed}'))
            shutil.rmtree(spec['work_dir'], ignore_errors=True)
            jobs.append(Job(f'{method} seed {seed}',
                            single('cifar-train', spec,
                                   spec['work_dir'] + '.spec.json'),
                            spec['work_dir'] + '.log'))
    # Only the runs that the profile says fit: time slicing keeps runs
    # abreast, so runs cut short at the budget would all stop unfinished.
    fit = fit_projection(
        profile, len(jobs), sizes.cifar_epochs * profile['epoch_iterations'],
        deadline - time.monotonic() - CIFAR_START_SECONDS)['runs_that_fit'] \
        if profile else None
    started = jobs if fit is None else jobs[:max(1, fit)]
    for job in jobs[len(started):]:
        status[job.label] = dict(
            status='not started: projected not to fit the budget',
            seconds=0.0, returncode=None)
    start = time.monotonic()
    side_by_side = min(args.cifar_jobs or len(started),
                       sizes.max_jobs or len(started))
    status.update(run_jobs(started, side_by_side, deadline, env))
    runs_seconds = time.monotonic() - start
    results, progress = [], {}
    for job in jobs:
        method, seed = job.label.split(' seed ')
        result = read_json(osp.join(base, f'{method}_seed{seed}',
                                    'result.json'))
        if result:
            results.append(result)
        else:
            progress[job.label] = dict(status[job.label],
                                       last_log=log_tail(job.log, 3),
                                       last_validation=last_validation(
                                           job.log[:-len('.log')]))
    iterations = sum(r['iterations'] for r in results)
    out = dict(data_root=root, profile=profile, runs=results,
               unfinished=progress, status=status,
               side_by_side=side_by_side, projected_fit=fit,
               runs_wall_seconds=runs_seconds,
               iterations_per_second=iterations / runs_seconds
               if results else None)
    if profile and results:
        out['projection'] = fit_projection(
            profile, len(started), results[0]['iterations'], runs_seconds)
    return out


# ------------------------------------------------------ DFA synthetic part
def part_dfa_synthetic(args, sizes: Sizes, work: str,
                       deadline: float) -> dict:
    # Kept: a rerun with the same work dir and length reuses the finished
    # runs (tools/evidence/dfa_synthetic.py does).
    out_dir = osp.join(work, f'dfa_synthetic_{sizes.dfa_iters}it_every'
                       f'{sizes.dfa_curve_every}')
    seeds = args.dfa_seeds or sizes.default_dfa_seeds
    command = [
        sys.executable,
        osp.join(ROOT, 'tools', 'evidence', 'dfa_synthetic.py'),
        '--iters', str(sizes.dfa_iters), '--curve-every',
        str(sizes.dfa_curve_every), '--modes', *DFA_MODES, '--seeds',
        *map(str, seeds), '--jobs',
        str(min(args.dfa_jobs or len(DFA_MODES) * len(seeds),
                sizes.max_jobs or len(DFA_MODES) * len(seeds))),
        '--threads', '1', '--work-dir', out_dir
    ]
    if sizes.dfa_options:
        command += ['--cfg-options', *sizes.dfa_options]
    log = osp.join(work, 'dfa_synthetic.log')
    status = run_jobs([Job('dfa_synthetic', command, log)], 1, deadline,
                      child_env())['dfa_synthetic']
    summary = read_json(osp.join(out_dir, 'summary.json'))
    out = dict(command=' '.join(command[1:]).replace(ROOT + '/', ''),
               status=status, iters=sizes.dfa_iters)
    if summary:
        import numpy as np
        out['modes'] = {
            mode: dict(
                miou=[float(np.mean(r['curve'][-1]['iou'])) for r in runs],
                iou=[r['curve'][-1]['iou'] for r in runs],
                train_seconds=[r['train_seconds'] for r in runs])
            for mode, runs in summary.items()
        }
        out['classes'] = next(iter(summary.values()))[0]['classes']
        with open(osp.join(out_dir, 'summary.md')) as f:
            out['summary_md'] = f.read()
    else:
        out['last_log'] = log_tail(log)
    return out


# --------------------------------------------------------- DFA paper part
def _paint_tile(task) -> None:
    import cv2
    import numpy as np

    from mmimb.datasets import TissueGenerator
    from mmimb.datasets.synthetic_tissue import DEFAULT_CLASS_SPECS
    looks = {spec['name']: spec for spec in DEFAULT_CLASS_SPECS}
    specs = [dict(looks[look], name=name, freq=freq, difficulty=0.0)
             for name, freq, look in BCSS_LOOKS]
    index, size, img_path, ann_path = task
    generator = TissueGenerator(specs, img_size=size, seed=0)
    image, label = generator(index)
    # A band outside the region of interest, as BCSS tiles have (255).
    label = label.copy()
    label[:size // 32] = 255
    cv2.imwrite(img_path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    cv2.imwrite(ann_path, label.astype(np.uint8))


def write_bcss_tiles(root: str, size: int, train: int, workers: int) -> str:
    """Generated tissue tiles in the layout of a converted BCSS folder's
    training split (``img_dir/train`` RGB PNGs, ``ann_dir/train`` labels 0-4
    and 255, mmimb.datasets.BCSSDataset), painted by the tissue generator."""
    from multiprocessing import Pool
    done = osp.join(root, '.complete')
    if osp.isfile(done):
        return root
    for sub in ('img_dir', 'ann_dir'):
        os.makedirs(osp.join(root, sub, 'train'), exist_ok=True)
    tasks = [(i, size, osp.join(root, 'img_dir', 'train', f'{i:03d}.png'),
              osp.join(root, 'ann_dir', 'train', f'{i:03d}.png'))
             for i in range(train)]
    with Pool(max(1, min(workers, len(tasks)))) as pool:
        pool.map(_paint_tile, tasks)
    open(done, 'w').close()
    return root


def paper_config(spec: dict):
    from mmimb.cli.train import parse_args
    from mmimb.engine import load_config
    from mmimb.engine.launch import enable_amp
    path = osp.join(ROOT, spec['config'])
    root = spec['data_root']
    iters = spec['iters']
    options = [
        f'train_dataloader.dataset.data_root={root}',
        # Random weights: no SAM checkpoint is carried.
        'model.backbone.init_cfg=None', 'model.decode_head.init_cfg=None',
        f'train_dataloader.num_workers={spec["workers"]}',
        'default_hooks.logger.interval=10',
        f'default_hooks.checkpoint.interval={10 * iters}',
        'default_hooks.checkpoint.save_last=False',
    ] + spec['options']
    cfg = load_config(path, parse_args(
        [path, '--work-dir', spec['work_dir'], '--cfg-options', *options]))
    # Training only: no validation (nor the best checkpoint it writes).
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.log_processor = dict(by_epoch=False)
    if cfg.default_hooks.checkpoint.get('by_epoch') is not None:
        cfg.default_hooks.checkpoint.by_epoch = False
    enable_amp(cfg)
    return cfg


def run_paper(spec: dict) -> None:
    """One variant of part 3: ``iters`` training iterations with --amp."""
    import torch

    from mmimb.engine import build_runner
    cfg = paper_config(spec)
    runner = build_runner(cfg, 'train')
    # What the recipe trains, whatever freezes the rest (requires_grad, a
    # learning rate of 0, a wrapper model): the parameters that change.
    before = {name: p.detach().clone()
              for name, p in runner.model.named_parameters()}
    start = time.perf_counter()
    runner.train()
    seconds = time.perf_counter() - start
    changed = sum(p.numel() for name, p in runner.model.named_parameters()
                  if not torch.equal(p.detach(), before[name]))
    del before
    times = history(runner, 'train/time')
    data_times = history(runner, 'train/data_time')
    losses = history(runner, 'train/loss')
    skip = min(5, max(0, len(times) - 1))
    iteration = median_after(times, skip)
    k = max(1, min(10, len(losses) // 2))
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    model = runner.model
    result = dict(
        config=spec['config'], model=cfg.model.type, iterations=runner.iter,
        train_seconds=seconds,
        batch=cfg.train_dataloader.batch_size,
        accumulative_counts=cfg.optim_wrapper.get('accumulative_counts', 1),
        optim_wrapper=cfg.optim_wrapper.type,
        iterations_per_second=1 / iteration if iteration else None,
        iteration_ms=1e3 * iteration if iteration else None,
        data_ms=1e3 * median_after(data_times, skip) if data_times else None,
        loss_first=statistics.mean(losses[:k]) if losses else None,
        loss_last=statistics.mean(losses[-k:]) if losses else None,
        loss_finite=all(math.isfinite(v) for v in losses),
        losses=losses, changed_parameters=changed,
        requires_grad_parameters=sum(p.numel() for p in model.parameters()
                                     if p.requires_grad),
        parameters=sum(p.numel() for p in model.parameters()),
        **peak_memory(device))
    write_json(osp.join(spec['work_dir'], 'result.json'), result)


def part_dfa_paper(args, sizes: Sizes, work: str, deadline: float) -> dict:
    base = osp.join(work, 'dfa_paper')
    root = write_bcss_tiles(
        osp.join(base, f'bcss_{sizes.paper_tile}px_{sizes.paper_tiles}'),
        sizes.paper_tile, sizes.paper_tiles, args.paper_workers)
    out = {}
    for i, config in enumerate(args.paper_configs):
        name = config
        spec = dict(config=config, data_root=root, iters=sizes.paper_iters,
                    workers=args.paper_workers, options=sizes.paper_options,
                    work_dir=osp.join(base, f'variant{i}'))
        shutil.rmtree(spec['work_dir'], ignore_errors=True)
        log = spec['work_dir'] + '.log'
        status = run_jobs([Job(name, single('paper', spec,
                                            spec['work_dir'] + '.spec.json'),
                               log)], 1, deadline,
                          child_env(2))[name]
        result = read_json(osp.join(spec['work_dir'], 'result.json')) or \
            dict(config=config, last_log=log_tail(log))
        out[name] = dict(result, status=status)
    return dict(tile=sizes.paper_tile, tiles=sizes.paper_tiles,
                variants=out)


# ---------------------------------------------------------- micro part
def micro_commands(device: str, sizes: Sizes) -> Dict[str, List[str]]:
    bench = osp.join(ROOT, 'benchmarks')
    commands = {
        'dfa_attention': [osp.join(bench, 'dfa_attention.py'), '--device',
                          device],
        'dfa_attention bf16': [osp.join(bench, 'dfa_attention.py'),
                               '--device', device, '--dtype', 'bfloat16',
                               '--skip-heads'],
        'ccar_loss': [osp.join(bench, 'ccar_loss.py'), '--device', device],
        'gradient_conflict': [osp.join(bench, 'gradient_conflict.py'),
                              '--device', device],
    }
    for name, command in commands.items():
        command += sizes.micro_args.get(name.split()[0], [])
    return commands


def part_micro(args, sizes: Sizes, work: str, deadline: float,
               device: str) -> dict:
    """The benchmarks one after another (their timings alone on the GPU),
    or side by side on the CPU's cores for --smoke."""
    base = osp.join(work, 'micro')
    commands = micro_commands(device, sizes)
    jobs = [Job(name, [sys.executable, *command],
                osp.join(base, name.replace(' ', '_') + '.out'))
            for name, command in commands.items()]
    status = run_jobs(jobs, sizes.max_jobs or 1, deadline,
                      child_env(1 if args.smoke else 2))
    out = {}
    for job in jobs:
        # Without the profiler's start/stop lines.
        text = ''.join(line for line in log_tail(job.log, 400).splitlines(
            True) if not line.startswith(('USDT:', 'ERROR:20')))
        out[job.label] = dict(
            command=' '.join(['python'] + job.command[1:]).replace(
                ROOT + '/', ''),
            status=status[job.label], output=text[-6000:])
    return out


# ------------------------------------------------------------- report
def mean_sd(values: Sequence[float], fmt: str = '.2f') -> str:
    values = [v for v in values if v is not None]
    if not values:
        return 'n/a'
    if len(values) == 1:
        return format(values[0], fmt)
    return (f'{format(statistics.mean(values), fmt)} ± '
            f'{format(statistics.stdev(values), fmt)}')


def _fmt(value, fmt: str = '.1f') -> str:
    return 'n/a' if value is None else format(value, fmt)


def cifar_markdown(part: dict) -> List[str]:
    lines = []
    profile = part.get('profile')
    if profile:
        kernel = profile.get('gpu_kernel_ms')
        lines += [
            f"One run alone ({profile['device']}, batch {profile['batch']}, "
            f"{profile['iterations']} iterations, the first epoch of "
            f"{profile['epoch_iterations']} as warm-up), per iteration, ms:",
            '',
            '| what | ms |', '| --- | --- |',
            f"| whole iteration in the training loop (mmengine's logged "
            f"time) | {profile['iteration_ms']:.2f} |",
            f"| fetching a batch (index items, collate) | "
            f"{profile['fetch_ms']:.2f} |",
            f"| train_step, synchronised | {profile['train_step_ms']:.2f} |",
            f"| of which the data preprocessor (gather, crop, flip, "
            f"normalise) | {profile['preprocessor_ms']:.2f} |",
            f"| train_step as the host sees it (not synchronised) | "
            f"{profile['train_step_host_ms']:.2f} |",
            '| GPU kernels of one train_step (profiler) | '
            f"{_fmt(kernel, '.2f')} |",
            f"| hooks, logging and loop (whole - fetch - train_step) | "
            f"{profile['hooks_and_loop_ms']:.2f} |",
            f"| kernel launches / aten operators per train_step | "
            f"{_fmt(profile.get('kernel_launches_per_step'), '.0f')} / "
            f"{profile['aten_ops_per_step']:.0f} |",
        ]
        lines += [f'| train_step, {k} | {v:.2f} |'
                  for k, v in profile['variants_ms'].items()]
        lines.append('')
    rows = ['| method | config | seeds | top-1 | balanced acc. | many | '
            'medium | few | published top-1 | train s per run | ms / it |',
            '|' + ' --- |' * 11]
    by_method = {}
    for r in part['runs']:
        by_method.setdefault(r['method'], []).append(r)
    for method, runs in by_method.items():
        def metric(name):
            return mean_sd([r['metrics'].get(f'lt/{name}') for r in runs])
        rows.append(
            f"| {CIFAR_LABELS.get(method, method)} | `..._{method}.py` | "
            f"{len(runs)} | {metric('top1')} | {metric('balanced_accuracy')}"
            f" | {metric('many_shot_acc')} | {metric('medium_shot_acc')} | "
            f"{metric('few_shot_acc')} | {PUBLISHED.get(method, 'none')} | "
            f"{mean_sd([r['train_seconds'] for r in runs], '.0f')} | "
            f"{mean_sd([r['iteration_ms'] for r in runs])} |")
    lines += rows
    epochs = part['runs'][0]['epochs'] if part['runs'] else None
    lines += ['', f"{len(part['runs'])} runs of {epochs} epochs, "
              f"{part['side_by_side']} side by side, in "
              f"{part['runs_wall_seconds']:.0f} s "
              f"({_fmt(part.get('iterations_per_second'))} "
              'iterations/s in all).']
    projection = part.get('projection')
    if projection:
        lines.append(
            'From the profile alone: projected '
            f"{projection['projected_seconds']:.0f} s"
            f" ({'GPU-bound' if projection['gpu_bound'] else 'host-bound'})"
            + (f"; by GPU kernel time at most {projection['runs_that_fit']}"
               ' such runs fit in the same time'
               if projection['runs_that_fit'] is not None else '') + '.')
    for label, info in part['unfinished'].items():
        val = info.get('last_validation')
        lines.append(f"- {label}: {info['status']} after "
                     f"{info['seconds']:.0f} s; "
                     + (f"top-1 {val['top1']:.2f} at epoch {val['epoch']}; "
                        if val else '') + 'last log lines: '
                     f"`{info['last_log'].strip()[-300:]}`")
    return lines


def dfa_synthetic_markdown(part: dict) -> List[str]:
    lines = [f"Command: `python {part['command']}`", '']
    if 'modes' not in part:
        return lines + [f"No summary ({part['status']['status']}); last log "
                        f"lines: `{part.get('last_log', '').strip()[-500:]}`"]
    classes = part['classes']
    lines += ['| mode | mIoU | ' + ' | '.join(classes) + ' | train s |',
              '|' + ' --- |' * (len(classes) + 3)]
    for mode, m in part['modes'].items():
        cells = [mean_sd([100 * v for v in m['miou']])]
        cells += [mean_sd([100 * iou[c] for iou in m['iou']])
                  for c in range(len(classes))]
        cells.append(mean_sd(m['train_seconds'], '.0f'))
        lines.append(f'| {mode} | ' + ' | '.join(cells) + ' |')
    return lines + ['', 'The evidence script\'s own summary (paired '
                    'differences, learning curve, bias correlations) is in '
                    'pack.json (`summary_md`) and logs.tar.gz.']


def dfa_paper_markdown(part: dict) -> List[str]:
    lines = [f"{part['tiles']} generated tiles of {part['tile']} px, random "
             'SAM weights, --amp.', '',
             '| config | model | status | batch | it/s | ms / it | data '
             'ms / it | peak GiB | loss first -> last | parameters trained '
             '(changed) / all |',
             '|' + ' --- |' * 10]
    for name, r in part['variants'].items():
        peak = r.get('peak_allocated_gib', r.get('peak_rss_gib'))
        lines.append(
            f"| `{name}` | {r.get('model', 'n/a')} | "
            f"{r['status']['status']} | "
            f"{r.get('batch', 'n/a')} x {r.get('accumulative_counts', 1)} | "
            f"{_fmt(r.get('iterations_per_second'), '.2f')} | "
            f"{_fmt(r.get('iteration_ms'))} | {_fmt(r.get('data_ms'))} | "
            f"{_fmt(peak, '.2f')} | {_fmt(r.get('loss_first'), '.3f')} -> "
            f"{_fmt(r.get('loss_last'), '.3f')}"
            f"{'' if r.get('loss_finite', True) else ' (NOT FINITE)'} | "
            f"{_fmt((r.get('changed_parameters') or 0) / 1e6, '.2f')}M / "
            f"{_fmt((r.get('parameters') or 0) / 1e6, '.2f')}M |")
    return lines


def micro_markdown(part: dict) -> List[str]:
    lines = []
    for name, r in part.items():
        lines += [f"**{name}** (`{r['command']}`, {r['status']['status']}, "
                  f"{r['status']['seconds']:.0f} s)",
                  '', '```', r['output'].strip()[-3000:], '```', '']
    return lines


RENDER = {'cifar': cifar_markdown, 'dfa-synthetic': dfa_synthetic_markdown,
          'dfa-paper': dfa_paper_markdown, 'micro': micro_markdown}
TITLES = {
    'cifar': '1. CIFAR-10-LT IF100, ResNet-32, 200-epoch LDAM protocol',
    'dfa-synthetic': '2. DFA on the calibrated synthetic benchmark',
    'dfa-paper': '3. The DFA paper path (SAM ViT-B, 1024 px, --amp)',
    'micro': '4. Micro-benchmarks',
}


def render_markdown(results: dict) -> str:
    env = results['environment']
    hardware = (f"{env.get('gpu', 'CPU')}"
                + (f" ({env['gpu_memory_gib']} GiB, driver {env['driver']})"
                   if 'gpu' in env else '') + f", {env['cpus']} CPU cores")
    lines = [
        '# mmimb GPU pack' + (' (smoke run: toy sizes)' if results['smoke']
                              else ''), '',
        f'Hardware: {hardware}. torch {env["torch"]}, CUDA {env["cuda"]}, '
        f'cuDNN {env["cudnn"]}, Python {env["python"]}; mmengine '
        f'{env["mmengine"]}, mmcv {env["mmcv"]}, mmseg {env["mmseg"]}, '
        f'mmpretrain {env["mmpretrain"]}. Commit {env.get("commit")}. '
        f'Command: `{results["command"]}`.', '',
        '| part | status | wall s | budget s |', '| --- | --- | --- | --- |'
    ]
    for name in results['parts_requested']:
        part = results['parts'].get(name)
        state = part['state'] if part else 'not run yet'
        wall = _fmt(part['wall_seconds'], '.0f') if part else ''
        lines.append(f'| {name} | {state} | {wall} | '
                     f'{results["budgets"][name]} |')
    budget = sum(results['budgets'][n] for n in results['parts_requested'])
    lines.append(f"| all | | {results.get('wall_seconds', 0):.0f} | "
                 f'{budget} |')
    for name in results['parts_requested']:
        part = results['parts'].get(name)
        if not part:
            continue
        lines += ['', f'## {TITLES[name]}', '']
        if 'error' in part:
            lines.append(f"Failed: `{part['error']}`")
        else:
            lines += RENDER[name](part['result'])
    return '\n'.join(lines) + '\n'


def write_report(out: str, results: dict, work: str) -> None:
    os.makedirs(out, exist_ok=True)
    write_json(osp.join(out, 'pack.json'), results)
    tmp = osp.join(out, 'pack.md.tmp')
    with open(tmp, 'w') as f:
        f.write(render_markdown(results))
    os.replace(tmp, osp.join(out, 'pack.md'))
    archive_logs(work, osp.join(out, 'logs.tar.gz'))


def archive_logs(work: str, path: str) -> None:
    """The runs' text outputs (logs, JSON, summaries; not checkpoints or
    images), each cut to its last 256 KB, as one .tar.gz."""
    keep = re.compile(r'\.(log|out|json|md)$')
    tmp = path + '.tmp'
    with tarfile.open(tmp, 'w:gz') as tar:
        for folder, _, files in os.walk(work):
            for name in sorted(files):
                if not keep.search(name):
                    continue
                full = osp.join(folder, name)
                with open(full, 'rb') as f:
                    f.seek(max(0, osp.getsize(full) - LOG_TAIL_BYTES))
                    data = f.read()
                info = tarfile.TarInfo(osp.relpath(full, work))
                info.size = len(data)
                info.mtime = int(osp.getmtime(full))
                tar.addfile(info, BytesIO(data))
    os.replace(tmp, path)


# ---------------------------------------------------------------- main
def parse_budgets(values: Optional[List[str]], smoke: bool) -> Dict[str, int]:
    budgets = dict.fromkeys(PARTS, SMOKE_BUDGET) if smoke else dict(BUDGETS)
    for value in values or []:
        name, sep, seconds = value.partition('=')
        if not sep or name not in PARTS or not seconds.isdigit():
            raise SystemExit(f'error: --budget {value!r}: expected PART='
                             f'SECONDS with PART one of {", ".join(PARTS)}')
        budgets[name] = int(seconds)
    return budgets


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', help='folder for pack.json, pack.md and '
                        'logs.tar.gz')
    parser.add_argument('--smoke', action='store_true',
                        help='every part at toy size, on the CPU')
    parser.add_argument('--parts', nargs='+', choices=PARTS,
                        default=list(PARTS))
    parser.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs',
                                                       'gpu_pack'))
    parser.add_argument('--budget', nargs='+', metavar='PART=SECONDS',
                        help='wall-time budget of a part (defaults: ' +
                        ', '.join(f'{k} {v}' for k, v in BUDGETS.items()) +
                        ')')
    parser.add_argument('--cifar-data', help='CIFAR-10 JPEG folder (train/, '
                        'test/) or cifar10-jpg.tar.gz')
    parser.add_argument('--cifar-methods', nargs='+', choices=CIFAR_METHODS,
                        default=list(CIFAR_METHODS))
    parser.add_argument('--cifar-seeds', type=int, default=1,
                        help='seeds 0..N-1 of every method (default 1: what '
                        'fits the budget, docs/gpu_pack.md)')
    parser.add_argument('--cifar-epochs', type=int,
                        help='default 200 (the protocol)')
    parser.add_argument('--cifar-jobs', type=int,
                        help='CIFAR runs side by side (default: all)')
    parser.add_argument('--cifar-precision', choices=['fp32', 'bf16'],
                        default='fp32')
    parser.add_argument('--dfa-iters', type=int, help='default 3600')
    parser.add_argument('--dfa-curve-every', type=int, help='default 450')
    parser.add_argument('--dfa-seeds', type=int, nargs='+',
                        help='default 0 1 2 (0 for --smoke)')
    parser.add_argument('--dfa-jobs', type=int,
                        help='DFA runs side by side (default: all)')
    parser.add_argument('--paper-iters', type=int)
    parser.add_argument('--paper-workers', type=int, default=8,
                        help='data loader workers of part 3')
    parser.add_argument('--paper-configs', nargs='+', metavar='CONFIG',
                        help='the configs of part 3 (default: ' + ', '.join(
                            PAPER_CONFIGS) + ', those the checkout has)')
    parser.add_argument('--single', choices=['cifar-train', 'cifar-profile',
                                             'paper'],
                        help=argparse.SUPPRESS)
    parser.add_argument('--spec', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.single and not args.out:
        parser.error('--out DIR is required')
    for name in ('cifar_seeds', 'cifar_epochs', 'cifar_jobs', 'dfa_iters',
                 'dfa_curve_every', 'dfa_jobs', 'paper_iters',
                 'paper_workers'):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f'--{name.replace("_", "-")} {value}: expected a '
                         'positive number')
    if args.paper_configs:
        for config in args.paper_configs:
            if not osp.isfile(config):
                parser.error(f'--paper-configs {config}: no such file')
        args.paper_configs = [osp.relpath(osp.abspath(c), ROOT)
                              for c in args.paper_configs]
    else:
        args.paper_configs = [c for c in PAPER_CONFIGS
                              if osp.isfile(osp.join(ROOT, c))]
    return args


def sizes_for(args) -> Sizes:
    sizes = smoke_sizes() if args.smoke else Sizes()
    for name, attr in (('cifar_epochs', 'cifar_epochs'),
                       ('dfa_iters', 'dfa_iters'),
                       ('dfa_curve_every', 'dfa_curve_every'),
                       ('paper_iters', 'paper_iters')):
        if getattr(args, name) is not None:
            setattr(sizes, attr, getattr(args, name))
    if sizes.dfa_curve_every > sizes.dfa_iters:
        raise SystemExit(f'error: --dfa-curve-every {sizes.dfa_curve_every} '
                         f'exceeds --dfa-iters {sizes.dfa_iters}')
    return sizes


SINGLE = {'cifar-train': run_cifar_train, 'cifar-profile': run_cifar_profile,
          'paper': run_paper}


def stop_on_sigterm(signum, frame):
    # Not an Exception nor SystemExit, which the parts' handler catches: a
    # stopped pack stops its runs (run_jobs) and ends.
    raise KeyboardInterrupt(f'signal {signum}')


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.single:
        with open(args.spec) as f:
            SINGLE[args.single](json.load(f))
        return {}
    import torch
    cuda = torch.cuda.is_available()
    if not cuda and not args.smoke:
        raise SystemExit('error: no GPU: the pack runs on a GPU; --smoke '
                         'runs it at toy size on the CPU')
    device = 'cuda' if cuda and not args.smoke else 'cpu'
    if args.smoke and cuda:
        os.environ['CUDA_VISIBLE_DEVICES'] = ''
    sizes = sizes_for(args)
    budgets = parse_budgets(args.budget, args.smoke)
    work = osp.abspath(args.work_dir)
    os.makedirs(work, exist_ok=True)
    results = dict(
        smoke=args.smoke, command=' '.join(
            ['python tools/repro/gpu_pack.py'] +
            (argv if argv is not None else sys.argv[1:])),
        environment=environment(device), budgets=budgets,
        parts_requested=list(args.parts), parts={})
    start = time.monotonic()
    runners = {
        'cifar': lambda d: part_cifar(args, sizes, work, d),
        'dfa-synthetic': lambda d: part_dfa_synthetic(args, sizes, work, d),
        'dfa-paper': lambda d: part_dfa_paper(args, sizes, work, d),
        'micro': lambda d: part_micro(args, sizes, work, d, device),
    }
    for name in args.parts:
        part_start = time.monotonic()
        print(f'[{time.monotonic() - start:5.0f} s] {name}: started '
              f'(budget {budgets[name]} s)', flush=True)
        entry = {}
        try:
            entry['result'] = runners[name](part_start + budgets[name])
        except (Exception, SystemExit) as e:  # the other parts still run
            entry['error'] = f'{type(e).__name__}: {e}'
        entry['wall_seconds'] = time.monotonic() - part_start
        entry['state'] = 'failed' if 'error' in entry else part_state(
            name, entry['result'])
        results['parts'][name] = entry
        results['wall_seconds'] = time.monotonic() - start
        write_report(args.out, results, work)
        print(f'[{time.monotonic() - start:5.0f} s] {name}: {entry["state"]} '
              f'in {entry["wall_seconds"]:.0f} s', flush=True)
    print(render_markdown(results))
    return results


def part_state(name: str, result: dict) -> str:
    """'complete', or what went short, in a few words."""
    if name == 'cifar':
        statuses = [s['status'] for s in result['status'].values()]
    elif name == 'dfa-synthetic':
        statuses = [result['status']['status']]
    elif name == 'dfa-paper':
        statuses = [v['status']['status'] for v in result['variants'].values()]
    else:
        statuses = [v['status']['status'] for v in result.values()]
    short = sorted({s for s in statuses if s != 'ok'})
    return 'complete' if not short else ', '.join(short)


if __name__ == '__main__':
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    main()
