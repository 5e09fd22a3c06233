"""tools/model_converters/sam2mmpretrain.py on a randomly initialised state
dict in the official Segment Anything layout (names and shapes written out
from SAM's image_encoder.py, transformer.py, mask_decoder.py and
prompt_encoder.py), at a tiny size."""
import pytest
import torch
from mmengine.registry import init_default_scope
from mmpretrain.models import ViTSAM

from mmimb.models import DFAHead
from tools.model_converters.sam2mmpretrain import (ConversionError,
                                                   convert_sam, main)

E, DEPTH, MLP, OUT, PATCH, IMG, WIN = 32, 2, 64, 16, 16, 64, 2
HEADS, GLOBAL = 2, (1, )
D, DEC_MLP = 16, 32  # decoder width (= OUT) and its MLP width


def official_sam_state_dict(seed=0):
    g = torch.Generator().manual_seed(seed)
    sd = {}

    def add(name, *shape):
        sd[name] = torch.randn(*shape, generator=g)

    grid = IMG // PATCH
    add('image_encoder.pos_embed', 1, grid, grid, E)
    add('image_encoder.patch_embed.proj.weight', E, 3, PATCH, PATCH)
    add('image_encoder.patch_embed.proj.bias', E)
    for i in range(DEPTH):
        p = f'image_encoder.blocks.{i}.'
        size = grid if i in GLOBAL else WIN
        for norm in ('norm1', 'norm2'):
            add(p + norm + '.weight', E)
            add(p + norm + '.bias', E)
        add(p + 'attn.qkv.weight', 3 * E, E)
        add(p + 'attn.qkv.bias', 3 * E)
        add(p + 'attn.proj.weight', E, E)
        add(p + 'attn.proj.bias', E)
        add(p + 'attn.rel_pos_h', 2 * size - 1, E // HEADS)
        add(p + 'attn.rel_pos_w', 2 * size - 1, E // HEADS)
        add(p + 'mlp.lin1.weight', MLP, E)
        add(p + 'mlp.lin1.bias', MLP)
        add(p + 'mlp.lin2.weight', E, MLP)
        add(p + 'mlp.lin2.bias', E)
    add('image_encoder.neck.0.weight', OUT, E, 1, 1)
    add('image_encoder.neck.1.weight', OUT)
    add('image_encoder.neck.1.bias', OUT)
    add('image_encoder.neck.2.weight', OUT, OUT, 3, 3)
    add('image_encoder.neck.3.weight', OUT)
    add('image_encoder.neck.3.bias', OUT)

    def attention(prefix, internal):
        for proj in ('q_proj', 'k_proj', 'v_proj'):
            add(f'{prefix}.{proj}.weight', internal, D)
            add(f'{prefix}.{proj}.bias', internal)
        add(f'{prefix}.out_proj.weight', D, internal)
        add(f'{prefix}.out_proj.bias', D)

    t = 'mask_decoder.transformer.'
    for i in range(2):
        p = f'{t}layers.{i}.'
        attention(p + 'self_attn', D)
        attention(p + 'cross_attn_token_to_image', D // 2)
        attention(p + 'cross_attn_image_to_token', D // 2)
        for n in range(1, 5):
            add(f'{p}norm{n}.weight', D)
            add(f'{p}norm{n}.bias', D)
        add(p + 'mlp.lin1.weight', DEC_MLP, D)
        add(p + 'mlp.lin1.bias', DEC_MLP)
        add(p + 'mlp.lin2.weight', D, DEC_MLP)
        add(p + 'mlp.lin2.bias', D)
    attention(t + 'final_attn_token_to_image', D // 2)
    add(t + 'norm_final_attn.weight', D)
    add(t + 'norm_final_attn.bias', D)
    add('mask_decoder.iou_token.weight', 1, D)
    add('mask_decoder.mask_tokens.weight', 4, D)
    add('mask_decoder.output_upscaling.0.weight', D, D // 4, 2, 2)
    add('mask_decoder.output_upscaling.0.bias', D // 4)
    add('mask_decoder.output_upscaling.1.weight', D // 4)
    add('mask_decoder.output_upscaling.1.bias', D // 4)
    add('mask_decoder.output_upscaling.3.weight', D // 4, D // 8, 2, 2)
    add('mask_decoder.output_upscaling.3.bias', D // 8)
    for i in range(4):
        for j, (o, n) in enumerate([(D, D), (D, D), (D // 8, D)]):
            add(f'mask_decoder.output_hypernetworks_mlps.{i}.layers.{j}'
                '.weight', o, n)
    add('prompt_encoder.pe_layer.positional_encoding_gaussian_matrix', 2,
        D // 2)
    add('prompt_encoder.no_mask_embed.weight', 1, D)
    return sd


def tiny_vit_sam():
    return ViTSAM(
        arch=dict(embed_dims=E, num_layers=DEPTH, num_heads=HEADS,
                  feedforward_channels=MLP, global_attn_indexes=list(GLOBAL)),
        img_size=IMG, patch_size=PATCH, window_size=WIN, out_channels=OUT)


def test_encoder_loads_strictly_into_vit_sam():
    sam = official_sam_state_dict()
    converted = convert_sam(sam)
    assert all(k.startswith('backbone.') for k in converted)
    backbone = tiny_vit_sam()
    state = {k[len('backbone.'):]: v for k, v in converted.items()}
    backbone.load_state_dict(state, strict=True)
    loaded = backbone.state_dict()
    assert torch.equal(loaded['layers.1.ffn.layers.0.0.weight'],
                       sam['image_encoder.blocks.1.mlp.lin1.weight'])
    assert torch.equal(loaded['layers.0.ffn.layers.1.bias'],
                       sam['image_encoder.blocks.0.mlp.lin2.bias'])
    assert torch.equal(loaded['channel_reduction.2.weight'],
                       sam['image_encoder.neck.2.weight'])
    assert torch.equal(loaded['patch_embed.projection.weight'],
                       sam['image_encoder.patch_embed.proj.weight'])
    assert torch.equal(loaded['layers.1.attn.rel_pos_w'],
                       sam['image_encoder.blocks.1.attn.rel_pos_w'])


def test_decoder_parts_load_into_dfa_head():
    sam = official_sam_state_dict()
    converted = convert_sam(sam, with_decoder=True)
    head_state = {
        k[len('decode_head.'):]: v
        for k, v in converted.items() if k.startswith('decode_head.')
    }
    init_default_scope('mmseg')
    head = DFAHead(in_channels=OUT, channels=D, num_classes=3, num_heads=2,
                   feedforward_channels=DEC_MLP, class_freq=[.5, .3, .2])
    result = head.load_state_dict(head_state, strict=False)
    assert result.unexpected_keys == []
    # only what SAM has no counterpart for stays at its initialisation
    missing = {k.split('.')[0] for k in result.missing_keys}
    assert missing == {'class_tokens', 'class_bias',
                       'output_hypernetworks_mlps'}
    state = head.state_dict()
    assert torch.equal(
        state['layers.1.cross_attn_image_to_token.k_proj.weight'],
        sam['mask_decoder.transformer.layers.1.cross_attn_image_to_token'
            '.k_proj.weight'])
    assert torch.equal(
        state['pe_layer.positional_encoding_gaussian_matrix'],
        sam['prompt_encoder.pe_layer.positional_encoding_gaussian_matrix'])


def test_cli_writes_checkpoint_and_refuses_bad_input(tmp_path, capsys):
    src, dst = tmp_path / 'sam.pth', tmp_path / 'out' / 'sam_mm.pth'
    torch.save(official_sam_state_dict(), src)
    main([str(src), str(dst)])
    saved = torch.load(dst, weights_only=True)['state_dict']
    assert len(saved) == len(convert_sam(official_sam_state_dict()))
    assert 'wrote' in capsys.readouterr().out
    with pytest.raises(ConversionError, match='converted already'):
        main([str(dst), str(tmp_path / 'again.pth')])
    with pytest.raises(ConversionError, match='does not exist'):
        main([str(tmp_path / 'missing.pth'), str(tmp_path / 'x.pth')])
    bad = official_sam_state_dict()
    bad['image_encoder.blocks.0.attn.extra'] = torch.zeros(1)
    with pytest.raises(ConversionError, match='unknown SAM image-encoder'):
        convert_sam(bad)
