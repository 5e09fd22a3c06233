"""Running the repository's tools as a user would, from tests."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST_DATA = ROOT / 'tests' / 'data'


def run_tool(*args, env=None, timeout=600) -> subprocess.CompletedProcess:
    """Run ``python tools/<args>`` with the current interpreter, or a shell
    script with ``bash`` from a shell without an activated environment
    (:func:`script_env`), from the repository root; capture the output."""
    full_env = dict(os.environ)
    script = str(args[0]).endswith('.sh')
    if script:
        full_env.pop('VIRTUAL_ENV', None)
        full_env.update(script_env())
    full_env['PYTHONPATH'] = os.pathsep.join(
        filter(None, [str(ROOT), str(TEST_DATA),
                      full_env.get('PYTHONPATH')]))
    full_env.setdefault('OMP_NUM_THREADS', '1')
    full_env.update(env or {})
    cmd = ['bash' if script else sys.executable, *map(str, args)]
    return subprocess.run(
        cmd,
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout)


def script_env() -> dict:
    """The environment a user's shell gives the launch scripts when, as
    README.md shows, no environment is activated: a system PATH. The scripts
    then choose the project's .venv themselves; ``PYTHON`` is set only when
    the tests run from another interpreter, which the subprocesses must use
    too."""
    env = {'PATH': os.defpath}
    if Path(sys.prefix).resolve() != (ROOT / '.venv').resolve():
        env['PYTHON'] = sys.executable
    return env


def check_ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, (
        f'exit {result.returncode}\n--- stdout\n{result.stdout[-4000:]}\n'
        f'--- stderr\n{result.stderr[-4000:]}')


def derived_config(tmp_path: Path, base: Path, body: str = '') -> Path:
    """Write a config inheriting ``base`` with extra lines."""
    path = tmp_path / f'derived_{base.stem}.py'
    path.write_text(f'_base_ = [{str(base)!r}]\n{body}\n')
    return path
