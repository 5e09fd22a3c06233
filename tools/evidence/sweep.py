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
