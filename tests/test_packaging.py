"""The wheel carries the configs and the model index under ``mmimb/.mim``,
so ``mmimb::`` paths resolve in a regular (non-editable) install as in a
checkout (tests/test_config_scope.py)."""
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile

import pytest
from toolrun import ROOT, check_ok

import mmimb
from mmimb.utils.config_scope import LOCATOR_MODULE


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    # Built from a copy, so that the checkout gets no build/ or egg-info
    # (an egg-info beside the package changes what pkg_resources answers).
    source = tmp_path_factory.mktemp('source') / 'mmimb'
    shutil.copytree(
        ROOT,
        source,
        symlinks=True,
        ignore=shutil.ignore_patterns('.git', '.venv', 'data', 'work_dirs',
                                      'build', '*.egg-info', '__pycache__'))
    out = tmp_path_factory.mktemp('wheel')
    subprocess.run([
        sys.executable, '-m', 'pip', 'wheel', '--no-deps',
        '--no-build-isolation', '-q', '-w',
        str(out),
        str(source)
    ],
                   check=True,
                   capture_output=True)
    wheel, = out.glob('mmimb-*.whl')
    return wheel


def test_wheel_ships_configs_and_version(wheel):
    assert wheel.name.startswith(f'mmimb-{mmimb.__version__}-')
    names = set(zipfile.ZipFile(wheel).namelist())
    files = [
        p.relative_to(ROOT / 'configs').as_posix()
        for p in (ROOT / 'configs').rglob('*')
        if p.suffix in ('.py', '.yml', '.md')
    ]
    assert any(f.endswith('metafile.yml') for f in files)
    missing = [f for f in files if f'mmimb/.mim/configs/{f}' not in names]
    assert not missing
    assert 'mmimb/.mim/model-index.yml' in names
    assert 'mmimb/.mim/tools/train.py' in names  # mim train runs it
    assert not any(n.startswith(('tests/', 'tools/')) for n in names)


@pytest.mark.slow
def test_wheel_install_serves_hub_lookups(wheel, tmp_path):
    target = tmp_path / 'site'
    subprocess.run([
        sys.executable, '-m', 'pip', 'install', '--no-deps', '-q',
        '--target',
        str(target),
        str(wheel)
    ],
                   check=True,
                   capture_output=True)
    user = tmp_path / 'user.py'
    user.write_text(
        "_base_ = ['mmimb::_base_/models/cifar_resnet32.py']\n"
        'model = dict(head=dict(num_classes=3))\n')
    script = textwrap.dedent(f"""
        from pathlib import Path
        import mmimb
        from mmengine.config import Config
        from mmengine.hub import get_config, get_model
        from mmengine.utils import get_installed_path
        package = Path(mmimb.__file__).parent
        assert package == Path({str(target)!r}) / 'mmimb', package
        assert Path(get_installed_path({LOCATOR_MODULE!r})) == package
        mim = package / '.mim'
        assert not (mim / 'configs').is_symlink()
        name = 'csba/csba-ce_resnet32_1xb128-200e_cifar10-lt-if100.py'
        cfg = get_config('mmimb::' + name)
        assert Path(cfg.filename) == mim / 'configs' / name, cfg.filename
        model = get_model('mmimb::' + name)
        assert type(model.neck).__name__ == 'CSBANeck'
        user = Config.fromfile({str(user)!r})
        assert user.model.head.num_classes == 3
        assert user.model.backbone.type == 'CifarResNet'
        print('hub lookups ok')
        """)
    # The installed copy only: not the checkout that PYTHONPATH may name.
    env = dict(os.environ, PYTHONPATH=str(target), OMP_NUM_THREADS='1')
    result = subprocess.run([sys.executable, '-c', script],
                            cwd=tmp_path,
                            env=env,
                            capture_output=True,
                            text=True,
                            timeout=600)
    check_ok(result)
    assert 'hub lookups ok' in result.stdout
