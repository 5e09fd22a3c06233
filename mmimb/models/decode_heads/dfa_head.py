"""The DFA mask decoder as an MMSegmentation decode head."""
from functools import partial
from typing import List, Optional, Sequence, Tuple, Union

import torch
from mmcv.cnn import build_activation_layer
from mmengine.runner import CheckpointLoader
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.utils import MLP, LayerNorm2d
from mmseg.registry import MODELS
from torch import Tensor, nn

from ..layers.class_wise_linear import ClassWiseLinear
from ..layers.dfa_attention import BIAS_SHARING
from ..layers.dfa_bias import DFABias
from ..layers.dfa_decoder_layer import DFATransformerDecoderLayer
from ..layers.dfa_prior import ArrayLike
from ..layers.position_encoding import RandomFourierPositionEncoding
from ..layers.sdpa_attention import SDPAttention


def check_decoder_checkpoint(checkpoint: str, prefix: str) -> None:
    """Check that ``checkpoint`` holds decoder weights under ``prefix``.

    Raises:
        ValueError: Naming the file and the prefixes it holds, and how to
            write a file with the decoder (or to train it from scratch).
    """
    # A second read of the file (PretrainedInit reads it again), about a
    # second for SAM ViT-B, for an error that says what to do.
    loaded = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
    state_dict = loaded.get('state_dict', loaded)
    prefix = prefix if prefix.endswith('.') else prefix + '.'
    if any(k.startswith(prefix) for k in state_dict):
        return
    found = sorted({k.split('.')[0] + '.' for k in state_dict})
    raise ValueError(
        f'{checkpoint!r} has no decoder weights (no {prefix!r} keys; it '
        f'holds {found}), e.g. mmpretrain\'s released encoder-only SAM file '
        'or one converted with --encoder-only. Re-convert the official SAM '
        'checkpoint with `python tools/model_converters/sam2mmpretrain.py '
        f'sam_vit_b_01ec64.pth {checkpoint}` (it writes the decoder too), or '
        'set model.decode_head.init_cfg=None to train the decoder from '
        'scratch')


@MODELS.register_module()
class DFAHead(BaseDecodeHead):
    """Query-based mask decoder with Dynamic Focal Attention (SAM-Path style,
    arXiv 2604.13479).

    The backbone feature map is projected to the decoder width D (a 1x1
    convolution, skipped when the widths already agree, as with SAM's image
    encoder), given a random Fourier position encoding and flattened into N
    image tokens. One learnable token per class and the image tokens pass
    through ``num_layers`` :class:`DFATransformerDecoderLayer` blocks (the
    image-to-class-token attention carries the DFA bias) and a final
    class-token-to-image attention. Class c's mask logit at a pixel is the
    dot product of the 4x upsampled image embedding (width D/8) with a
    per-class MLP of token c. Submodule names follow SAM's mask decoder.

    Args:
        in_channels: Backbone channels (a list with
            ``input_transform='resize_concat'``).
        channels: Decoder width D (SAM: 256).
        num_classes: Number of classes C (one token each).
        num_layers: Two-way blocks (SAM: 2).
        num_heads: Attention heads (SAM: 8).
        feedforward_channels: MLP width of the blocks (SAM: 2048).
        attention_downsample_rate: Internal width divisor of the
            cross-attentions (SAM: 2).
        attn_dropout: Dropout on attention probabilities.
        upsample_act_cfg: Activation of the mask upsampling (SAM: GELU).
        block_act_cfg: Activation of the block MLPs (SAM: ReLU).
        bias_mode, prior, class_freq, class_dice, gamma, init_scale: The DFA
            bias, see :class:`~mmimb.models.DynamicFocalAttention`.
        bias_sharing: ``'shared'`` (one vector for all layers and heads, the
            paper's), ``'per_head'`` (one per head, shared over layers) or
            ``'per_layer'`` (one per layer).
        delta_penalty: ``lambda`` of an optional loss term
            ``lambda * sum(delta ** 2)`` (``loss_dfa_delta``).
        **kwargs: :class:`BaseDecodeHead` arguments (``loss_decode``,
            ``in_index``, ``input_transform``, ``align_corners``,
            ``dropout_ratio`` applied to the upsampled embedding, ...). The
            default ``loss_decode`` is SAM-Path's focal + Dice
            (:class:`SegFocalLoss`, :class:`SegDiceLoss`).

    Shape:
        ``forward(inputs)`` returns mask logits (B, C, 4h, 4w) for a feature
        map of size (h, w).
    """

    def __init__(self,
                 in_channels: Union[int, Sequence[int]],
                 channels: int = 256,
                 *,
                 num_classes: int,
                 num_layers: int = 2,
                 num_heads: int = 8,
                 feedforward_channels: int = 2048,
                 attention_downsample_rate: int = 2,
                 attn_dropout: float = 0.0,
                 upsample_act_cfg: dict = dict(type='GELU'),
                 block_act_cfg: dict = dict(type='ReLU'),
                 bias_mode: str = 'learned',
                 prior: Union[str, Sequence[float]] = 'focal',
                 class_freq: Optional[ArrayLike] = None,
                 class_dice: Optional[ArrayLike] = None,
                 gamma: float = 2.0,
                 init_scale: float = 0.5,
                 bias_sharing: str = 'shared',
                 delta_penalty: float = 0.0,
                 **kwargs):
        kwargs.setdefault('dropout_ratio', 0.0)
        # Scoped names: the head may be built from another task's scope.
        kwargs.setdefault('loss_decode', [
            dict(type='mmseg.SegFocalLoss', loss_weight=1.0),
            dict(type='mmseg.SegDiceLoss', loss_weight=1.0)
        ])
        kwargs.setdefault('init_cfg', None)
        super().__init__(
            in_channels, channels, num_classes=num_classes, **kwargs)
        if self.out_channels != num_classes:
            raise ValueError('DFAHead predicts one mask per class token; '
                             f'out_channels must equal num_classes, got '
                             f'{self.out_channels}')
        if channels % 8:
            raise ValueError(f'channels must be divisible by 8 (the masks '
                             f'use width channels // 8), got {channels}')
        if bias_sharing not in BIAS_SHARING:
            raise ValueError(f'bias_sharing={bias_sharing!r}; expected one '
                             f'of {BIAS_SHARING}')
        del self.conv_seg
        self.delta_penalty = delta_penalty

        self.input_proj = nn.Identity() if self.in_channels == channels \
            else nn.Conv2d(self.in_channels, channels, kernel_size=1)
        self.pe_layer = RandomFourierPositionEncoding(channels)
        self.class_tokens = nn.Embedding(num_classes, channels)

        bias_cfg = dict(
            bias_mode=bias_mode,
            prior=prior,
            class_freq=class_freq,
            class_dice=class_dice,
            gamma=gamma,
            init_scale=init_scale)
        if bias_sharing != 'per_layer':
            self.class_bias = DFABias(
                num_classes,
                num_heads=num_heads if bias_sharing == 'per_head' else 1,
                **bias_cfg)
        shared = getattr(self, 'class_bias', None)
        self.layers = nn.ModuleList(
            DFATransformerDecoderLayer(
                channels,
                num_heads,
                num_classes,
                feedforward_channels=feedforward_channels,
                attention_downsample_rate=attention_downsample_rate,
                skip_first_layer_pe=i == 0,
                act_cfg=block_act_cfg,
                dropout=attn_dropout,
                dfa_bias=shared,
                **bias_cfg) for i in range(num_layers))
        self.final_attn_token_to_image = SDPAttention(
            channels, num_heads, attention_downsample_rate, attn_dropout)
        self.norm_final_attn = nn.LayerNorm(channels)

        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(channels, channels // 4, 2, stride=2),
            LayerNorm2d(channels // 4),
            build_activation_layer(upsample_act_cfg),
            nn.ConvTranspose2d(channels // 4, channels // 8, 2, stride=2),
            build_activation_layer(upsample_act_cfg))
        self.output_hypernetworks_mlps = MLP(
            channels,
            channels,
            channels // 8,
            3,
            affine_func=partial(ClassWiseLinear, num_classes))

    def init_weights(self) -> None:
        """Initialise; a ``Pretrained`` ``init_cfg`` with a ``prefix`` must
        find weights under that prefix (mmengine stops with a bare
        assertion otherwise)."""
        cfg = self.init_cfg
        if not self.is_init and isinstance(cfg, dict) and \
                cfg.get('type') == 'Pretrained' and cfg.get('prefix'):
            check_decoder_checkpoint(cfg['checkpoint'], cfg['prefix'])
        super().init_weights()

    def dfa_biases(self) -> List[Tuple[str, DFABias]]:
        """The distinct :class:`DFABias` modules, with their names."""
        return [(name, m) for name, m in self.named_modules()
                if isinstance(m, DFABias)]

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        x = self.input_proj(self._transform_inputs(inputs))
        b, d, h, w = x.shape
        image_pe = self.pe_layer((h, w)).to(x.dtype).flatten(1).t()[None]
        keys = x.flatten(2).transpose(1, 2)
        tokens = self.class_tokens.weight[None].expand(b, -1, -1)
        queries = tokens
        for layer in self.layers:
            queries, keys = layer(queries, keys, tokens, image_pe)
        attn = self.final_attn_token_to_image(queries + tokens,
                                              keys + image_pe, keys)
        queries = self.norm_final_attn(queries + attn)

        embedding = self.output_upscaling(keys.transpose(1, 2).reshape(
            b, d, h, w))
        if self.dropout is not None:
            embedding = self.dropout(embedding)
        hyper = self.output_hypernetworks_mlps(queries)
        return torch.einsum('bcd,bdhw->bchw', hyper, embedding)

    def loss_by_feat(self, seg_logits: Tensor, batch_data_samples) -> dict:
        losses = super().loss_by_feat(seg_logits, batch_data_samples)
        if self.delta_penalty:
            deltas = [m.delta for _, m in self.dfa_biases()
                      if m.delta is not None]
            if deltas:
                losses['loss_dfa_delta'] = self.delta_penalty * sum(
                    delta.pow(2).sum() for delta in deltas)
        return losses
