"""Running the repository's tools as a user would, from tests."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST_DATA = ROOT / 'tests' / 'data'


def run_tool(*args, env=None, timeout=600) -> subprocess.CompletedProcess:
    """Run ``python tools/<args>`` (or a shell script) from the repository
    root with the current interpreter; capture the output."""
    full_env = dict(os.environ)
    # torchrun and friends from the same environment as this interpreter.
    full_env['PATH'] = f'{Path(sys.executable).parent}:{full_env["PATH"]}'
    full_env['PYTHONPATH'] = os.pathsep.join(
        filter(None, [str(ROOT), str(TEST_DATA),
                      full_env.get('PYTHONPATH')]))
    full_env.setdefault('OMP_NUM_THREADS', '1')
    full_env.update(env or {})
    cmd = ['bash', *map(str, args)] if str(args[0]).endswith('.sh') else [
        sys.executable, *map(str, args)
    ]
    return subprocess.run(
        cmd,
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout)


def check_ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, (
        f'exit {result.returncode}\n--- stdout\n{result.stdout[-4000:]}\n'
        f'--- stderr\n{result.stderr[-4000:]}')


def derived_config(tmp_path: Path, base: Path, body: str = '') -> Path:
    """Write a config inheriting ``base`` with extra lines."""
    path = tmp_path / f'derived_{base.stem}.py'
    path.write_text(f'_base_ = [{str(base)!r}]\n{body}\n')
    return path
