"""A randomly initialised state dict in the official Segment Anything
layout (names and shapes written out from SAM's image_encoder.py,
transformer.py, mask_decoder.py and prompt_encoder.py), at a tiny size."""
import torch

E, DEPTH, MLP, OUT, PATCH, IMG, WIN = 32, 2, 64, 16, 16, 64, 2
HEADS, GLOBAL = 2, (1, )
D, DEC_MLP = 16, 32  # decoder width (= OUT) and its MLP width
IOU_HIDDEN = 24  # hidden width of the IoU head (SAM: 256)


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
            p = f'mask_decoder.output_hypernetworks_mlps.{i}.layers.{j}'
            add(p + '.weight', o, n)
            add(p + '.bias', o)
    for j, (o, n) in enumerate([(IOU_HIDDEN, D), (IOU_HIDDEN, IOU_HIDDEN),
                                (4, IOU_HIDDEN)]):
        add(f'mask_decoder.iou_prediction_head.layers.{j}.weight', o, n)
        add(f'mask_decoder.iou_prediction_head.layers.{j}.bias', o)
    add('prompt_encoder.pe_layer.positional_encoding_gaussian_matrix', 2,
        D // 2)
    add('prompt_encoder.no_mask_embed.weight', 1, D)
    return sd
