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
# The authors' recipe on BCSS (configs/dfa_bcss.py by its full name) and
# its variants, {algorithm}_{RECIPE}.py in configs/dfa/.
RECIPE = 'sam-vit-b-frozen_1xb12-35e_bcss-1024x1024'


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
    (f'dfa-none_{RECIPE}', {'bias_mode': 'none', 'class_freq': None}),
    (f'dfa-cffa_{RECIPE}', {'bias_mode': 'fixed'}),
    (f'dfa-anchored_{RECIPE}', {'bias_mode': 'anchored'}),
    (f'dfa-hcfa_{RECIPE}', {
        'bias_mode': 'fixed',
        'prior': 'difficulty',
        'class_dice': f'work_dirs/dfa-none_{RECIPE}/class_dice.json',
        'class_freq': None
    }),
])
def test_bias_variants_change_one_field_group(variant, changes):
    parent, child = load(f'dfa_{RECIPE}'), load(variant)
    diff = {k for k in parent.keys() | child.keys()
            if parent.get(k) != child.get(k)}
    expected = {f'model.decode_head.{k}' for k in changes}
    assert diff == expected
    for key, value in changes.items():
        assert child[f'model.decode_head.{key}'] == value


@pytest.mark.parametrize('variant',
                         [f'dfa-none_{RECIPE}', f'dfa-hcfa_{RECIPE}'])
def test_variants_without_frequency_prior_build_without_class_freq(variant):
    # class_freq='auto' would cost a counting pass over the training masks.
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    head = Config.fromfile(str(CONFIGS / 'dfa' / f'{variant}.py')).model
    head = head.decode_head
    assert head.class_freq is None
    head.class_dice = [0.9, 0.5, 0.7, 0.3, 0.6]
    head.update(in_channels=32, channels=32, feedforward_channels=64,
                num_heads=2)
    # In mmseg's scope whatever scope an earlier test left as the default.
    with DefaultScope.overwrite_default_scope('mmseg'):
        built = MODELS.build(head)
    assert built.num_classes == 5


def test_recipe_settings():
    """configs/dfa_bcss.py is the authors' recipe (docs/dfa.md, "The
    authors' recipe"), item by item."""
    cfg = load('dfa_bcss')
    head = 'model.decode_head.'
    assert cfg['model.type'] == 'FrozenBackboneEncoderDecoder'
    assert cfg['model.backbone.type'] == 'mmpretrain.ViTSAM'
    assert cfg['model.backbone.arch.embed_dims'] == 768
    assert cfg['model.backbone.init_cfg.type'] == 'Pretrained'
    assert cfg[head + 'init_cfg.prefix'] == 'decode_head.'
    assert (cfg[head + 'type'], cfg[head + 'token_layout'],
            cfg[head + 'no_mask_embed'], cfg[head + 'iou_head_channels'],
            cfg[head + 'num_layers']) == ('DFAHead', 'sam', True, 256, 2)
    assert head + 'reference_bias_offset' not in cfg
    assert (cfg[head + 'bias_mode'], cfg[head + 'prior'], cfg[head + 'gamma'],
            cfg[head + 'init_scale'], cfg[head + 'bias_sharing'],
            cfg[head + 'class_freq']) == ('learned', 'focal', 2.0, 0.5,
                                          'shared', 'auto')
    assert (cfg[head + 'loss_decode.type'],
            cfg[head + 'loss_decode.focal_weight'],
            cfg[head + 'loss_decode.dice_weight'],
            cfg[head + 'loss_decode.iou_weight']) == ('SAMPathLoss', 0.25,
                                                      0.75, 0.0625)
    assert cfg.get(head + 'delta_penalty', 0.0) == 0.0
    assert (cfg['optim_wrapper.optimizer.type'],
            cfg['optim_wrapper.optimizer.lr'],
            cfg['optim_wrapper.optimizer.weight_decay'],
            cfg['optim_wrapper.accumulative_counts']) == ('AdamW', 1e-4,
                                                          1e-2, 2)
    keys = {k: v for k, v in cfg.items() if k.startswith('optim_wrapper.p')}
    prefix = 'optim_wrapper.paramwise_cfg.custom_keys.dfa_delta.'
    assert keys == {prefix + 'lr_mult': 20.0, prefix + 'decay_mult': 0.0,
                    prefix + 'constant_lr': True,
                    prefix + 'max_grad_norm': 0.5}
    assert cfg['optim_wrapper.constructor'] == \
        'GroupStepOptimWrapperConstructor'
    assert (cfg['train_dataloader.batch_size'],
            cfg['train_dataloader.sampler.type'], cfg['train_cfg.type'],
            cfg['train_cfg.max_epochs']) == (12, 'DefaultSampler',
                                             'EpochBasedTrainLoop', 35)
    # --auto-scale-lr scales from 1 GPU x batch 12 (the accumulation, 2,
    # stays on any number of GPUs).
    assert (cfg['auto_scale_lr.enable'],
            cfg['auto_scale_lr.base_batch_size']) == (False, 12)
    # validation and a checkpoint every epoch, the best by mDice kept
    assert (cfg['train_cfg.val_interval'],
            cfg['default_hooks.checkpoint.by_epoch'],
            cfg['default_hooks.checkpoint.interval'],
            cfg['default_hooks.checkpoint.save_best']) == (1, True, 1, 'mDice')
    warmup, decay = Config.fromfile(
        str(CONFIGS / 'dfa_bcss.py')).param_scheduler
    assert (warmup.type, warmup.by_epoch, warmup.begin, warmup.end) == (
        'LinearLR', False, 0, (72 + 1) * 2)
    assert (decay.type, decay.by_epoch, decay.milestones, decay.gamma) == (
        'MultiStepLR', True, [25, 29], 0.1)
    assert cfg['model.data_preprocessor.size'] == (1024, 1024)
    assert cfg['custom_hooks'] == [dict(type='DFABiasLoggerHook')]


def test_crag_recipe_and_full_finetune_variant():
    crag = load('dfa_sam-vit-b-frozen_1xb12-60e_crag-1024x1024')
    head = 'model.decode_head.'
    assert (crag[head + 'num_classes'], crag[head + 'init_scale'],
            crag[head + 'delta_penalty'],
            crag[head + 'loss_decode.focal_weight'],
            crag[head + 'loss_decode.dice_weight'],
            crag[head + 'loss_decode.iou_weight']) == (2, 0.1, 1e-4, 0.125,
                                                       0.875, 0.0)
    assert crag['optim_wrapper.paramwise_cfg.custom_keys.dfa_delta.'
                'lr_mult'] == 100.0
    assert crag['train_cfg.max_epochs'] == 60
    warmup, decay = Config.fromfile(str(
        CONFIGS / 'dfa' /
        'dfa_sam-vit-b-frozen_1xb12-60e_crag-1024x1024.py')).param_scheduler
    assert (warmup.end, decay.milestones) == ((46 + 1) * 2, [50, 55])
    assert load('dfa_sam-vit-b_1xb2-20k_bdsa-1024x1024')[
        head + 'init_scale'] == 0.1
    assert load('dfa_sam-vit-b_1xb8-20k_ebhi-seg-224x224')[
        head + 'num_classes'] == 7
    full = load('dfa_sam-vit-b_1xb2-20k_bcss-1024x1024')
    assert full['model.type'] == 'EncoderDecoder'
    assert full.get(head + 'token_layout', 'class') == 'class'
    assert [loss['type'] for loss in full[head + 'loss_decode']] == [
        'SegFocalLoss', 'SegDiceLoss'
    ]
    reference = load(f'dfa-reference-offset_{RECIPE}')
    assert reference[head + 'reference_bias_offset'] is True


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
        [str(CONFIGS / 'dfa' / f'dfa-hcfa_{RECIPE}.py'), '--work-dir',
         str(tmp_path),
         '--cfg-options', *roots,
         f'model.backbone.init_cfg.checkpoint={tmp_path}'], capsys)
    assert 'class_dice' in err and 'class_difficulty.py' in err


def tiny_sam_options(s, checkpoint, data_root, layout='sam'):
    """--cfg-options that shrink the DFA SAM configs to the tiny SAM of
    tests/sam_fixtures.py and a converted BCSS fixture."""
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
        'default_hooks.logger.interval=1',
    ] + [f'{loader}.dataset.data_root={data_root}'
         for loader in loaders] + [
             f'{loader}.{key}'
             for loader in loaders
             for key in ('num_workers=0', 'persistent_workers=False')
         ]
    if layout == 'sam':
        options.append(f'model.decode_head.iou_head_channels={s.IOU_HIDDEN}')
    return options


@pytest.mark.parametrize('config, amp', [
    ('dfa_bcss', False),
    pytest.param('dfa_bcss', True, marks=pytest.mark.slow),
    pytest.param('dfa/dfa_sam-vit-b_1xb2-20k_bcss-1024x1024', False,
                 marks=pytest.mark.slow),
])
def test_train_starts_on_converted_bcss(tmp_path, converted_bcss,
                                        sam_fixtures, config, amp):
    """`tools/train.py configs/dfa_bcss.py` (also with --amp) trains the
    recipe on a BCSS-layout folder: the encoder stays as converted, the
    decoder starts from SAM and trains; the full fine-tuning variant moves
    the encoder too."""
    s = sam_fixtures
    checkpoint = tmp_path / 'sam_tiny_mmpretrain.pth'
    torch.save(dict(state_dict=convert_sam(s.official_sam_state_dict())),
               checkpoint)
    recipe = config == 'dfa_bcss'
    options = tiny_sam_options(s, checkpoint, converted_bcss,
                               'sam' if recipe else 'class')
    # the recipe: one epoch of 29 tiles at batch 12 (2 optimizer steps)
    options += ['train_cfg.max_epochs=1'] if recipe else [
        'train_cfg.max_iters=2', 'train_dataloader.batch_size=2']
    work = tmp_path / 'work'
    train_main([str(CONFIGS / f'{config}.py'), '--work-dir', str(work),
                '--cfg-options', *options] + (['--amp'] if amp else []))
    ckpt = torch.load(work / ('epoch_1.pth' if recipe else 'iter_2.pth'),
                      map_location='cpu', weights_only=False)
    state = ckpt['state_dict']
    sam = s.official_sam_state_dict()
    start = sam['image_encoder.patch_embed.proj.weight']
    moved = state['backbone.patch_embed.projection.weight'] - start
    if recipe:
        assert torch.equal(state['backbone.patch_embed.projection.weight'],
                           start)
        assert torch.equal(state['decode_head.no_mask_embed'],
                           sam['prompt_encoder.no_mask_embed.weight'])
    else:
        assert 0 < moved.abs().max() < 0.01
    # the decoder started from SAM's and trained (the paper's setting)
    start = sam['mask_decoder.output_upscaling.0.weight']
    moved = state['decode_head.output_upscaling.0.weight'] - start
    assert 0 < moved.abs().max() < 0.01
    # class_freq='auto' was resolved from the converted training tiles
    assert 'decode_head.class_bias.dfa_delta' in state
    logs = sorted(work.glob('*/vis_data/scalars.json'))[0].read_text()
    rows = [json.loads(line) for line in logs.splitlines()]
    assert any('dfa_bias/tumor' in row and 'dfa_bias_centred/tumor' in row
               for row in rows)
    if recipe:
        assert any("decode.loss_iou" in row for row in rows)


def one_line_error(err):
    lines = [line for line in err.splitlines() if line.startswith('error:')]
    assert len(lines) == 1 and 'Traceback' not in err, err
    return lines[0]


@pytest.mark.parametrize('case', ['official_sam', 'encoder_only',
                                  'empty_root'])
def test_paper_path_errors_are_one_line(case, tmp_path, capsys,
                                        converted_bcss, sam_fixtures):
    """Each wrong input on the way to `tools/train.py configs/dfa_bcss.py`
    stops with one line naming the field and the fix."""
    s = sam_fixtures
    sam = s.official_sam_state_dict()
    checkpoint = tmp_path / 'sam.pth'
    root = converted_bcss
    if case == 'official_sam':
        torch.save(sam, checkpoint)  # not converted
    else:
        torch.save(dict(state_dict=convert_sam(
            sam, with_decoder=case != 'encoder_only')), checkpoint)
    if case == 'empty_root':
        root = tmp_path / 'bcss'
        for sub in ('img_dir', 'ann_dir'):
            for split in ('train', 'val', 'test'):
                (root / sub / split).mkdir(parents=True)
    options = tiny_sam_options(s, checkpoint, root)
    err = one_line_error(run_train(
        [str(CONFIGS / 'dfa_bcss.py'), '--work-dir', str(tmp_path / 'w'),
         '--cfg-options', *options], capsys))
    expected = {
        'official_sam': ['model.backbone.init_cfg.checkpoint=',
                         'official Segment Anything checkpoint',
                         'sam2mmpretrain.py'],
        'encoder_only': ['model.decode_head.init_cfg.checkpoint=',
                         'no decoder weights', 'sam2mmpretrain.py',
                         'model.decode_head.init_cfg=None'],
        'empty_root': ["train_dataloader.dataset.data_prefix.img_path=",
                       'is an empty folder', 'docs/datasets.md'],
    }[case]
    for part in expected:
        assert part in err, err


def test_multiple_select_is_refused_in_one_line(tmp_path, capsys):
    tiny = ROOT / 'tests' / 'data' / 'configs' / 'tiny_dfa_synthetic.py'
    err = one_line_error(run_train(
        [str(tiny), '--work-dir', str(tmp_path), '--cfg-options',
         'model.decode_head.input_transform=multiple_select'], capsys))
    assert "input_transform='multiple_select'" in err
    assert "input_transform='resize_concat'" in err
