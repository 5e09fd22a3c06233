"""Bad configs stop before training with one message that names the field,
the value and what was expected."""
import pytest
from mmengine.config import Config
from toolrun import run_tool

from mmimb.engine import ConfigError, check_config


@pytest.fixture
def cfg(tiny_seg_config):
    return Config.fromfile(tiny_seg_config)


def files_dataset(root):
    return dict(
        _delete_=True,
        type='BaseSegDataset',
        data_root=str(root),
        data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/'
                         'train'),
        pipeline=[dict(type='LoadImageFromFile')])


def test_valid_config_passes(cfg):
    assert check_config(cfg) == 'mmseg'


def test_missing_data_root(cfg, tmp_path):
    cfg.merge_from_dict(
        dict(train_dataloader=dict(dataset=files_dataset(tmp_path / 'no'))))
    with pytest.raises(ConfigError, match=r"train_dataloader\.dataset\."
                       r"data_root='.*/no' does not exist"):
        check_config(cfg)


def test_missing_data_prefix(cfg, tmp_path):
    (tmp_path / 'img_dir' / 'train').mkdir(parents=True)
    cfg.merge_from_dict(
        dict(train_dataloader=dict(dataset=files_dataset(tmp_path))))
    with pytest.raises(ConfigError,
                       match="seg_map_path='ann_dir/train' does not exist"):
        check_config(cfg)


def test_class_count_mismatch(cfg):
    cfg.model.decode_head.num_classes = 3
    with pytest.raises(
            ConfigError,
            match=r'model\.decode_head\.num_classes=3 but the dataset has 5'):
        check_config(cfg)


def test_unknown_model_type(cfg):
    cfg.model.decode_head.type = 'SegformerHaed'
    with pytest.raises(ConfigError,
                       match="model.decode_head.type='SegformerHaed' is not "
                       "a registered model.*did you mean 'SegformerHead'"):
        check_config(cfg)


def test_unknown_loss(cfg):
    cfg.model.decode_head.loss_decode.type = 'NoSuchLoss'
    with pytest.raises(ConfigError, match=r'loss_decode\.type='):
        check_config(cfg)


def test_unknown_transform(cfg):
    cfg.train_dataloader.dataset.pipeline = [dict(type='PackSegInput')]
    with pytest.raises(ConfigError,
                       match=r"pipeline\[0\]\.type='PackSegInput'"):
        check_config(cfg)


def test_missing_pretrained_checkpoint(cfg):
    cfg.model.backbone.init_cfg = dict(
        type='Pretrained', checkpoint='/nowhere/sam_vit_b.pth')
    with pytest.raises(ConfigError, match=r"model\.backbone\.init_cfg\."
                       r"checkpoint='/nowhere/sam_vit_b.pth' does not exist"):
        check_config(cfg)
    assert check_config(cfg, mode='test') == 'mmseg'


def test_missing_pretrained_decoder_checkpoint(cfg):
    cfg.model.decode_head.init_cfg = dict(
        type='Pretrained', checkpoint='/nowhere/sam.pth',
        prefix='decode_head.')
    with pytest.raises(ConfigError, match=r"model\.decode_head\.init_cfg\."
                       r"checkpoint='/nowhere/sam.pth' does not exist"):
        check_config(cfg)


def test_missing_load_from_checkpoint(cfg):
    cfg.load_from = 'work_dirs/absent/epoch_200.pth'
    with pytest.raises(ConfigError, match=r"load_from='work_dirs/absent/"
                       r"epoch_200.pth' does not exist"):
        check_config(cfg)
    assert check_config(cfg, mode='test') == 'mmseg'


def test_unknown_scope(cfg):
    cfg.default_scope = 'mmdet'
    with pytest.raises(ConfigError, match="default_scope='mmdet'"):
        check_config(cfg)


def test_cli_reports_one_line_and_exit_2(tmp_path):
    result = run_tool('tools/train.py', tmp_path / 'missing.py')
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: config file '{tmp_path / 'missing.py'}' does not exist"
    ]


def test_cli_class_mismatch_stops_before_training(tiny_seg_config, tmp_path):
    result = run_tool('tools/train.py', tiny_seg_config, '--work-dir',
                      tmp_path, '--cfg-options',
                      'model.decode_head.num_classes=7')
    assert result.returncode == 2
    assert 'num_classes=7 but the dataset has 5' in result.stderr
    assert 'Traceback' not in result.stderr
    assert not list(tmp_path.glob('*.pth'))


def test_save_best_names_a_metric_of_the_evaluator(cfg):
    cfg.merge_from_dict(
        {'default_hooks.checkpoint.save_best': 'lt/top1'})
    with pytest.raises(ConfigError, match=r"save_best='lt/top1' names no "
                       r"metric of val_evaluator \['IoUMetric'\]"):
        check_config(cfg)
    cfg.val_cfg = None  # --no-validate
    assert check_config(cfg) == 'mmseg'
