"""``mmimb::`` config paths resolve like ``mmseg::`` ones (through
``mmengine.hub`` and in ``_base_``), and the types in such configs are found
in the running task's scope."""
from pathlib import Path

import mmpretrain.models  # noqa: F401
import mmseg.models  # noqa: F401
import pytest
from mmengine.config import Config
from mmengine.config.utils import MODULE2PACKAGE
from mmengine.hub import get_config, get_model
from mmengine.registry import DATASETS, init_default_scope
from mmengine.utils import get_installed_path, is_installed
from mmpretrain.models.losses import CrossEntropyLoss as ClsCrossEntropy
from mmpretrain.registry import MODELS as CLS_MODELS
from mmseg.registry import MODELS as SEG_MODELS
from toolrun import ROOT

import mmimb  # noqa: F401
from mmimb.datasets import SyntheticTissueDataset
from mmimb.registry import MODELS

CSBA_CONFIG = 'csba/csba-ce_resnet32_1xb128-200e_cifar10-lt-if100.py'


def test_mmimb_base_resolves_and_builds(tmp_path):
    config = tmp_path / 'user.py'
    config.write_text(
        "_base_ = ['mmimb::_base_/datasets/synthetic_tissue.py']\n"
        'train_dataloader = dict(dataset=dict(num_samples=2, img_size=32))\n')
    cfg = Config.fromfile(config)
    dataset_cfg = cfg.train_dataloader.dataset
    assert dataset_cfg._scope_ == 'mmimb'
    init_default_scope('mmseg')
    dataset = DATASETS.build(dataset_cfg)
    assert isinstance(dataset, SyntheticTissueDataset)
    assert len(dataset) == 2


def test_names_in_both_libraries_follow_the_task_scope():
    init_default_scope('mmseg')
    assert MODELS.get('CrossEntropyLoss') is SEG_MODELS.get(
        'CrossEntropyLoss')
    init_default_scope('mmpretrain')
    assert MODELS.get('CrossEntropyLoss') is CLS_MODELS.get(
        'CrossEntropyLoss')
    assert SEG_MODELS.get('CrossEntropyLoss') is not CLS_MODELS.get(
        'CrossEntropyLoss')


def test_explicit_scope_prefix():
    init_default_scope('mmpretrain')
    assert MODELS.get('mmseg.FCNHead') is SEG_MODELS.get('FCNHead')


def test_mmengine_locates_the_imported_package():
    """The one hook into mmengine: a name in its package table that its
    installed-path lookup answers from the imported package. Fails if a
    new mmengine answers it otherwise."""
    package = MODULE2PACKAGE['mmimb']
    assert is_installed(package)
    assert Path(get_installed_path(package)) == Path(mmimb.__file__).parent
    mim = Path(mmimb.__file__).parent / '.mim'
    assert (mim / 'configs' / CSBA_CONFIG).resolve() == (
        ROOT / 'configs' / CSBA_CONFIG).resolve()
    assert (mim / 'model-index.yml').is_file()


def test_hub_get_config_and_get_model():
    cfg = get_config(f'mmimb::{CSBA_CONFIG}')
    assert Path(cfg.filename).resolve() == (ROOT / 'configs' /
                                            CSBA_CONFIG).resolve()
    assert cfg.model.neck.type == 'CSBANeck'
    # A base config, which no metafile lists.
    base = get_config('mmimb::_base_/models/cifar_resnet32.py')
    assert base.model.backbone.type == 'CifarResNet'
    model = get_model(f'mmimb::{CSBA_CONFIG}')
    assert type(model.neck).__name__ == 'CSBANeck'
    # get_model builds in the mmimb scope; the model base's _scope_ keeps
    # the loss mmpretrain's rather than mmseg's of the same name.
    assert isinstance(model.head.loss_module, ClsCrossEntropy)


def test_top_level_configs_are_not_reachable_by_scope():
    # mmengine's pattern for package paths needs a folder (README.md says
    # so); the top-level configs are shortcuts for configs in folders.
    with pytest.raises(ValueError, match='relative config path'):
        get_config('mmimb::demo.py')
