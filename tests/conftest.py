import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Helper modules beside the tests (toolrun.py, ...) are imported by name;
# pytest's importlib mode does not put this folder on sys.path itself.
sys.path.insert(0, str(Path(__file__).resolve().parent))
# Class-statistics caches of test runs (subprocesses included) stay out of the
# user's home.
os.environ.setdefault('MMIMB_CACHE_DIR',
                      tempfile.mkdtemp(prefix='mmimb-test-cache-'))
# Real data shipped beside the repository (never inside it); see
# ../shared/data/README.md. MMIMB_SHARED_DATA points elsewhere.
SHARED_DATA = Path(os.environ.get('MMIMB_SHARED_DATA',
                                  ROOT.parent / 'shared' / 'data'))


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f'real data folder {SHARED_DATA} is absent (it sits '
                    'beside the repository as ../shared/data)')
    return SHARED_DATA


@pytest.fixture(scope='session')
def tiny_seg_config() -> Path:
    return ROOT / 'tests' / 'data' / 'configs' / 'tiny_seg_synthetic.py'


@pytest.fixture(scope='session')
def tiny_seg_checkpoint(tiny_seg_config, tmp_path_factory) -> str:
    """A checkpoint of the tiny segmentation config's model (seed 0)."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    cfg = Config.fromfile(str(tiny_seg_config))
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    path = tmp_path_factory.mktemp('ckpt') / 'model.pth'
    torch.save({'state_dict': model.state_dict()}, path)
    return str(path)


def _load_module(path: Path, name: str):
    import importlib.util
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    # Registered, so that pickle finds the module's functions by name when
    # a script hands them to worker processes (multiprocessing.Pool).
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _load_test_module(name: str):
    # The tests folder is not a package (and mmseg installs a top-level
    # ``tests`` package that would shadow it): load helpers by path.
    return _load_module(ROOT / 'tests' / f'{name}.py', f'mmimb_tests_{name}')


@pytest.fixture(scope='session')
def load_script():
    """``load_script('tools/repro/gpu_pack.py')``: a script of the
    repository (tools/ and benchmarks/ are not packages) as a module."""
    # A name of its own per path: benchmarks/ and tools/ share file names.
    return lambda path: _load_module(
        ROOT / path, 'mmimb_script_' + str(Path(path).with_suffix(''))
        .replace('/', '_').replace('-', '_'))


@pytest.fixture(scope='session')
def dataset_fixtures():
    """tests/dataset_fixtures.py: writers of small copies of the BCSS,
    CRAG, EBHI-Seg and BDSA source formats."""
    return _load_test_module('dataset_fixtures')


@pytest.fixture(scope='session')
def sam_fixtures():
    """tests/sam_fixtures.py: a tiny state dict in the official Segment
    Anything checkpoint layout."""
    return _load_test_module('sam_fixtures')


@pytest.fixture(scope='session')
def converted_bcss(tmp_path_factory, dataset_fixtures) -> Path:
    """A BCSS fixture release converted to 64 px tiles (default grouping and
    test institutions): a data_root for configs/_base_/datasets/bcss.py with
    crop_size 64 or less."""
    from mmimb.datasets.bcss import convert_bcss
    root = tmp_path_factory.mktemp('bcss')
    release = dataset_fixtures.write_bcss_release(root / 'source')
    out = root / 'converted'
    convert_bcss(str(release), str(out), tile_size=64, val_fraction=0.25,
                 progress=False)
    return out
