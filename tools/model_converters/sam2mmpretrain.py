"""Convert an official Segment Anything checkpoint for mmimb's DFA configs.

    python tools/model_converters/sam2mmpretrain.py sam_vit_b_01ec64.pth \
        checkpoints/sam_vit-b_mmpretrain.pth [--encoder-only]

The image encoder becomes mmpretrain's ``ViTSAM`` under ``backbone.`` (the key
layout of mmpretrain's own converted SAM weights), loaded by
``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')``.
The parts of SAM's mask decoder and prompt encoder that DFAHead shares are
written under ``decode_head.``, which the DFA configs load with
``model.decode_head.init_cfg=dict(type='Pretrained', checkpoint=...,
prefix='decode_head.')``: the two-way transformer, its final attention and
norm, the mask upscaling, the image positional encoding, the no-mask dense
embedding, the IoU token, the first two layers of the IoU head, and the
first hypernetwork MLP, which DFAHead copies into every mask's MLP (as
SAM-Path does). ``--encoder-only`` leaves them out (the layout of
mmpretrain's released file). SAM's mask tokens, its other hypernetwork MLPs,
the last IoU-head layer (one output per SAM mask) and the point and mask
prompt embeddings have no counterpart and are left out; DFAHead's class
tokens, the last IoU-head layer and the DFA bias start from their own
initialisation.
"""
import argparse
import os
import os.path as osp
import re
import sys
from typing import Dict, List, Tuple

import torch

ENCODER_RULES: List[Tuple[str, str]] = [
    (r'^image_encoder\.pos_embed$', 'backbone.pos_embed'),
    (r'^image_encoder\.patch_embed\.proj\.(weight|bias)$',
     r'backbone.patch_embed.projection.\1'),
    (r'^image_encoder\.blocks\.(\d+)\.norm1\.(weight|bias)$',
     r'backbone.layers.\1.ln1.\2'),
    (r'^image_encoder\.blocks\.(\d+)\.norm2\.(weight|bias)$',
     r'backbone.layers.\1.ln2.\2'),
    (r'^image_encoder\.blocks\.(\d+)\.attn\.(qkv|proj)\.(weight|bias)$',
     r'backbone.layers.\1.attn.\2.\3'),
    (r'^image_encoder\.blocks\.(\d+)\.attn\.(rel_pos_h|rel_pos_w)$',
     r'backbone.layers.\1.attn.\2'),
    (r'^image_encoder\.blocks\.(\d+)\.mlp\.lin1\.(weight|bias)$',
     r'backbone.layers.\1.ffn.layers.0.0.\2'),
    (r'^image_encoder\.blocks\.(\d+)\.mlp\.lin2\.(weight|bias)$',
     r'backbone.layers.\1.ffn.layers.1.\2'),
    (r'^image_encoder\.neck\.([0-3])\.(weight|bias)$',
     r'backbone.channel_reduction.\1.\2'),
]
DECODER_RULES: List[Tuple[str, str]] = [
    (r'^mask_decoder\.transformer\.layers\.(\d+)\.(.+)$',
     r'decode_head.layers.\1.\2'),
    (r'^mask_decoder\.transformer\.(final_attn_token_to_image|'
     r'norm_final_attn)\.(.+)$', r'decode_head.\1.\2'),
    (r'^mask_decoder\.output_upscaling\.([013])\.(weight|bias)$',
     r'decode_head.output_upscaling.\1.\2'),
    (r'^prompt_encoder\.pe_layer\.positional_encoding_gaussian_matrix$',
     'decode_head.pe_layer.positional_encoding_gaussian_matrix'),
    (r'^prompt_encoder\.no_mask_embed\.weight$', 'decode_head.no_mask_embed'),
    (r'^mask_decoder\.iou_token\.weight$', 'decode_head.iou_token.weight'),
    (r'^mask_decoder\.iou_prediction_head\.layers\.([01])\.(weight|bias)$',
     r'decode_head.iou_prediction_head.layers.\1.\2'),
    # One MLP, which DFAHead's per-class MLPs copy on loading.
    (r'^mask_decoder\.output_hypernetworks_mlps\.0\.layers\.(\d+)\.'
     r'(weight|bias)$', r'decode_head.output_hypernetworks_mlps.layers.\1.\2'),
]


class ConversionError(ValueError):
    """The input is not an official SAM checkpoint."""


def _apply(rules: List[Tuple[str, str]], key: str):
    for pattern, target in rules:
        if re.match(pattern, key):
            return re.sub(pattern, target, key)
    return None


def convert_sam(state_dict: Dict[str, torch.Tensor],
                with_decoder: bool = True) -> Dict[str, torch.Tensor]:
    """Rename an official SAM state dict to mmimb's keys.

    Args:
        state_dict: SAM's ``sam_vit_*.pth`` content (``image_encoder.*``,
            ``prompt_encoder.*``, ``mask_decoder.*``).
        with_decoder: Also convert the mask-decoder parts DFAHead shares
            (the DFA configs load them).

    Returns:
        dict: ``backbone.*`` (and ``decode_head.*``) tensors.

    Raises:
        ConversionError: If there is no image encoder, or an image-encoder
            key has no counterpart (a layout this converter does not know).
    """
    encoder = [k for k in state_dict if k.startswith('image_encoder.')]
    if not encoder:
        already = any(k.startswith('backbone.') for k in state_dict)
        raise ConversionError(
            'no image_encoder.* keys: this is not an official SAM checkpoint'
            + (' (its backbone.* keys look converted already; use it as is)'
               if already else ''))
    converted = {}
    for key in encoder:
        new = _apply(ENCODER_RULES, key)
        if new is None:
            raise ConversionError(f'unknown SAM image-encoder key {key!r}')
        converted[new] = state_dict[key]
    if with_decoder:
        for key, value in state_dict.items():
            new = _apply(DECODER_RULES, key)
            if new is not None:
                converted[new] = value
    return converted


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert an official SAM checkpoint to mmpretrain ViTSAM '
        '(and DFAHead) keys')
    parser.add_argument('src', help='official checkpoint, e.g. '
                        'sam_vit_b_01ec64.pth')
    parser.add_argument('dst', help='output .pth file')
    parser.add_argument(
        '--encoder-only',
        action='store_true',
        help='leave out the mask-decoder parts DFAHead shares (then train '
        'with model.decode_head.init_cfg=None)')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if not osp.isfile(args.src):
        raise ConversionError(
            f'{args.src!r} does not exist; download it from https://dl.'
            'fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth')
    checkpoint = torch.load(args.src, map_location='cpu', weights_only=True)
    state_dict = checkpoint.get('state_dict', checkpoint) if isinstance(
        checkpoint, dict) else None
    if not isinstance(state_dict, dict):
        raise ConversionError(f'{args.src!r} holds no state dict')
    converted = convert_sam(state_dict, with_decoder=not args.encoder_only)
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    temp = osp.join(
        osp.dirname(osp.abspath(args.dst)), f'.{osp.basename(args.dst)}.part')
    try:
        torch.save(
            dict(state_dict=converted,
                 meta=dict(converted_from=osp.basename(args.src))), temp)
        os.replace(temp, args.dst)
    finally:
        if osp.exists(temp):
            os.remove(temp)
    parts = sorted({k.split('.')[0] for k in converted})
    print(f'wrote {len(converted)} tensors ({", ".join(parts)}) to '
          f'{args.dst}')


if __name__ == '__main__':
    try:
        main()
    except ConversionError as e:
        print(f'error: {e}', file=sys.stderr)
        sys.exit(2)
