"""What the evidence sweeps share: their runs go one after another with all
cores, or ``--jobs`` side by side, each in its own process with its output
in its own log file.

One after another at full width is the default: on an idle machine one
process with all cores finishes a sweep soonest. On a machine other jobs
load, give ``--threads 1`` (and ``--jobs 2`` on 2 cores): torch's OpenMP
threads spin while they wait for each other, and several multi-threaded
processes on too few cores slow each other down by far more than their
number (measured on 2 cores with 3 busy processes: 7.6 s per DFA iteration
with 2 threads each, 0.3 s with one).
"""
import argparse
import os
import subprocess
import sys
import time
from typing import Dict, List, NamedTuple, Optional, Sequence


class Run(NamedTuple):
    """One process of a sweep: ``label`` names it in messages, ``command``
    is its argument list, ``log`` the file its output goes to."""
    label: str
    command: List[str]
    log: str


def add_sweep_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        '--threads',
        type=int,
        help='CPU threads per run (default: torch\'s, one per physical '
        'core)')
    parser.add_argument(
        '--jobs',
        type=int,
        default=1,
        help='runs side by side (default 1: one after another)')


def sweep_env(threads: Optional[int], **extra: str) -> dict:
    """The environment of a sweep's processes; ``threads`` also bounds the
    OpenMP and MKL pools of anything they start."""
    env = dict(os.environ, **extra)
    if threads:
        env.update(OMP_NUM_THREADS=str(threads),
                   MKL_NUM_THREADS=str(threads))
    return env


def run_all(runs: Sequence[Run], jobs: int = 1, env: Optional[dict] = None,
            cwd: Optional[str] = None) -> Dict[str, float]:
    """Run ``runs``, at most ``jobs`` at a time; return each one's wall
    seconds by label.

    Stops the sweep (``sys.exit``) with the failed run's label and log
    after the runs in flight finish.
    """
    if jobs < 1:
        sys.exit(f'error: --jobs {jobs}: expected at least 1')
    pending, running, seconds = list(runs), [], {}
    while pending or running:
        while pending and len(running) < jobs:
            run = pending.pop(0)
            os.makedirs(os.path.dirname(run.log) or '.', exist_ok=True)
            print(f'{run.label}: started (log: {run.log})', flush=True)
            with open(run.log, 'w') as log:
                proc = subprocess.Popen(run.command, stdout=log,
                                        stderr=subprocess.STDOUT, env=env,
                                        cwd=cwd)
            running.append((run, proc, time.perf_counter()))
        time.sleep(0.2)
        for item in list(running):
            run, proc, start = item
            if proc.poll() is None:
                continue
            running.remove(item)
            if proc.returncode:
                for _, other, _ in running:
                    other.wait()
                sys.exit(f'error: {run.label} failed (exit '
                         f'{proc.returncode}); see {run.log}')
            seconds[run.label] = time.perf_counter() - start
            print(f'{run.label}: done in {seconds[run.label]:.0f} s',
                  flush=True)
    return seconds


def apply_schedule(cfg, schedule: str) -> None:
    """Merge a schedule file (such as configs/_base_/schedules/
    cifar_lt_cpu.py) onto a complete config, in place.

    A schedule replaces the config's schedule, so it is merged on top
    rather than listed among the config's bases; its ``custom_hooks`` are
    added to the config's (one hook per type) instead of replacing them.
    """
    from mmengine.config import Config
    extra = Config.fromfile(schedule)
    hooks = list(cfg.get('custom_hooks', []))
    types = {hook['type'] for hook in hooks}
    hooks += [h for h in extra.get('custom_hooks', []) if h['type'] not in
              types]
    cfg.merge_from_dict(extra.to_dict())
    cfg.custom_hooks = hooks


# Config files as they were named before they took OpenMMLab's convention
# (``{algorithm}_{backbone}_{GPUs}xb{batch}-{schedule}_{dataset}[-{crop}]``),
# each with its name now: the same config under another name. Runs
# recorded before the rename name the old file (in their record, or as the
# config dump mmengine writes beside them), so the sweeps compare names
# through :func:`current_config_name` and keep those runs.
RENAMED_CONFIGS = {
    'resnet32_cifar10-lt-if10_bs.py':
    'bs_resnet32_1xb128-200e_cifar10-lt-if10.py',
    'resnet32_cifar10-lt-if10_ccar-bs.py':
    'ccar-bs_resnet32_1xb128-200e_cifar10-lt-if10.py',
    'resnet32_cifar10-lt-if10_ccar-fmax.py':
    'ccar-fmax_resnet32_1xb128-200e_cifar10-lt-if10.py',
    'resnet32_cifar10-lt-if10_ccar-la.py':
    'ccar-la_resnet32_1xb128-200e_cifar10-lt-if10.py',
    'resnet32_cifar10-lt-if10_ccar.py':
    'ccar_resnet32_1xb128-200e_cifar10-lt-if10.py',
    'resnet32_cifar10-lt-if10_ce.py':
    'ce_resnet32_1xb128-200e_cifar10-lt-if10.py',
    'resnet32_cifar10-lt-if10_la.py':
    'la_resnet32_1xb128-200e_cifar10-lt-if10.py',
    'resnet32-csba_cifar10-lt-if10_ccar.py':
    'csba-ccar_resnet32_1xb128-200e_cifar10-lt-if10.py',
    'resnet32-csba_cifar10-lt-if10_ce.py':
    'csba-ce_resnet32_1xb128-200e_cifar10-lt-if10.py',
    'resnet32-multi-branch_cifar10-lt-if10_ccar.py':
    'multi-branch-ccar_resnet32_1xb128-200e_cifar10-lt-if10.py',
    'resnet32-multi-branch_cifar10-lt-if10_ce.py':
    'multi-branch-ce_resnet32_1xb128-200e_cifar10-lt-if10.py',
    'resnet32-plain_cifar10-lt-if10_ccar.py':
    'plain-ccar_resnet32_1xb128-200e_cifar10-lt-if10.py',
    'resnet32-plain_cifar10-lt-if10_ce.py':
    'plain-ce_resnet32_1xb128-200e_cifar10-lt-if10.py',
    'resnet32_cifar10-lt-if100_bs.py':
    'bs_resnet32_1xb128-200e_cifar10-lt-if100.py',
    'resnet32_cifar10-lt-if100_ccar-bs.py':
    'ccar-bs_resnet32_1xb128-200e_cifar10-lt-if100.py',
    'resnet32_cifar10-lt-if100_ccar-fmax.py':
    'ccar-fmax_resnet32_1xb128-200e_cifar10-lt-if100.py',
    'resnet32_cifar10-lt-if100_ccar-la.py':
    'ccar-la_resnet32_1xb128-200e_cifar10-lt-if100.py',
    'resnet32_cifar10-lt-if100_ccar.py':
    'ccar_resnet32_1xb128-200e_cifar10-lt-if100.py',
    'resnet32_cifar10-lt-if100_ce.py':
    'ce_resnet32_1xb128-200e_cifar10-lt-if100.py',
    'resnet32_cifar10-lt-if100_la.py':
    'la_resnet32_1xb128-200e_cifar10-lt-if100.py',
    'resnet32-csba_cifar10-lt-if100_ccar.py':
    'csba-ccar_resnet32_1xb128-200e_cifar10-lt-if100.py',
    'resnet32-csba_cifar10-lt-if100_ce.py':
    'csba-ce_resnet32_1xb128-200e_cifar10-lt-if100.py',
    'resnet32-multi-branch_cifar10-lt-if100_ccar.py':
    'multi-branch-ccar_resnet32_1xb128-200e_cifar10-lt-if100.py',
    'resnet32-multi-branch_cifar10-lt-if100_ce.py':
    'multi-branch-ce_resnet32_1xb128-200e_cifar10-lt-if100.py',
    'resnet32-plain_cifar10-lt-if100_ccar.py':
    'plain-ccar_resnet32_1xb128-200e_cifar10-lt-if100.py',
    'resnet32-plain_cifar10-lt-if100_ce.py':
    'plain-ce_resnet32_1xb128-200e_cifar10-lt-if100.py',
    'dfa_bcss_anchored.py':
    'dfa-anchored_sam-vit-b-frozen_1xb12-35e_bcss-1024x1024.py',
    'dfa_bcss_cffa.py':
    'dfa-cffa_sam-vit-b-frozen_1xb12-35e_bcss-1024x1024.py',
    'dfa_bcss_hcfa.py':
    'dfa-hcfa_sam-vit-b-frozen_1xb12-35e_bcss-1024x1024.py',
    'dfa_bcss_none.py':
    'dfa-none_sam-vit-b-frozen_1xb12-35e_bcss-1024x1024.py',
    'dfa_bcss_reference.py':
    'dfa-reference-offset_sam-vit-b-frozen_1xb12-35e_bcss-1024x1024.py',
    'dfa_bcss_full_finetune.py':
    'dfa_sam-vit-b_1xb2-20k_bcss-1024x1024.py',
    'dfa_bdsa.py':
    'dfa_sam-vit-b_1xb2-20k_bdsa-1024x1024.py',
    'dfa_crag.py':
    'dfa_sam-vit-b-frozen_1xb12-60e_crag-1024x1024.py',
    'dfa_ebhi_seg.py':
    'dfa_sam-vit-b_1xb8-20k_ebhi-seg-224x224.py',
    'dfa_synthetic_tissue.py':
    'dfa_sam-vit-b_1xb8-20k_synthetic-tissue-256x256.py',
    'dfa_tiny_ebhi_seg.py':
    'dfa_mit-b0_1xb8-300it_ebhi-seg-224x224.py',
    'dfa_tiny_synthetic.py':
    'dfa_mit-b0_1xb8-300it_synthetic-tissue-crossed-128x128.py',
    'dfa_tiny_synthetic_rare.py':
    'dfa_mit-b0_1xb8-300it_synthetic-tissue-crossed-rare-128x128.py',
    'dfa_tiny_synthetic_balanced.py':
    'dfa-none_mit-b0_1xb8-3600it_synthetic-tissue-crossed-balanced-128x128.py',
}


def current_config_name(name: str) -> str:
    """``name`` (a config path or file name) with a file name from before
    the rename (:data:`RENAMED_CONFIGS`) replaced by its name now."""
    folder, base = os.path.split(name)
    return os.path.join(folder, RENAMED_CONFIGS.get(base, base))


def check_reuse(path: str, record: dict, expected: dict) -> None:
    """Stop the sweep if the finished run at ``path`` was made with other
    settings than ``expected``: its numbers would be tabled under this
    sweep's heading. Only the settings the record holds are compared
    (records written before a setting was stored lack it)."""
    diff = [
        f'{key} {record[key]!r} (this sweep: {value!r})'
        for key, value in expected.items()
        if key in record and record[key] != value
    ]
    if diff:
        sys.exit(f'error: {path} is a finished run with other settings: '
                 f'{"; ".join(diff)}; give this sweep its own --work-dir, '
                 'or delete that run to redo it')
