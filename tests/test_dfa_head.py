"""DFAHead and DFATransformerDecoderLayer: shapes, bias sharing, the delta
parameter group, end-to-end training, resume, autocast, SAM's encoder."""
import json
import re
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, MODELS

import mmimb  # noqa: F401
from mmimb.engine.hooks import DFABiasLoggerHook
from mmimb.models import DFAHead
from mmimb.utils import ConfigError

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


@pytest.mark.parametrize('shipped', [
    'dfa/dfa_mit-b0_1xb8-300it_synthetic-tissue-crossed-128x128.py',
    'dfa_bcss.py'
])
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


SAM_LAYOUT = dict(token_layout='sam', iou_head_channels=16,
                  loss_decode=dict(type='SAMPathLoss'))


# SAM-Path's loss (Dice 0.75 + focal 0.25) falls more slowly at the start
@pytest.mark.parametrize('layout, fall', [({}, 0.85), (SAM_LAYOUT, 0.95)],
                         ids=['class', 'sam'])
def test_head_trains_end_to_end_and_loss_falls(layout, fall):
    cfg, model = tiny_model(**layout)
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
    assert sum(losses[-5:]) / 5 < fall * sum(losses[:5]) / 5, losses
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


def tiny_sam_segmentor(segmentor='EncoderDecoder'):
    init_default_scope('mmseg')
    return MODELS.build(
        dict(
            type=segmentor,
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


def test_head_on_mmpretrain_vit_sam_encoder():
    model = tiny_sam_segmentor()
    # SAM's encoder already has the decoder width: no input projection
    assert isinstance(model.decode_head.input_proj, torch.nn.Identity)
    feats = model.extract_feat(torch.randn(1, 3, 64, 64))
    assert isinstance(feats, tuple) and feats[0].shape == (1, 16, 4, 4)
    assert model.decode_head(feats).shape == (1, 5, 16, 16)


def test_frozen_backbone_has_no_gradient_and_stays_in_eval_mode():
    model = tiny_sam_segmentor('FrozenBackboneEncoderDecoder')
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert all(p.requires_grad for p in model.decode_head.parameters())
    model.train()
    assert not model.backbone.training and model.decode_head.training
    image = torch.randn(1, 3, 64, 64, requires_grad=True)
    # run under no_grad: nothing of the backbone is kept for backward
    assert model.extract_feat(image)[0].grad_fn is None
    wrapper = build_optim_wrapper(model, dict(
        constructor='GroupStepOptimWrapperConstructor',
        optimizer=dict(type='AdamW', lr=1e-4, weight_decay=1e-2),
        paramwise_cfg=dict(custom_keys={'dfa_delta': dict(lr_mult=20.0)})))
    optimised = {id(p) for g in wrapper.optimizer.param_groups
                 for p in g['params']}
    assert optimised == {id(p) for p in model.decode_head.parameters()}


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


def sam_head(**kwargs):
    return small_head(token_layout='sam', iou_head_channels=16, **kwargs)


def test_sam_layout_shapes():
    head = sam_head(no_mask_embed=True)
    x = [torch.randn(2, 12, 6, 7)]
    masks, iou = head.predict_masks(x)
    # the ignored class's mask first, then the 5 classes; IoU per class
    assert masks.shape == (2, 6, 24, 28) and iou.shape == (2, 5)
    assert torch.equal(head(x), masks[:, 1:])
    # SAM's IoU token, its single-mask token, the ignored class, 5 classes
    assert head.output_tokens().shape == (8, 16)
    assert head.no_mask_embed.shape == (1, 16)


def mask_of_each_token(head):
    """Which mask (index into predict_masks) each token makes, with the
    transformer replaced by the identity and the MLP biases zeroed."""
    head.transformer = lambda emb, pe, tokens: (
        tokens, emb.flatten(2).transpose(1, 2))
    found = {}
    with torch.no_grad():
        for layer in head.output_hypernetworks_mlps.layers:
            layer.bias.zero_()
        for t in range(head.output_tokens().shape[0]):
            weights = torch.zeros_like(head.output_tokens())
            weights[t] = torch.randn(weights.shape[1])
            head.iou_token.weight.copy_(weights[:1])
            head.mask_tokens.weight.copy_(weights[1:])
            masks, _ = head.predict_masks([torch.randn(1, 12, 3, 3)])
            made = masks.abs().flatten(2).amax(-1)[0].nonzero().flatten()
            if made.numel():
                found[t] = made.tolist()
    return found


@pytest.mark.parametrize('offset', [False, True])
@pytest.mark.parametrize('c', range(5))
def test_bias_c_acts_on_the_token_of_class_c(c, offset):
    """'sam' layout: bias entry c moves attention onto the token that makes
    class c's mask (forward channel c); with the reference offset onto the
    one that makes class c - 1's (the ignored class's for c = 0)."""
    prior = [0.0] * 5
    prior[c] = 60.0
    head = sam_head(bias_mode='fixed', prior=prior, class_freq=None,
                    reference_bias_offset=offset).eval()
    attn = head.layers[1].cross_attn_image_to_token
    _, probs = attn(torch.randn(2, 9, 16), torch.randn(2, 8, 16),
                    return_attn=True)
    key = probs.mean((0, 1, 2)).argmax().item()
    assert probs[..., key].min() > 1 - 1e-6
    made = mask_of_each_token(head)
    # tokens 0 (IoU) and 1 (SAM's single mask) make no mask
    assert made == {t: [t - 2] for t in range(2, 8)}
    # predict_masks index c + 1 is forward channel c (class c)
    assert made[key] == [c if offset else c + 1]


def test_head_follows_the_module_dtype():
    head = sam_head(no_mask_embed=True)
    x = torch.randn(1, 12, 5, 6)
    reference = head([x])
    out = head.double()([x.double()])
    assert out.dtype == torch.float64
    assert torch.allclose(out.float(), reference, atol=1e-5)


@pytest.mark.parametrize('kwargs, match', [
    (dict(token_layout='queries'), 'token_layout'),
    (dict(reference_bias_offset=True), "needs token_layout='sam'"),
    (dict(token_layout='sam', loss_decode=dict(type='SegFocalLoss')),
     'SAMPathLoss'),
    (dict(in_channels=[12, 12], in_index=[0, 1],
          input_transform='multiple_select'), "'resize_concat'"),
])
def test_bad_arguments_are_refused(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        small_head(**kwargs)


@pytest.mark.parametrize('sharing, keys', [
    ('shared', ['dfa_bias/tumor', 'dfa_bias_centred/tumor']),
    ('per_layer', ['dfa_bias/layers.0/tumor', 'dfa_bias_centred/layers.1/'
                   'tumor']),
    ('per_head', ['dfa_bias/head1/tumor', 'dfa_bias_centred/head0/tumor']),
])
def test_bias_logger_keys_are_the_documented_ones(sharing, keys):
    from types import SimpleNamespace

    from mmengine.logging import MessageHub, MMLogger
    _, model = tiny_model(bias_sharing=sharing)
    names = ['stroma', 'tumor', 'lymphocytes', 'necrosis', 'fat']
    runner = SimpleNamespace(
        model=model,
        train_dataloader=SimpleNamespace(
            dataset=SimpleNamespace(metainfo=dict(classes=names))),
        message_hub=MessageHub.get_instance(f'dfa_keys_{sharing}'),
        logger=MMLogger.get_current_instance())
    hook = DFABiasLoggerHook()
    hook.before_train(runner)
    hook.after_train_iter(runner, 0)
    logged = {k[len('train/'):]: v.current()
              for k, v in runner.message_hub.log_scalars.items()}
    for key in keys:
        assert key in logged, sorted(logged)
        group = re.sub(r'head\d+', 'head<h>', key.rsplit('/', 1)[0])
        documented = re.sub(r'layers\.\d+', 'layers.<i>', group) + '/<class>'
        assert documented in ' '.join(DFABiasLoggerHook.__doc__.split())
    # centred = raw - mean over classes, per layer and head
    for key in logged:
        if key.startswith('dfa_bias/'):
            group = key.rsplit('/', 1)[0]
            row = [logged[f'{group}/{n}'] for n in names]
            centred = logged[key.replace('dfa_bias/', 'dfa_bias_centred/')]
            assert centred == pytest.approx(
                logged[key] - sum(row) / len(row), abs=1e-6)


def test_sam_layout_without_iou_term_has_no_iou_head():
    """CRAG's recipe has no IoU term: no IoU head, so that no parameter
    goes without a gradient (which would stall DDP)."""
    head = sam_head(loss_decode=dict(type='SAMPathLoss', iou_weight=0.0))
    assert head.iou_prediction_head is None
    masks, iou = head.predict_masks([torch.randn(1, 12, 4, 4)])
    assert iou is None
    losses = head.loss_by_feat((masks, iou),
                               [_sample(torch.randint(0, 5, (16, 16)))])
    sum(v for k, v in losses.items() if k.startswith('loss')).backward()
    assert all(p.grad is not None for p in head.parameters())
