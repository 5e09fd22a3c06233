import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Helper modules beside the tests (toolrun.py, ...) are imported by name;
# pytest's importlib mode does not put this folder on sys.path itself.
sys.path.insert(0, str(Path(__file__).resolve().parent))
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
