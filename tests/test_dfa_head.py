"""DFAHead and DFATransformerDecoderLayer: shapes, bias sharing, the delta
parameter group, end-to-end training, resume, autocast, SAM's encoder."""
import json
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, MODELS

import mmimb  # noqa: F401
from mmimb.models import DFAHead

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / 'tests' / 'data' / 'configs' / 'tiny_dfa_synthetic.py'
FREQ = [0.5, 0.3, 0.04, 0.04, 0.12]


def small_head(**kwargs):
    cfg = dict(
        in_channels=12,
        channels=16,
        num_classes=5,
        num_heads=2,
        feedforward_channels=32,
        class_freq=FREQ)
    cfg.update(kwargs)
    return DFAHead(**cfg)


def tiny_model(**head):
    init_default_scope('mmseg')
    cfg = Config.fromfile(TINY)
    cfg.model.decode_head.update(head)
    torch.manual_seed(0)
    return cfg, MODELS.build(cfg.model)


def delta_names(module):
    return [n for n, _ in module.named_parameters() if 'dfa_delta' in n]


def test_forward_shape_and_mask_resolution():
    head = small_head()
    out = head([torch.randn(2, 12, 6, 7)])
    assert out.shape == (2, 5, 24, 28)


@pytest.mark.parametrize('sharing, expected', [
    ('shared', ['class_bias.dfa_delta']),
    ('per_head', ['class_bias.dfa_delta']),
    ('per_layer', [
        'layers.0.cross_attn_image_to_token.class_bias.dfa_delta',
        'layers.1.cross_attn_image_to_token.class_bias.dfa_delta'
    ]),
])
def test_bias_sharing(sharing, expected):
    head = small_head(bias_sharing=sharing)
    assert delta_names(head) == expected
    biases = {id(layer.cross_attn_image_to_token.dfa_bias)
              for layer in head.layers}
    assert len(biases) == (2 if sharing == 'per_layer' else 1)
    shape = (2, 5) if sharing == 'per_head' else (1, 5)
    assert head.dfa_biases()[0][1].delta.shape == shape
    # a shared bias is saved once, under the head
    keys = [k for k in head.state_dict() if 'dfa_delta' in k]
    assert keys == expected


def test_bias_none_has_no_delta_and_fixed_has_a_buffer():
    assert delta_names(small_head(bias_mode='none')) == []
    fixed = small_head(bias_mode='fixed')
    assert delta_names(fixed) == []
    assert 'class_bias.dfa_prior' in fixed.state_dict()


def test_delta_receives_gradients_and_penalty():
    head = small_head(delta_penalty=0.1)
    out = head([torch.randn(2, 12, 4, 4)])
    out.logsumexp(1).mean().backward()
    delta = head.class_bias.delta
    assert delta.grad is not None and delta.grad.abs().sum() > 0
    losses = head.loss_by_feat(
        torch.randn(1, 5, 8, 8), [_sample(torch.randint(0, 5, (8, 8)))])
    assert torch.allclose(losses['loss_dfa_delta'],
                          0.1 * delta.detach().pow(2).sum())


def _sample(label):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    sample = SegDataSample()
    sample.gt_sem_seg = PixelData(data=label[None])
    return sample


@pytest.mark.parametrize('shipped', ['dfa/dfa_tiny_synthetic.py',
                                     'dfa_bcss.py'])
@pytest.mark.parametrize('sharing', ['shared', 'per_layer'])
def test_delta_parameter_group(sharing, shipped):
    # The shipped recipes' optimizer settings, on the tiny model.
    _, model = tiny_model(bias_sharing=sharing)
    optim_wrapper = Config.fromfile(
        str(ROOT / 'configs' / shipped)).optim_wrapper
    wrapper = build_optim_wrapper(model, optim_wrapper)
    base_lr = optim_wrapper.optimizer.lr
    decay = optim_wrapper.optimizer.weight_decay
    assert decay > 0
    deltas = {id(p) for n, p in model.named_parameters() if 'dfa_delta' in n}
    assert len(deltas) == (1 if sharing == 'shared' else 2)
    seen = set()
    for group in wrapper.optimizer.param_groups:
        ids = {id(p) for p in group['params']}
        if ids & deltas:
            assert group['lr'] == pytest.approx(20 * base_lr)
            assert group['weight_decay'] == 0
            seen |= ids
        else:
            assert group['lr'] == pytest.approx(base_lr)
            assert group['weight_decay'] == pytest.approx(decay)
    assert seen == deltas


def test_head_trains_end_to_end_and_loss_falls():
    cfg, model = tiny_model()
    cfg.optim_wrapper.optimizer.lr = 3e-3
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    dataset = DATASETS.build(
        dict(type='SyntheticTissueDataset', num_samples=8, img_size=32,
             pipeline=[dict(type='PackSegInputs')]))
    batch = pseudo_collate([dataset[i] for i in range(8)])
    delta0 = model.decode_head.class_bias.delta.detach().clone()
    losses = []
    model.train()
    for _ in range(40):
        log = model.train_step(batch, wrapper)
        losses.append(log['loss'].item())
    assert all(map(lambda x: x == x, losses)), losses
    assert sum(losses[-5:]) / 5 < 0.85 * sum(losses[:5]) / 5, losses
    assert not torch.equal(model.decode_head.class_bias.delta, delta0)


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_head_under_autocast_is_finite(dtype):
    head = small_head(bias_mode='anchored')
    x = [torch.randn(2, 12, 6, 6)]
    reference = head(x)
    with torch.autocast('cpu', dtype=dtype):
        out = head(x)
    assert torch.isfinite(out).all()
    assert torch.allclose(out.float(), reference, atol=0.1, rtol=0.1)


def test_head_on_mmpretrain_vit_sam_encoder():
    init_default_scope('mmseg')
    model = MODELS.build(
        dict(
            type='EncoderDecoder',
            data_preprocessor=dict(type='SegDataPreProcessor', size=(64, 64)),
            backbone=dict(
                type='mmpretrain.ViTSAM',
                arch=dict(
                    embed_dims=32,
                    num_layers=2,
                    num_heads=2,
                    feedforward_channels=64,
                    global_attn_indexes=[1]),
                img_size=64,
                window_size=2,
                out_channels=16),
            decode_head=dict(
                type='DFAHead',
                in_channels=16,
                channels=16,
                num_classes=5,
                num_heads=2,
                feedforward_channels=32,
                class_freq=FREQ,
                loss_decode=[dict(type='SegFocalLoss'),
                             dict(type='SegDiceLoss')])))
    # SAM's encoder already has the decoder width: no input projection
    assert isinstance(model.decode_head.input_proj, torch.nn.Identity)
    feats = model.extract_feat(torch.randn(1, 3, 64, 64))
    assert isinstance(feats, tuple) and feats[0].shape == (1, 16, 4, 4)
    assert model.decode_head(feats).shape == (1, 5, 16, 16)


def test_resume_restores_delta_and_hook_logs_bias(tmp_path):
    from mmimb.cli.train import main as train
    work = tmp_path / 'work'
    train([str(TINY), '--work-dir', str(work)])
    ckpt = torch.load(work / 'iter_4.pth', map_location='cpu',
                      weights_only=False)
    saved = ckpt['state_dict']['decode_head.class_bias.dfa_delta']
    # the hook logged the bias the checkpoint holds, per class
    scalars = sorted(work.glob('*/vis_data/scalars.json'))[0]
    logged = [json.loads(line) for line in scalars.read_text().splitlines()]
    names = ('stroma', 'tumor', 'lymphocytes', 'necrosis', 'fat')
    last = [row for row in logged if 'dfa_bias/stroma' in row][-1]
    assert [last[f'dfa_bias/{n}'] for n in names] == pytest.approx(
        saved[0].tolist(), abs=1e-5)

    _, fresh = tiny_model()
    assert not torch.equal(saved, fresh.decode_head.class_bias.delta)

    from mmimb.cli.train import parse_args
    from mmimb.engine import build_runner, load_config
    args = parse_args([str(TINY), '--work-dir', str(tmp_path / 'resumed')])
    cfg = load_config(str(TINY), args)
    cfg.resume, cfg.load_from = True, str(work / 'iter_4.pth')
    runner = build_runner(cfg, 'train')
    runner.train()  # resumes at iteration 4 of 4: loads, trains nothing
    assert torch.equal(runner.model.decode_head.class_bias.delta.detach(),
                       saved)
    group = [g for g in runner.optim_wrapper.optimizer.param_groups
             if any(p is runner.model.decode_head.class_bias.delta
                    for p in g['params'])][0]
    assert group['weight_decay'] == 0

