"""The launch scripts (tools/dist_*.sh, tools/slurm_*.sh) run the way
README.md calls them, without an activated environment: which interpreter
they choose, what they pass to it (or to srun), and their quoting. A stub
interpreter and a stub ``srun`` record their arguments instead of running;
tests/test_distributed.py runs dist_train.sh for real."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from toolrun import ROOT

SCRIPTS = ('dist_train.sh', 'dist_test.sh', 'slurm_train.sh',
           'slurm_test.sh', 'launch_common.sh')
# Records the program's name, PYTHONPATH and arguments, one per line.
STUB = """#!/bin/sh
{ printf '%s\\n' "$0" "PYTHONPATH=$PYTHONPATH"; printf '%s\\n' "$@"; } \
    > "$RECORD"
"""
CONFIG = 'my configs/a b.py'
OPTIONS = ['--work-dir', 'work dirs/x', '--cfg-options', 'a=1']


def stub(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(STUB)
    path.chmod(0o755)
    return path


@pytest.fixture
def repo(tmp_path) -> Path:
    """A copy of the launch scripts in a checkout whose path has a space."""
    root = tmp_path / 'my repo'
    (root / 'tools').mkdir(parents=True)
    for name in SCRIPTS:
        shutil.copy(ROOT / 'tools' / name, root / 'tools' / name)
    return root


def launch(repo: Path, script: str, *args, path: str = os.defpath,
           **env) -> list:
    """Run ``bash <repo>/tools/<script> args`` from another folder with a
    bare environment; return what the stub recorded."""
    record = repo.parent / 'record.txt'
    elsewhere = repo.parent / 'elsewhere'
    elsewhere.mkdir(exist_ok=True)
    result = subprocess.run(
        ['bash', str(repo / 'tools' / script), *args],
        cwd=elsewhere,
        env=dict(PATH=path, HOME=str(repo.parent), RECORD=str(record), **env),
        capture_output=True,
        text=True)
    assert result.returncode == 0, result.stderr
    return record.read_text().splitlines()


def torchrun_args(entry: Path, port: str = '29500') -> list:
    return [
        '-m', 'torch.distributed.run', '--nnodes=1', '--node_rank=0',
        '--master_addr=127.0.0.1', '--nproc_per_node=2',
        f'--master_port={port}',
        str(entry)
    ]


def test_dist_train_uses_the_project_venv(repo):
    python = stub(repo / '.venv' / 'bin' / 'python')
    got = launch(repo, 'dist_train.sh', CONFIG, '2', *OPTIONS)
    assert got == [
        str(python), f'PYTHONPATH={repo}',
        *torchrun_args(repo / 'tools' / 'train.py'), CONFIG, '--launcher',
        'pytorch', *OPTIONS
    ]


def test_dist_test_passes_env_and_options(repo):
    python = stub(repo / '.venv' / 'bin' / 'python')
    got = launch(repo, 'dist_test.sh', CONFIG, 'ckpt dir/it.pth', '2',
                 '--out', 'p q.pkl', PORT='1234', PYTHONPATH='/extra')
    assert got == [
        str(python), f'PYTHONPATH={repo}:/extra',
        *torchrun_args(repo / 'tools' / 'test.py', port='1234'), CONFIG,
        'ckpt dir/it.pth', '--launcher', 'pytorch', '--out', 'p q.pkl'
    ]


def test_without_venv_python_from_path_or_PYTHON(repo):
    bin_dir = repo.parent / 'bin'
    on_path = stub(bin_dir / 'python')
    got = launch(repo, 'dist_train.sh', CONFIG, '2',
                 path=f'{bin_dir}:{os.defpath}')
    assert got[0] == str(on_path)
    chosen = stub(repo.parent / 'other' / 'python3')
    stub(repo / '.venv' / 'bin' / 'python')
    got = launch(repo, 'dist_train.sh', CONFIG, '2', PYTHON=str(chosen))
    assert got[0] == str(chosen)


@pytest.mark.parametrize('script,tool,args', [
    ('slurm_train.sh', 'train.py', [CONFIG]),
    ('slurm_test.sh', 'test.py', [CONFIG, 'ckpt dir/it.pth']),
])
def test_slurm_scripts(repo, script, tool, args):
    python = stub(repo / '.venv' / 'bin' / 'python')
    bin_dir = repo.parent / 'bin'
    srun = stub(bin_dir / 'srun')
    got = launch(repo, script, 'gpu part', 'job 1', *args, *OPTIONS,
                 path=f'{bin_dir}:{os.defpath}', GPUS='16',
                 SRUN_ARGS='--quotatype=auto --time=10')
    assert got == [
        str(srun), f'PYTHONPATH={repo}', '-p', 'gpu part', '--job-name=job 1',
        '--gres=gpu:8', '--ntasks=16', '--ntasks-per-node=8',
        '--cpus-per-task=5', '--kill-on-bad-exit=1', '--quotatype=auto',
        '--time=10',
        str(python), '-u',
        str(repo / 'tools' / tool), *args, '--launcher=slurm', *OPTIONS
    ]


@pytest.mark.parametrize('script,needed', [('dist_train.sh', 2),
                                           ('dist_test.sh', 3),
                                           ('slurm_train.sh', 3),
                                           ('slurm_test.sh', 4)])
def test_too_few_arguments_print_the_usage(repo, script, needed):
    stub(repo / '.venv' / 'bin' / 'python')
    result = subprocess.run(
        ['bash', str(repo / 'tools' / script), *['x'] * (needed - 1)],
        env=dict(PATH=os.defpath, RECORD=str(repo.parent / 'record.txt')),
        capture_output=True,
        text=True)
    assert result.returncode == 2
    assert result.stderr.startswith(f'usage: bash {repo}/tools/{script} ')
    assert result.stderr.count('\n') == 1
    assert not (repo.parent / 'record.txt').exists()
