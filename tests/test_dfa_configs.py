"""The DFA configs: variants differ from their parent only where they should,
and `tools/train.py configs/dfa_bcss.py` fails clearly without data or SAM
weights and starts training with them (a converted BCSS fixture and a tiny
SAM-layout checkpoint)."""
import json
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from mmimb.engine.launch import run_cli
from tools.model_converters.sam2mmpretrain import convert_sam
from mmimb.cli.train import main as train_main

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / 'configs'


def flat(cfg, prefix=''):
    out = {}
    for key, value in cfg.items():
        name = f'{prefix}{key}'
        if isinstance(value, dict):
            out.update(flat(value, name + '.'))
        else:
            out[name] = value
    return out


def load(name):
    path = CONFIGS / f'{name}.py'
    if not path.is_file():
        path = CONFIGS / 'dfa' / f'{name}.py'
    return flat(Config.fromfile(str(path)).to_dict())


@pytest.mark.parametrize('variant, changes', [
    ('dfa_bcss_none', {'bias_mode': 'none', 'class_freq': None}),
    ('dfa_bcss_cffa', {'bias_mode': 'fixed'}),
    ('dfa_bcss_anchored', {'bias_mode': 'anchored'}),
    ('dfa_bcss_hcfa', {
        'bias_mode': 'fixed',
        'prior': 'difficulty',
        'class_dice': 'work_dirs/dfa_bcss_none/class_dice.json',
        'class_freq': None
    }),
])
def test_bias_variants_change_one_field_group(variant, changes):
    parent, child = load('dfa_bcss'), load(variant)
    diff = {k for k in parent.keys() | child.keys()
            if parent.get(k) != child.get(k)}
    expected = {f'model.decode_head.{k}' for k in changes}
    assert diff == expected
    for key, value in changes.items():
        assert child[f'model.decode_head.{key}'] == value


@pytest.mark.parametrize('variant', ['dfa_bcss_none', 'dfa_bcss_hcfa'])
def test_variants_without_frequency_prior_build_without_class_freq(variant):
    # class_freq='auto' would cost a counting pass over the training masks.
    from mmseg.registry import MODELS
    head = Config.fromfile(str(CONFIGS / 'dfa' / f'{variant}.py')).model
    head = head.decode_head
    assert head.class_freq is None
    head.class_dice = [0.9, 0.5, 0.7, 0.3, 0.6]
    head.update(in_channels=32, channels=32, feedforward_channels=64,
                num_heads=2)
    built = MODELS.build(head)
    assert built.num_classes == 5


def test_paper_settings():
    cfg = load('dfa_bcss')
    head = 'model.decode_head.'
    assert cfg['model.backbone.type'] == 'mmpretrain.ViTSAM'
    assert cfg['model.backbone.arch.embed_dims'] == 768
    assert cfg['model.backbone.init_cfg.type'] == 'Pretrained'
    assert cfg[head + 'type'] == 'DFAHead'
    assert (cfg[head + 'num_layers'], cfg[head + 'bias_mode'],
            cfg[head + 'prior'], cfg[head + 'gamma'],
            cfg[head + 'init_scale'], cfg[head + 'bias_sharing'],
            cfg[head + 'class_freq']) == (2, 'learned', 'focal', 2.0, 0.5,
                                           'shared', 'auto')
    assert [loss['type'] for loss in cfg[head + 'loss_decode']] == [
        'SegFocalLoss', 'SegDiceLoss'
    ]
    keys = {k: v for k, v in cfg.items() if k.startswith('optim_wrapper.p')}
    assert keys == {
        'optim_wrapper.paramwise_cfg.custom_keys.dfa_delta.lr_mult': 20.0,
        'optim_wrapper.paramwise_cfg.custom_keys.dfa_delta.decay_mult': 0.0
    }
    assert cfg['model.data_preprocessor.size'] == (1024, 1024)
    assert cfg['custom_hooks'] == [dict(type='DFABiasLoggerHook')]
    assert load('dfa_crag')[head + 'init_scale'] == 0.1
    assert load('dfa_bdsa')[head + 'init_scale'] == 0.1
    assert load('dfa_ebhi_seg')[head + 'num_classes'] == 7


@pytest.mark.parametrize('path', sorted(
    str(p.relative_to(CONFIGS)) for p in [CONFIGS / 'dfa_bcss.py',
                                          *(CONFIGS / 'dfa').glob('*.py')]))
def test_no_checkpoint_is_picked_on_the_test_split(path):
    cfg = Config.fromfile(str(CONFIGS / path))
    val = cfg.val_dataloader.dataset.get('data_prefix')
    test = cfg.test_dataloader.dataset.get('data_prefix')
    if val is not None and val == test:
        assert cfg.default_hooks.checkpoint.get('save_best') is None


def run_train(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_cli(lambda: train_main(argv))
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_train_fails_clearly_without_data_or_checkpoint(tmp_path, capsys,
                                                        converted_bcss):
    config = str(CONFIGS / 'dfa_bcss.py')
    err = run_train([config, '--work-dir', str(tmp_path)], capsys)
    assert "data_root='data/bcss' does not exist" in err
    roots = [f'{loader}.dataset.data_root={converted_bcss}'
             for loader in ('train_dataloader', 'val_dataloader')]
    err = run_train(
        [config, '--work-dir', str(tmp_path), '--cfg-options', *roots],
        capsys)
    assert "init_cfg.checkpoint='checkpoints/sam_vit-b_mmpretrain.pth' " \
        'does not exist' in err
    err = run_train(
        [str(CONFIGS / 'dfa' / 'dfa_bcss_hcfa.py'), '--work-dir',
         str(tmp_path),
         '--cfg-options', *roots,
         f'model.backbone.init_cfg.checkpoint={tmp_path}'], capsys)
    assert 'class_dice' in err and 'class_difficulty.py' in err


def test_train_starts_on_converted_bcss(tmp_path, converted_bcss,
                                        sam_fixtures):
    s = sam_fixtures
    checkpoint = tmp_path / 'sam_tiny_mmpretrain.pth'
    torch.save(dict(state_dict=convert_sam(s.official_sam_state_dict())),
               checkpoint)
    loaders = ('train_dataloader', 'val_dataloader', 'test_dataloader')
    options = [
        f'model.backbone.arch.embed_dims={s.E}',
        f'model.backbone.arch.num_layers={s.DEPTH}',
        f'model.backbone.arch.num_heads={s.HEADS}',
        f'model.backbone.arch.feedforward_channels={s.MLP}',
        f'model.backbone.arch.global_attn_indexes={list(s.GLOBAL)}',
        f'model.backbone.img_size={s.IMG}',
        f'model.backbone.window_size={s.WIN}',
        f'model.backbone.out_channels={s.OUT}',
        f'model.backbone.init_cfg.checkpoint={checkpoint}',
        f'model.decode_head.init_cfg.checkpoint={checkpoint}',
        f'model.decode_head.in_channels={s.OUT}',
        f'model.decode_head.channels={s.D}',
        'model.decode_head.num_heads=2',
        f'model.decode_head.feedforward_channels={s.DEC_MLP}',
        'model.data_preprocessor.size=(64,64)',
        'train_dataloader.dataset.pipeline.2.crop_size=(64,64)',
        'train_cfg.max_iters=2',
        'default_hooks.logger.interval=1',
        'train_dataloader.batch_size=2',
    ] + [f'{loader}.dataset.data_root={converted_bcss}'
         for loader in loaders] + [
             f'{loader}.{key}'
             for loader in loaders
             for key in ('num_workers=0', 'persistent_workers=False')
         ]
    work = tmp_path / 'work'
    train_main([str(CONFIGS / 'dfa_bcss.py'), '--work-dir', str(work),
                '--cfg-options', *options])
    ckpt = torch.load(work / 'iter_2.pth', map_location='cpu',
                      weights_only=False)
    state = ckpt['state_dict']
    # the encoder started from the converted checkpoint: the patch
    # embedding moved by two small steps, not from a random draw
    start = s.official_sam_state_dict()[
        'image_encoder.patch_embed.proj.weight']
    moved = state['backbone.patch_embed.projection.weight'] - start
    assert 0 < moved.abs().max() < 0.01
    # and so did the decoder (the paper's setting)
    start = s.official_sam_state_dict()[
        'mask_decoder.output_upscaling.0.weight']
    moved = state['decode_head.output_upscaling.0.weight'] - start
    assert 0 < moved.abs().max() < 0.01
    # class_freq='auto' was resolved from the converted training tiles
    assert 'decode_head.class_bias.dfa_delta' in state
    logs = sorted(work.glob('*/vis_data/scalars.json'))[0].read_text()
    rows = [json.loads(line) for line in logs.splitlines()]
    assert any('dfa_bias/tumor' in row for row in rows)
