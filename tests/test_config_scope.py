"""``mmimb::`` config paths resolve like ``mmseg::`` ones, and the types in
such configs are found in the running task's scope."""
import mmpretrain.models  # noqa: F401
import mmseg.models  # noqa: F401
from mmengine.config import Config
from mmengine.registry import DATASETS, init_default_scope
from mmpretrain.registry import MODELS as CLS_MODELS
from mmseg.registry import MODELS as SEG_MODELS

import mmimb  # noqa: F401
from mmimb.datasets import SyntheticTissueDataset
from mmimb.registry import MODELS


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
