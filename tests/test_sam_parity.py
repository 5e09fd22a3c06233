"""The DFA configs' SAM is SAM: the official ``segment-anything`` package
builds a SAM with random weights, its state dict goes through
``tools/model_converters/sam2mmpretrain.py`` into ``configs/dfa_bcss.py``
(bias ``none``), and the image encoder, positional encoding, two-way
transformer, mask upscaling and whole mask decoder are compared with SAM's
own modules. A reduced ViT runs in the default suite; the full ViT-B at
1024 px (about 70 s per forward on 2 cores) is marked slow."""
from functools import partial

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

from tools.model_converters.sam2mmpretrain import main as convert

segment_anything = pytest.importorskip('segment_anything')
from segment_anything.modeling import (ImageEncoderViT,  # noqa: E402
                                       MaskDecoder, PromptEncoder, Sam,
                                       TwoWayTransformer)

TOLERANCE = 1e-5
REDUCED = dict(embed_dims=64, num_layers=2, num_heads=2, global_attn=[1],
               img_size=128, window_size=4)


def rel_diff(ours, sam):
    return ((ours - sam).norm() / sam.norm()).item()


def randomise(sam):
    """Perturb every parameter: SAM initialises position embeddings and
    relative positions to 0 and norms to 1, which would hide mistakes in
    loading them."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in sam.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return sam.eval()


def reduced_sam():
    r = REDUCED
    grid = r['img_size'] // 16
    torch.manual_seed(0)
    return randomise(Sam(
        image_encoder=ImageEncoderViT(
            depth=r['num_layers'], embed_dim=r['embed_dims'],
            img_size=r['img_size'], mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            num_heads=r['num_heads'], patch_size=16, qkv_bias=True,
            use_rel_pos=True, global_attn_indexes=r['global_attn'],
            window_size=r['window_size'], out_chans=256),
        prompt_encoder=PromptEncoder(
            embed_dim=256, image_embedding_size=(grid, grid),
            input_image_size=(r['img_size'], r['img_size']),
            mask_in_chans=16),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(
                depth=2, embedding_dim=256, mlp_dim=2048, num_heads=8),
            transformer_dim=256, iou_head_depth=3, iou_head_hidden_dim=256),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375]))


def dfa_bcss_model(checkpoint, reduced=True):
    """configs/dfa_bcss.py with bias none, initialised from ``checkpoint``;
    with ``reduced`` the ViT of :data:`REDUCED`."""
    init_default_scope('mmseg')
    cfg = Config.fromfile('configs/dfa_bcss.py')
    model = cfg.model
    model.decode_head.update(bias_mode='none', class_freq=None)
    model.backbone.init_cfg.checkpoint = str(checkpoint)
    model.decode_head.init_cfg.checkpoint = str(checkpoint)
    if reduced:
        r = REDUCED
        model.backbone.arch = dict(
            embed_dims=r['embed_dims'], num_layers=r['num_layers'],
            num_heads=r['num_heads'],
            feedforward_channels=4 * r['embed_dims'],
            global_attn_indexes=r['global_attn'])
        model.backbone.update(img_size=r['img_size'],
                              window_size=r['window_size'])
    built = MODELS.build(model)
    built.init_weights()
    return built.eval()


def converted(sam, tmp_path):
    src, dst = tmp_path / 'sam.pth', tmp_path / 'sam_mmimb.pth'
    torch.save(sam.state_dict(), src)
    convert([str(src), str(dst)])
    return dst


@pytest.fixture(scope='module')
def reduced_pair(tmp_path_factory):
    sam = reduced_sam()
    return sam, dfa_bcss_model(converted(sam, tmp_path_factory.mktemp('sam')))


def compare_with_sam(sam, model, size):
    """Relative differences of each part, on one random image."""
    image = torch.randn(1, 3, size, size,
                        generator=torch.Generator().manual_seed(1))
    head = model.decode_head
    diffs = {}
    with torch.no_grad():
        sam_emb = sam.image_encoder(image)
        emb = model.extract_feat(image)[0]
        diffs['image encoder'] = rel_diff(emb, sam_emb)

        grid = sam_emb.shape[-2:]
        sam_pe = sam.prompt_encoder.get_dense_pe()
        diffs['positional encoding'] = rel_diff(head.pe_layer(grid)[None],
                                                sam_pe)
        # an oblong grid tells the axes apart
        diffs['positional encoding 3x5'] = rel_diff(
            head.pe_layer((3, 5)), sam.prompt_encoder.pe_layer((3, 5)))

        sparse, dense = sam.prompt_encoder(points=None, boxes=None,
                                           masks=None)
        diffs['no-mask embedding'] = rel_diff(
            head.no_mask_embed[..., None, None].expand_as(dense), dense)
        src = sam_emb + dense
        dec = sam.mask_decoder
        # the head's IoU token (SAM's) and its 5 + 2 mask tokens
        tokens = head.output_tokens()[None]
        sam_q, sam_k = dec.transformer(src, sam_pe, tokens)
        q, k = head.transformer(src, sam_pe, tokens)
        diffs['transformer tokens'] = rel_diff(q, sam_q)
        diffs['transformer image tokens'] = rel_diff(k, sam_k)

        upscaled_in = sam_k.transpose(1, 2).reshape(src.shape)
        diffs['mask upscaling'] = rel_diff(
            head.output_upscaling(upscaled_in),
            dec.output_upscaling(upscaled_in))
    return diffs


def test_reduced_sam_parts_equal_sam(reduced_pair):
    sam, model = reduced_pair
    assert type(model).__name__ == 'FrozenBackboneEncoderDecoder'
    diffs = compare_with_sam(sam, model, REDUCED['img_size'])
    assert max(diffs.values()) <= TOLERANCE, diffs


def test_sam_layout_decoder_equals_sams_mask_decoder(reduced_pair):
    """With 2 classes the 'sam' layout has SAM's 4 mask tokens; given SAM's
    own tokens and per-token MLPs, the whole head is SAM's mask decoder:
    its C + 1 masks are SAM's multimask output, its IoU predictions SAM's
    last two."""
    sam, model = reduced_pair
    cfg = Config.fromfile('configs/dfa_bcss.py').model.decode_head
    cfg.update(num_classes=2, bias_mode='none', class_freq=None,
               init_cfg=None)
    head = MODELS.build(cfg).eval()
    dec = sam.mask_decoder
    state = {k: v for k, v in model.decode_head.state_dict().items()
             if not k.startswith(('mask_tokens', 'output_hyper',
                                  'iou_prediction_head.layers.2'))}
    state['mask_tokens.weight'] = dec.mask_tokens.weight
    for j in range(3):
        for name in ('weight', 'bias'):
            state[f'output_hypernetworks_mlps.layers.{j}.{name}'] = \
                torch.stack([
                    getattr(dec.output_hypernetworks_mlps[i].layers[j], name)
                    for i in range(1, 4)
                ])
    last = dec.iou_prediction_head.layers[2]
    state['iou_prediction_head.layers.2.weight'] = last.weight[2:]
    state['iou_prediction_head.layers.2.bias'] = last.bias[2:]
    head.load_state_dict(state, strict=True)

    image = torch.randn(2, 3, 128, 128,
                        generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        emb = sam.image_encoder(image)
        sparse, dense = sam.prompt_encoder(None, None, None)
        # SAM decodes one image at a time (as SAM-Path calls it)
        sam_masks, sam_iou = map(torch.cat, zip(*[
            dec(e[None], sam.prompt_encoder.get_dense_pe(), sparse, dense,
                True) for e in emb
        ]))
        masks, iou = head.predict_masks([emb])
    assert rel_diff(masks, sam_masks) <= TOLERANCE
    assert rel_diff(iou, sam_iou[:, 1:]) <= TOLERANCE
    assert torch.equal(head([emb]), masks[:, 1:])


def test_converted_hypernetwork_mlp_is_copied_into_every_class(reduced_pair):
    sam, model = reduced_pair
    first = sam.mask_decoder.output_hypernetworks_mlps[0].layers[2]
    ours = model.decode_head.output_hypernetworks_mlps.layers[2]
    assert ours.weight.shape[0] == 6  # the ignored class and 5 classes
    for c in range(6):
        assert torch.equal(ours.weight[c], first.weight)
        assert torch.equal(ours.bias[c], first.bias)
    assert torch.equal(model.decode_head.iou_token.weight,
                       sam.mask_decoder.iou_token.weight)


@pytest.mark.slow
def test_full_size_vit_b_equals_sam(tmp_path):
    sam = randomise(segment_anything.sam_model_registry['vit_b'](
        checkpoint=None))
    model = dfa_bcss_model(converted(sam, tmp_path), reduced=False)
    diffs = compare_with_sam(sam, model, 1024)
    assert max(diffs.values()) <= TOLERANCE, diffs
