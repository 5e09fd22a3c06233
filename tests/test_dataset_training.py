"""A short training run reads each histopathology dataset through its base
config: converted fixtures, the tiny model of tiny_seg_synthetic.py, crops
made small by config merges."""
from pathlib import Path

import pytest
from mmengine.config import Config

from mmimb.datasets.crag import convert_crag
from mmimb.datasets.ebhi_seg import convert_ebhi_seg
from mmimb.engine.launch import build_runner

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / 'configs' / '_base_' / 'datasets'
RUNTIME_KEYS = ('model', 'optim_wrapper', 'param_scheduler', 'train_cfg',
                'val_cfg', 'test_cfg', 'default_hooks', 'log_processor',
                'randomness')


def training_config(name: str, data_root: Path, num_classes: int,
                    tiny_seg_config: Path, work_dir: Path) -> Config:
    cfg = Config.fromfile(str(BASE / f'{name}.py'))
    runtime = Config.fromfile(str(ROOT / 'configs' / '_base_' /
                                  'default_runtime_seg.py'))
    tiny = Config.fromfile(str(tiny_seg_config))
    cfg.merge_from_dict(runtime.to_dict())
    for key in RUNTIME_KEYS:
        cfg[key] = tiny[key]
    cfg.model.decode_head.num_classes = num_classes
    cfg.merge_from_dict({
        'work_dir': str(work_dir),
        'train_cfg.max_iters': 2,
        'train_cfg.val_interval': 2,
        'train_dataloader.dataset.pipeline.2.crop_size': (32, 32),
    }, allow_list_keys=True)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].update(num_workers=0, persistent_workers=False)
        cfg[loader].dataset.data_root = str(data_root)
    cfg.train_dataloader.batch_size = 2
    cfg.launcher = 'none'
    return cfg


def convert_crag_fixture(tmp_path, fixtures):
    out = tmp_path / 'crag'
    convert_crag(str(fixtures.write_crag_release(tmp_path)), str(out),
                 progress=False)
    return out


def convert_ebhi_fixture(tmp_path, fixtures):
    out = tmp_path / 'ebhi'
    convert_ebhi_seg(str(fixtures.write_ebhi_release(tmp_path)), str(out),
                     progress=False)
    return out


@pytest.mark.parametrize('name, num_classes', [('bcss', 5), ('crag', 2),
                                               ('bdsa', 5), ('ebhi_seg', 7)])
def test_short_training_run_through_base_config(name, num_classes, tmp_path,
                                                dataset_fixtures,
                                                converted_bcss,
                                                tiny_seg_config):
    data_root = {
        'bcss': lambda: converted_bcss,
        'crag': lambda: convert_crag_fixture(tmp_path, dataset_fixtures),
        'bdsa': lambda: dataset_fixtures.write_bdsa_folder(tmp_path),
        'ebhi_seg': lambda: convert_ebhi_fixture(tmp_path, dataset_fixtures),
    }[name]()
    cfg = training_config(name, data_root, num_classes, tiny_seg_config,
                          tmp_path / 'work')
    runner = build_runner(cfg, 'train')
    runner.train()
    assert runner.iter == 2
    metrics = runner.test()
    assert {'mIoU', 'mDice'} <= set(metrics)
