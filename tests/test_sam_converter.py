"""tools/model_converters/sam2mmpretrain.py on a randomly initialised state
dict in the official Segment Anything layout (tests/sam_fixtures.py)."""
import pytest
import torch
from mmengine.registry import init_default_scope
from mmpretrain.models import ViTSAM

from mmimb.models import DFAHead
from tools.model_converters.sam2mmpretrain import (ConversionError,
                                                   convert_sam, main)


def tiny_vit_sam(s):
    return ViTSAM(
        arch=dict(embed_dims=s.E, num_layers=s.DEPTH, num_heads=s.HEADS,
                  feedforward_channels=s.MLP,
                  global_attn_indexes=list(s.GLOBAL)),
        img_size=s.IMG, patch_size=s.PATCH, window_size=s.WIN,
        out_channels=s.OUT)


def assert_copied(state, sam, pairs):
    """Each converted key of ``pairs`` holds the official SAM tensor it
    names."""
    for ours, theirs in pairs.items():
        assert torch.equal(state[ours], sam[theirs]), ours


def test_encoder_loads_strictly_into_vit_sam(sam_fixtures):
    sam = sam_fixtures.official_sam_state_dict()
    converted = convert_sam(sam, with_decoder=False)
    assert all(k.startswith('backbone.') for k in converted)
    backbone = tiny_vit_sam(sam_fixtures)
    state = {k[len('backbone.'):]: v for k, v in converted.items()}
    backbone.load_state_dict(state, strict=True)
    assert_copied(backbone.state_dict(), sam, {
        'layers.1.ffn.layers.0.0.weight':
        'image_encoder.blocks.1.mlp.lin1.weight',
        'layers.0.ffn.layers.1.bias': 'image_encoder.blocks.0.mlp.lin2.bias',
        'channel_reduction.2.weight': 'image_encoder.neck.2.weight',
        'patch_embed.projection.weight':
        'image_encoder.patch_embed.proj.weight',
        'layers.1.attn.rel_pos_w': 'image_encoder.blocks.1.attn.rel_pos_w',
    })


def converted_head_state(s):
    converted = convert_sam(s.official_sam_state_dict(), with_decoder=True)
    return {
        k[len('decode_head.'):]: v
        for k, v in converted.items() if k.startswith('decode_head.')
    }


def tiny_head(s, **kwargs):
    init_default_scope('mmseg')
    return DFAHead(in_channels=s.OUT, channels=s.D, num_classes=3,
                   num_heads=2, feedforward_channels=s.DEC_MLP,
                   class_freq=[.5, .3, .2], **kwargs)


def test_decoder_parts_load_into_dfa_head(sam_fixtures):
    s = sam_fixtures
    sam = s.official_sam_state_dict()
    head = tiny_head(s)
    result = head.load_state_dict(converted_head_state(s), strict=False)
    # SAM-Path's layout parts, which the 'class' layout does not have
    assert sorted(result.unexpected_keys) == sorted(
        ['no_mask_embed', 'iou_token.weight'] + [
            f'iou_prediction_head.layers.{j}.{n}' for j in (0, 1)
            for n in ('weight', 'bias')
        ])
    # only what SAM has no counterpart for stays at its initialisation
    missing = {k.split('.')[0] for k in result.missing_keys}
    assert missing == {'class_tokens', 'class_bias'}
    state = head.state_dict()
    assert torch.equal(
        state['layers.1.cross_attn_image_to_token.k_proj.weight'],
        sam['mask_decoder.transformer.layers.1.cross_attn_image_to_token'
            '.k_proj.weight'])
    assert torch.equal(
        state['pe_layer.positional_encoding_gaussian_matrix'],
        sam['prompt_encoder.pe_layer.positional_encoding_gaussian_matrix'])
    # every class's hypernetwork MLP is a copy of SAM's first one
    for j in range(3):
        first = sam[f'mask_decoder.output_hypernetworks_mlps.0.layers.{j}'
                    '.weight']
        assert all(torch.equal(w, first) for w in
                   state[f'output_hypernetworks_mlps.layers.{j}.weight'])


def test_sam_layout_loads_every_converted_part(sam_fixtures):
    s = sam_fixtures
    sam = s.official_sam_state_dict()
    head = tiny_head(s, token_layout='sam', no_mask_embed=True,
                     iou_head_channels=s.IOU_HIDDEN)
    result = head.load_state_dict(converted_head_state(s), strict=False)
    assert result.unexpected_keys == []
    # SAM's mask tokens and last IoU layer are sized for SAM's 4 masks
    assert sorted(result.missing_keys) == [
        'class_bias.dfa_delta', 'iou_prediction_head.layers.2.bias',
        'iou_prediction_head.layers.2.weight', 'mask_tokens.weight'
    ]
    assert_copied(head.state_dict(), sam, {
        'no_mask_embed': 'prompt_encoder.no_mask_embed.weight',
        'iou_token.weight': 'mask_decoder.iou_token.weight',
        'iou_prediction_head.layers.1.bias':
        'mask_decoder.iou_prediction_head.layers.1.bias',
    })


def test_saved_per_class_mlps_load_unchanged(sam_fixtures):
    """A checkpoint of a trained head keeps its per-class MLPs (only a
    single SAM MLP is copied into every class)."""
    s = sam_fixtures
    trained = tiny_head(s)
    fresh = tiny_head(s)
    fresh.load_state_dict(trained.state_dict(), strict=True)
    for key, value in trained.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key


def test_cli_writes_checkpoint_and_refuses_bad_input(tmp_path, capsys,
                                                     sam_fixtures):
    sam = sam_fixtures.official_sam_state_dict()
    src, dst = tmp_path / 'sam.pth', tmp_path / 'out' / 'sam_mm.pth'
    torch.save(sam, src)
    main([str(src), str(dst)])
    saved = torch.load(dst, weights_only=True)['state_dict']
    assert saved.keys() == convert_sam(sam).keys()
    assert 'wrote' in capsys.readouterr().out
    with pytest.raises(ConversionError, match='converted already'):
        main([str(dst), str(tmp_path / 'again.pth')])
    with pytest.raises(ConversionError, match='does not exist'):
        main([str(tmp_path / 'missing.pth'), str(tmp_path / 'x.pth')])
    sam['image_encoder.blocks.0.attn.extra'] = torch.zeros(1)
    with pytest.raises(ConversionError, match='unknown SAM image-encoder'):
        convert_sam(sam)


def test_cli_writes_the_decoder_unless_encoder_only(tmp_path, sam_fixtures):
    sam = sam_fixtures.official_sam_state_dict()
    src = tmp_path / 'sam.pth'
    torch.save(sam, src)
    main([str(src), str(tmp_path / 'full.pth')])
    main([str(src), str(tmp_path / 'enc.pth'), '--encoder-only'])
    full = torch.load(tmp_path / 'full.pth', weights_only=True)['state_dict']
    enc = torch.load(tmp_path / 'enc.pth', weights_only=True)['state_dict']
    assert torch.equal(
        full['decode_head.layers.0.self_attn.q_proj.weight'],
        sam['mask_decoder.transformer.layers.0.self_attn.q_proj.weight'])
    assert {k.split('.')[0] for k in full} == {'backbone', 'decode_head'}
    assert {k.split('.')[0] for k in enc} == {'backbone'}
    assert enc.keys() < full.keys()


def test_dfa_head_loads_decoder_or_says_how_to_get_one(tmp_path,
                                                       sam_fixtures):
    s = sam_fixtures
    sam = s.official_sam_state_dict()
    init_default_scope('mmseg')
    heads = {}
    for name, with_decoder in (('full', True), ('enc', False)):
        path = tmp_path / f'{name}.pth'
        torch.save(dict(state_dict=convert_sam(sam, with_decoder)), path)
        heads[name] = DFAHead(
            in_channels=s.OUT, channels=s.D, num_classes=3, num_heads=2,
            feedforward_channels=s.DEC_MLP, class_freq=[.5, .3, .2],
            init_cfg=dict(type='Pretrained', checkpoint=str(path),
                          prefix='decode_head.'))
    heads['full'].init_weights()
    assert torch.equal(
        heads['full'].state_dict()['output_upscaling.0.weight'],
        sam['mask_decoder.output_upscaling.0.weight'])
    path = str(tmp_path / 'enc.pth')
    with pytest.raises(ValueError) as error:
        heads['enc'].init_weights()
    message = str(error.value)
    for part in (repr(path), 'sam2mmpretrain.py',
                 'model.decode_head.init_cfg=None'):
        assert part in message
