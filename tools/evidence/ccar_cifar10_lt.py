"""Evidence: CE, LA, Balanced Softmax, CCAR and its combinations on
CIFAR-10-LT (JPEG folders), several seeds each, on the CPU.

    python tools/evidence/ccar_cifar10_lt.py [--data-root data/cifar10]
        [--work-dir /tmp/mmimb_evidence/ccar_cifar10_lt]
        [--methods ce la bs ccar ccar-la ccar-bs ccar-fmax] [--seeds 0 1 2]
        [--imbalance-factor 100] [--iters N] [--fp32] [--threads N]
        [--jobs N] [--out results.md]

Each (method, seed) trains ``configs/ccar/{method}_resnet32_1xb128-200e_
cifar10-lt-if{IF}.py`` with the short CPU schedule
``configs/_base_/schedules/cifar_lt_cpu.py`` applied on top (bf16 and
channels-last; ``--fp32`` trains in fp32, in work dirs of their own, for the
precision parity check), in its own process, then evaluates on the full
test set (10,000 images) with ``LongTailMetric``. Runs go one after another
with all cores (``--threads`` fewer), or ``--jobs`` side by side.

Besides mean and standard deviation over seeds, the table gives each
method's paired difference to the first method of the sweep (per seed, mean
and 95% t interval), and, where fp32 runs of a method exist beside its bf16
runs, the bf16 - fp32 difference. Finished runs (``metrics.json`` in their
work dir) are not run again, so an interrupted sweep resumes. A method
whose loss is identical to an earlier one's (Balanced Softmax is logit
adjustment with tau = 1, so ``bs`` repeats ``la`` and ``ccar-bs`` repeats
``ccar-la``) reuses its results unless ``--no-reuse`` is given. The
script then prints a markdown table (mean +- sample standard deviation over
seeds) with the published ResNet-32 numbers of METHODS.md beside it, and
the schedule differences; ``--out`` also writes it to a file.

``--iters 6 --test-every 50`` makes a quick validation run (a few
iterations, every 50th test image); ``--estimate`` times two such runs and
prints the expected duration of the full sweep.
"""
import argparse
import json
import math
import os
import sys
import time
from fnmatch import fnmatch
from pathlib import Path
from typing import List

ROOT = Path(__file__).resolve().parents[2]
# This checkout's mmimb, not an installed one, and the sweep helpers beside
# this script.
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]
from sweep import Run, add_sweep_args, apply_schedule  # noqa: E402
from sweep import check_reuse, current_config_name  # noqa: E402
from sweep import run_all, sweep_env  # noqa: E402
METHODS = ('ce', 'la', 'bs', 'ccar', 'ccar-la', 'ccar-bs', 'ccar-fmax')
LABELS = {
    'ce': 'CE',
    'la': 'LA (tau=1)',
    'bs': 'Balanced Softmax',
    'ccar': 'CCAR',
    'ccar-la': 'CCAR + LA',
    'ccar-bs': 'CCAR + BS',
    'ccar-fmax': 'CCAR (f / f_max)',
}
# Top-1 of ResNet-32 on CIFAR-10-LT IF100 (balanced test set), as listed in
# ../shared/METHODS.md section 2 (binary data): CE and LDAM-DRW with
# LDAM-DRW's 200-epoch schedule, logit adjustment with its own 1241-epoch
# protocol and network (docs/long_tail.md).
PUBLISHED_IF100 = {'ce': 70.4, 'la': 77.7}
PUBLISHED_NOTE = ('published (METHODS.md): CE 70.4, LDAM-DRW 77.0, logit '
                  'adjustment 77.7 top-1; no CIFAR-10-LT figure for CCAR or '
                  'Balanced Softmax there')
COLUMNS = (('top1', 'top-1'), ('balanced_accuracy', 'balanced acc.'),
           ('macro_f1', 'macro-F1'), ('many_shot_acc', 'many'),
           ('medium_shot_acc', 'medium'), ('few_shot_acc', 'few'))
SCHEDULE = ROOT / 'configs' / '_base_' / 'schedules' / 'cifar_lt_cpu.py'
CONFIG_NAME = '{method}_resnet32_1xb128-200e_cifar10-lt-if{imbalance}.py'
FP32_SUFFIX = '-fp32'


def config_path(method: str, imbalance_factor: int) -> Path:
    return ROOT / 'configs' / 'ccar' / CONFIG_NAME.format(
        method=method, imbalance=imbalance_factor)


def run_dir(work_dir: Path, method: str, seed: int,
            fp32: bool = False) -> Path:
    return work_dir / (method + FP32_SUFFIX * fp32) / f'seed{seed}'


def build_config(args):
    """The method's config with the CPU schedule on top."""
    from mmengine.config import Config
    if args.iters is not None:
        os.environ['MMIMB_CPU_ITERS'] = str(args.iters)
    cfg = Config.fromfile(str(config_path(args.method,
                                          args.imbalance_factor)))
    apply_schedule(cfg, str(SCHEDULE))
    cfg.randomness = dict(seed=args.seed)
    cfg.work_dir = str(
        run_dir(Path(args.work_dir), args.method, args.seed, args.fp32))
    if args.fp32:
        cfg.optim_wrapper.type = 'OptimWrapper'
        cfg.custom_hooks = [
            h for h in cfg.custom_hooks if h.type != 'ChannelsLastHook'
        ]
    cfg.train_dataloader.dataset.dataset.data_root = args.data_root
    test = cfg.test_dataloader.dataset
    test.data_root = args.data_root
    if args.test_every > 1:
        # Every k-th image: the folders are sorted by class, so this keeps
        # all classes.
        test.indices = list(range(0, 10000, args.test_every))
    # One evaluation, after training, through runner.test().
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    return cfg


def run_single(args) -> None:
    """Train and test one (method, seed); write metrics.json."""
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    from mmimb.engine.launch import build_runner
    cfg = build_config(args)
    runner = build_runner(cfg, 'train')
    # CPU time as well as wall time: on a shared machine the wall time
    # depends on the load, the CPU time of a one-thread run does not.
    start, cpu = time.perf_counter(), time.process_time()
    runner.train()
    train_s = time.perf_counter() - start
    train_cpu = time.process_time() - cpu
    start, cpu = time.perf_counter(), time.process_time()
    metrics = runner.test()
    test_s = time.perf_counter() - start
    test_cpu = time.process_time() - cpu
    metrics = {k.split('/', 1)[-1]: v for k, v in metrics.items()}
    metrics.update(
        method=args.method,
        seed=args.seed,
        iters=cfg.train_cfg.max_iters,
        batch_size=cfg.train_dataloader.batch_size,
        threads=torch.get_num_threads(),
        precision='fp32' if args.fp32 else 'bf16',
        train_size=len(runner.train_dataloader.dataset),
        imbalance_factor=args.imbalance_factor,
        test_every=args.test_every,
        train_seconds=train_s,
        train_cpu_seconds=train_cpu,
        test_seconds=test_s,
        test_cpu_seconds=test_cpu)
    out = Path(cfg.work_dir) / 'metrics.json'
    tmp = out.with_suffix('.tmp')
    tmp.write_text(json.dumps(metrics, indent=1))
    tmp.replace(out)


def single_command(args, method: str, seed: int) -> list:
    command = [
        sys.executable,
        str(Path(__file__).resolve()), '--single', '--method', method,
        '--seed',
        str(seed), '--work-dir', args.work_dir, '--data-root',
        args.data_root, '--imbalance-factor',
        str(args.imbalance_factor), '--test-every',
        str(args.test_every)
    ]
    if args.iters is not None:
        command += ['--iters', str(args.iters)]
    if args.threads:
        command += ['--threads', str(args.threads)]
    if args.fp32:
        command.append('--fp32')
    return command


def mean_std(values):
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return 'n/a'
    mean = sum(values) / len(values)
    if len(values) < 2:
        return f'{mean:.2f}'
    std = math.sqrt(
        sum((v - mean)**2 for v in values) / (len(values) - 1))
    return f'{mean:.2f} ± {std:.2f}'


PAIRED = (('top1', 'top-1'), ('macro_f1', 'macro-F1'),
          ('few_shot_acc', 'few'))


def paired_rows(results: dict, baseline: str, label: str) -> List[str]:
    """Rows of per-seed paired differences of each method to ``baseline``
    (the seeds both have)."""
    from mmimb.utils import paired_difference
    base = {r['seed']: r for r in results[baseline]}
    rows = []
    for method, runs in results.items():
        if method == baseline:
            continue
        pairs = [(r, base[r['seed']]) for r in runs if r['seed'] in base]
        if not pairs:
            continue
        cells = [
            str(paired_difference([a[key] for a, _ in pairs],
                                  [b[key] for _, b in pairs]))
            for key, _ in PAIRED
        ]
        rows.append(f'| {label.format(method=LABELS.get(method, method))} | '
                    f'{len(pairs)} | ' + ' | '.join(cells) + ' |')
    return rows


def table(results: dict, args) -> str:
    first = next(iter(next(iter(results.values()))))
    epochs = first['iters'] * first['batch_size'] / first['train_size']
    every_run = [r for runs in results.values() for r in runs]
    train_min = [r['train_seconds'] / 60 for r in every_run]
    # Wall time follows the machine's load; CPU time is what a run costs.
    cpu_min = [r['train_cpu_seconds'] / 60 for r in every_run
               if 'train_cpu_seconds' in r]
    cpu = (f' ({min(cpu_min):.1f}-{max(cpu_min):.1f} CPU min)'
           if cpu_min else '')
    threads = sorted({r.get('threads', 1) for r in every_run})
    test = 'the full test set (10,000 images)' if args.test_every == 1 \
        else f'every {args.test_every}th test image (validation only)'
    lines = [
        f'CIFAR-10-LT IF{args.imbalance_factor} (JPEG), ResNet-32, on '
        f'{test}; mean ± std over seeds, in percent.', '',
        '| method | seeds | ' + ' | '.join(c[1] for c in COLUMNS) +
        ' | published top-1 |',
        '|---|---|' + '---|' * len(COLUMNS) + '---|'
    ]
    reused = {}
    for method, runs in results.items():
        published = PUBLISHED_IF100.get(method) \
            if args.imbalance_factor == 100 else None
        cells = [mean_std([r[key] for r in runs]) for key, _ in COLUMNS]
        twin = runs[0].get('reused_from')
        label = LABELS.get(method, method) + (' *' if twin else '')
        if twin:
            reused[LABELS[method]] = LABELS[twin]
        lines.append(f'| {label} | {len(runs)} | ' + ' | '.join(cells) +
                     f" | {published if published else '—'} |")
    if reused:
        lines += [
            '', '* The same training as ' + ', '.join(
                f'{b} for {a}' for a, b in reused.items()) +
            ' (Balanced Softmax is logit adjustment with tau = 1): their '
            'runs, not separate ones.'
        ]
    bf16 = {m: runs for m, runs in results.items()
            if not m.endswith(FP32_SUFFIX)}
    baseline = next(iter(bf16), None)
    rows = paired_rows(bf16, baseline, '{method} - ' +
                       LABELS.get(baseline, str(baseline))) \
        if len(bf16) > 1 else []
    for method in bf16:
        if method + FP32_SUFFIX in results:
            rows += paired_rows(
                {method: bf16[method],
                 'fp32': results[method + FP32_SUFFIX]}, 'fp32',
                '{method}: bf16 - fp32')
    if rows:
        lines += [
            '', 'Paired differences (points; per seed, then mean and 95% t '
            'interval over seeds):', '',
            '| comparison | pairs | ' + ' | '.join(c[1] for c in PAIRED) +
            ' |', '|---|---|' + '---|' * len(PAIRED)
        ] + rows
    precisions = sorted({r.get('precision', 'fp32') for runs in
                         results.values() for r in runs})
    lines += [
        '', f'{PUBLISHED_NOTE}.', '',
        'Schedule here: ResNet-32 (option A), '
        f"{first['iters']} iterations of batch {first['batch_size']} "
        f"(≈{epochs:.1f} epochs of {first['train_size']} images), SGD lr 0.1 "
        'momentum 0.9 wd 2e-4, linear warm-up over 10% then linear decay to '
        f"0, {' and '.join(precisions)}, "
        f"{'/'.join(map(str, threads))} CPU thread(s) per run, "
        'JPEG-re-encoded images; training took '
        f'{min(train_min):.1f}-{max(train_min):.1f} min wall{cpu} per run. '
        'Published: '
        'CE and LDAM-DRW 200 epochs of batch 128, lr 0.1 with 5 warm-up '
        'epochs and x0.01 at epochs 160 and 180; logit adjustment 1241 '
        'epochs with its own network (docs/long_tail.md); original binary '
        'images. Many/medium/few: '
        'classes with >1500, 200-1500, <200 training images (IF100: 3/4/3 '
        'classes).'
    ]
    return '\n'.join(lines)


def settings(args, fp32: bool) -> dict:
    """What a finished run must share with this sweep to be reused."""
    from mmengine.config import Config

    from mmimb.datasets import long_tailed_counts
    iters = args.iters or Config.fromfile(str(SCHEDULE)).cpu_iters
    return dict(
        imbalance_factor=args.imbalance_factor,
        train_size=sum(long_tailed_counts(5000, args.imbalance_factor, 10)),
        iters=iters,
        test_every=args.test_every,
        precision='fp32' if fp32 else 'bf16')


def dumped_test_every(path: Path, record: dict):
    """``test_every`` of a record written before it was stored, read from
    the test indices of the config its training dumped beside it (None if
    there is no dump)."""
    from mmengine.config import Config
    folder = path.parent
    if record.get('reused_from'):
        folder = run_dir(folder.parent.parent, record['reused_from'],
                         record['seed'],
                         folder.parent.name.endswith(FP32_SUFFIX))
    # The runner dumps the config under its file name, which may be the one
    # it had before the rename (sweep.RENAMED_CONFIGS).
    dumps = sorted(
        p for p in folder.glob('*.py') if fnmatch(
            current_config_name(p.name),
            CONFIG_NAME.format(method='*', imbalance='*')))
    if not dumps:
        return None
    indices = Config.fromfile(str(dumps[-1])).test_dataloader.dataset.get(
        'indices')
    return indices[1] - indices[0] if indices else 1


def finished(path: Path, args, fp32: bool):
    """The record of a finished run at ``path`` (None if there is none);
    stops the sweep if it was made with other settings."""
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    expected = settings(args, fp32)
    check_reuse(str(path), record, expected)
    if 'test_every' not in record:
        test_every = dumped_test_every(path, record)
        check_reuse(str(path), dict(
            test_every='unknown (no config dump beside it)'
            if test_every is None else test_every),
            dict(test_every=expected['test_every']))
    return record


def collect(args) -> dict:
    """Finished runs of the sweep's methods, and of their fp32 twins."""
    results = {}
    for method in args.methods:
        for fp32 in (False, True):
            runs = []
            for seed in args.seeds:
                record = finished(
                    run_dir(Path(args.work_dir), method, seed, fp32) /
                    'metrics.json', args, fp32)
                if record is not None:
                    runs.append(record)
            if runs:
                results[method + FP32_SUFFIX * fp32] = runs
    return results


def effective_loss(method: str, args) -> dict:
    """The head loss of a method's config, with Balanced Softmax written
    as what it is: logit adjustment with tau = 1."""
    from mmengine.config import Config
    loss = dict(
        Config.fromfile(str(config_path(
            method, args.imbalance_factor))).model.head.loss)
    if loss['type'] == 'BalancedSoftmaxLoss':
        loss.update(type='LogitAdjustedLoss', tau=1.0)
    if loss.get('logit_adjust') == 'balanced_softmax':
        loss.update(logit_adjust='la', tau=1.0)
    return loss


def same_training(method: str, args):
    """An earlier method of the sweep whose training is identical (same
    loss, same everything else), or None."""
    mine = effective_loss(method, args)
    for other in args.methods[:args.methods.index(method)]:
        if effective_loss(other, args) == mine:
            return other
    return None


def sweep(args) -> dict:
    if not (Path(args.data_root) / 'train').is_dir():
        sys.exit(f'error: {args.data_root}/train does not exist; extract the '
                 'JPEG release first, e.g. mkdir -p data && tar xzf '
                 '../shared/data/cifar10-jpg.tar.gz -C data/')
    if not args.fp32:
        import torch

        from mmimb.engine.optimizers import cpu_bf16_support
        supported, reason = cpu_bf16_support()
        if not (supported or torch.cuda.is_available()):
            # CPUAmpOptimWrapper would train in fp32, and the records and
            # the bf16 - fp32 rows would call that bf16.
            sys.exit(f'error: {reason}, so the CPU schedule trains in fp32, '
                     'not bf16; give --fp32')
    work = Path(args.work_dir)
    # Refuse runs of other settings (of either precision) before training,
    # not hours later when tabling.
    collect(args)
    runs, reuse = [], []
    for method in args.methods:
        twin = None if args.no_reuse else same_training(method, args)
        for seed in args.seeds:
            folder = run_dir(work, method, seed, args.fp32)
            if finished(folder / 'metrics.json', args, args.fp32):
                print(f'{method} seed {seed}: done before, kept')
            elif twin:
                reuse.append((method, twin, seed))
            else:
                runs.append(Run(f'{method} seed {seed}',
                                single_command(args, method, seed),
                                str(folder / 'train.out')))
    seconds = run_all(runs, args.jobs, sweep_env(args.threads), str(ROOT))
    for method, twin, seed in reuse:
        metrics = json.loads((run_dir(work, twin, seed, args.fp32) /
                              'metrics.json').read_text())
        metrics.update(method=method, reused_from=twin)
        done = run_dir(work, method, seed, args.fp32) / 'metrics.json'
        done.parent.mkdir(parents=True, exist_ok=True)
        done.write_text(json.dumps(metrics, indent=1))
        print(f'{method} seed {seed}: the same training as {twin} '
              '(identical loss), its result reused')
    text = table(collect(args), args)
    print(text)
    if args.out:
        Path(args.out).write_text(text + '\n')
    return seconds


def estimate(args) -> None:
    """Time two short runs and extrapolate to the full sweep; the
    difference of their training times is the cost of the extra
    iterations without the start-up."""
    from mmengine.config import Config
    full_iters = args.iters or Config.fromfile(str(SCHEDULE)).cpu_iters
    args.test_every = 20
    args.methods, args.seeds = ['ccar'], [0]
    base = Path(args.work_dir) / 'estimate'
    runs, process = {}, {}
    for iters in (6, 26):
        args.iters, args.work_dir = iters, str(base / f'{iters}iters')
        process[iters] = sweep(args).get('ccar seed 0')
        runs[iters] = collect(args)['ccar'][0]
    args.methods = list(METHODS)
    trainings = sum(same_training(m, args) is None for m in METHODS)
    if process[6] is None:
        sys.exit(f'error: remove {base} to time fresh runs')
    # Imports, building the runner and listing the dataset.
    startup = process[6] - runs[6]['train_seconds'] - runs[6]['test_seconds']
    for kind, key in (('CPU', '_cpu_seconds'), ('wall', '_seconds')):
        per_iter = (runs[26]['train' + key] - runs[6]['train' + key]) / 20
        setup = max(0.0, runs[6]['train' + key] - 6 * per_iter) + startup
        test = runs[6]['test' + key] * 20
        one = setup + full_iters * per_iter + test
        print(f'{kind} time: {per_iter:.2f} s per iteration, {setup:.0f} s '
              f'start-up, {test:.0f} s for the full test set; one run of '
              f'{full_iters} iterations ≈ {one / 60:.1f} min; {trainings} '
              f'distinct trainings of the {len(METHODS)} methods x 3 seeds '
              f'≈ {trainings * 3 * one / 3600:.1f} h')
    print('(CPU time is the wall time on an otherwise idle core; start-up '
          'is wall time in both lines.)')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data-root', default='data/cifar10')
    parser.add_argument(
        '--work-dir', default='/tmp/mmimb_evidence/ccar_cifar10_lt')
    parser.add_argument('--methods', nargs='+', default=list(METHODS),
                        choices=METHODS)
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    parser.add_argument('--imbalance-factor', type=int, default=100,
                        choices=[10, 100])
    parser.add_argument(
        '--iters', type=int,
        help='training iterations (default: cpu_iters of the CPU schedule)')
    parser.add_argument(
        '--test-every', type=int, default=1,
        help='evaluate on every k-th test image (validation runs only)')
    parser.add_argument('--out', help='also write the markdown table here')
    parser.add_argument(
        '--no-reuse',
        action='store_true',
        help='train every method even where its loss is identical to an '
        "earlier one's (Balanced Softmax is LA with tau=1)")
    parser.add_argument(
        '--fp32',
        action='store_true',
        help='train in fp32 without channels-last (the CPU schedule\'s '
        'fast path off), in work dirs METHOD-fp32')
    add_sweep_args(parser)
    parser.add_argument('--estimate', action='store_true',
                        help='time a 6-iteration run and extrapolate')
    parser.add_argument('--single', action='store_true',
                        help=argparse.SUPPRESS)
    parser.add_argument('--method', choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument('--seed', type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.data_root = str(Path(args.data_root).resolve())
    if args.iters is not None and args.iters < 2:
        parser.error('--iters must be at least 2')
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.single:
        run_single(args)
    elif args.estimate:
        estimate(args)
    else:
        sweep(args)


if __name__ == '__main__':
    main()
