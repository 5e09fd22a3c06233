"""Config names tell the truth: in OpenMMLab's
``{algorithm}_{backbone}_{GPUs}xb{batch}-{schedule}_{dataset}[-{crop}]``
the batch per GPU, the schedule and the crop are the config's, and
``auto_scale_lr.base_batch_size``, the total batch the learning rate is for,
is GPUs x batch of the name (the batch mmengine's ``--auto-scale-lr``
compares with; gradient accumulation is not part of it). The metafile
entries, results included, are named the same way after what they ran. The
top-level configs are short names of folder configs and add nothing."""
import copy
import re
from functools import lru_cache
from pathlib import Path
from typing import List

import pytest
import yaml
from mmengine.config import Config
from toolrun import ROOT

import mmimb  # noqa: F401

NAME = re.compile(r'^(?P<algorithm>[a-z0-9-]+)_(?P<backbone>[a-z0-9-]+)_'
                  r'(?P<gpus>\d+)xb(?P<batch>\d+)-(?P<schedule>\d+)'
                  r'(?P<unit>e|k|it)(?:-[a-z0-9-]+)?_(?P<data>[a-z0-9.-]+)$')
CONFIGS = sorted(
    p for p in (ROOT / 'configs').glob('*/*.py') if p.parent.name != '_base_')
# The top-level configs, for commands in the README and `make demo`, and the
# folder config each is (mmimb:: reaches only the folder one).
SHORT_NAMES = {
    'dfa_bcss.py': 'dfa/dfa_sam-vit-b-frozen_1xb12-35e_bcss-1024x1024.py',
    'demo.py': 'dfa/dfa_mit-b0_1xb8-300it_synthetic-tissue-crossed-128x128.py',
}


@lru_cache(maxsize=None)
def _load(path: Path) -> Config:
    return Config.fromfile(str(path))


def load(path: Path) -> Config:
    """The config at ``path``, read once per test session (reading one
    costs about a second: mmengine parses mmseg's metafiles for each
    ``mmseg::`` base)."""
    return copy.deepcopy(_load(path))


def schedule_length(name) -> tuple:
    """('max_epochs' | 'max_iters', length) of a parsed name."""
    length = int(name['schedule'])
    if name['unit'] == 'e':
        return 'max_epochs', length
    return 'max_iters', length * (1000 if name['unit'] == 'k' else 1)


def named_crop(name):
    """(height, width) of a segmentation crop ``-HxW``, the side of a
    classification crop ``-S``, or None."""
    crop = re.search(r'-(\d+)x(\d+)$', name['data'])
    if crop:
        return int(crop[1]), int(crop[2])
    crop = re.search(r'-(\d+)$', name['data'])
    return int(crop[1]) if crop else None


def resized_crop(cfg):
    """The scale of the training pipeline's RandomResizedCrop, or None."""
    dataset = cfg.train_dataloader.dataset
    while 'dataset' in dataset:
        dataset = dataset.dataset
    return next((step['scale'] for step in dataset.get('pipeline', [])
                 if step['type'] == 'RandomResizedCrop'), None)


def name_problems(stem: str, cfg: Config) -> List[str]:
    """Where the fields of the name ``stem`` disagree with ``cfg``."""
    name = NAME.match(stem)
    if not name:
        return [f'{stem}: not {NAME.pattern}']
    gpus, batch = int(name['gpus']), int(name['batch'])
    problems = []
    if cfg.train_dataloader.batch_size != batch:
        problems.append(f'train_dataloader.batch_size '
                        f'{cfg.train_dataloader.batch_size}, name {batch}')
    base = cfg.get('auto_scale_lr', {}).get('base_batch_size')
    if base != gpus * batch:
        problems.append(f'auto_scale_lr.base_batch_size {base}, name '
                        f'{gpus}x{batch}')
    key, length = schedule_length(name)
    if cfg.train_cfg.get(key) != length:
        problems.append(f'train_cfg.{key} {cfg.train_cfg.get(key)}, name '
                        f'{length}')
    crop = named_crop(name)
    if cfg.get('crop_size') is not None:
        if crop != tuple(cfg.crop_size):
            problems.append(f'crop_size {cfg.crop_size}, name {crop}')
    elif crop is not None and crop != resized_crop(cfg):
        problems.append(f'RandomResizedCrop {resized_crop(cfg)}, name {crop}')
    return problems


def test_every_folder_config_follows_the_convention():
    wrong = [str(p.relative_to(ROOT)) for p in CONFIGS
             if not NAME.match(p.stem)]
    assert not wrong


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: p.stem)
def test_name_matches_config(path: Path):
    assert name_problems(path.stem, load(path)) == []


@pytest.mark.parametrize('change, problem', [
    (dict(train_dataloader=dict(batch_size=4)), 'batch_size 4, name 12'),
    (dict(auto_scale_lr=dict(base_batch_size=24)),
     'base_batch_size 24, name 1x12'),
    (dict(train_cfg=dict(max_epochs=36)), 'max_epochs 36, name 35'),
    (dict(crop_size=(512, 512)), 'crop_size (512, 512)'),
])
def test_a_config_that_disagrees_with_its_name_is_reported(change, problem):
    path = ROOT / 'configs' / SHORT_NAMES['dfa_bcss.py']
    cfg = load(path)
    assert name_problems(path.stem, cfg) == []
    cfg.merge_from_dict(change)
    problems = name_problems(path.stem, cfg)
    assert len(problems) == 1 and problem in problems[0], problems


def test_a_wrong_classification_crop_is_reported():
    path = (ROOT / 'configs' / 'ccar' /
            'ce_resnet50_4xb128-90e_imagenet-lt-224.py')
    cfg = load(path)
    assert name_problems(path.stem, cfg) == []
    assert name_problems(path.stem.replace('-224', '-256'), cfg) == [
        'RandomResizedCrop 224, name 256'
    ]


def metafile_models():
    for path in sorted((ROOT / 'configs').glob('*/metafile.yml')):
        yield from yaml.safe_load(path.read_text())['Models']


@pytest.mark.parametrize('model', list(metafile_models()),
                         ids=lambda m: m['Name'])
def test_metafile_names_state_what_ran(model):
    """Result entries (another schedule, on a CPU) are named after their
    own run: batch, length and crop of their Metadata."""
    name = NAME.match(model['Name'])
    assert name, model['Name']
    meta = model['Metadata']
    gpus, batch = int(name['gpus']), int(name['batch'])
    assert meta['Batch Size'] == gpus * batch
    resources = re.match(r'(\d+)x GPU', meta['Training Resources'])
    assert (int(resources[1]) if resources else 1) == gpus
    key, length = schedule_length(name)
    assert meta['Epochs' if key == 'max_epochs' else 'Iterations'] == length
    crop = named_crop(name)
    if 'Crop Size' in meta:
        assert meta['Crop Size'] == '{}x{}'.format(*crop)


@pytest.mark.parametrize('short, full', SHORT_NAMES.items())
def test_top_level_configs_are_their_folder_config(short, full):
    configs = ROOT / 'configs'
    assert f"_base_ = ['./{full}']" in (configs / short).read_text()
    assert load(configs / short).to_dict() == load(configs / full).to_dict()
