"""The wheel carries the configs, so `mmimb::` paths resolve in a regular
(non-editable) install too."""
import subprocess
import sys
import zipfile

from toolrun import ROOT

import mmimb


def test_wheel_ships_configs_and_version(tmp_path):
    subprocess.run([
        sys.executable, '-m', 'pip', 'wheel', '--no-deps',
        '--no-build-isolation', '-q', '-w',
        str(tmp_path),
        str(ROOT)
    ],
                   check=True,
                   capture_output=True)
    wheel, = tmp_path.glob('mmimb-*.whl')
    assert wheel.name.startswith(f'mmimb-{mmimb.__version__}-')
    names = set(zipfile.ZipFile(wheel).namelist())
    configs = sorted(p.relative_to(ROOT / 'configs').as_posix()
                     for p in (ROOT / 'configs').rglob('*.py'))
    assert configs, 'no configs found'
    missing = [c for c in configs if f'mmimb/.mim/configs/{c}' not in names]
    assert not missing
    assert 'mmimb/.mim/model-index.yml' in names
    assert not any(n.startswith(('tests/', 'tools/')) for n in names)
