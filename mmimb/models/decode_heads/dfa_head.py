"""The DFA mask decoder as an MMSegmentation decode head."""
from functools import partial
from typing import List, Optional, Sequence, Tuple, Union

import torch
from mmcv.cnn import build_activation_layer
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.losses import accuracy
from mmseg.models.utils import MLP, LayerNorm2d, resize
from mmseg.registry import MODELS
from torch import Tensor, nn

from mmimb.utils import ConfigError, check_checkpoint_prefix
from ..layers.class_wise_linear import ClassWiseLinear
from ..layers.dfa_attention import BIAS_SHARING
from ..layers.dfa_bias import DFABias
from ..layers.dfa_decoder_layer import DFATransformerDecoderLayer
from ..layers.dfa_prior import ArrayLike
from ..layers.position_encoding import RandomFourierPositionEncoding
from ..layers.sdpa_attention import SDPAttention
from ..losses.sampath_loss import SAMPathLoss

TOKEN_LAYOUTS = ('class', 'sam')


@MODELS.register_module()
class DFAHead(BaseDecodeHead):
    """Query-based mask decoder with Dynamic Focal Attention (SAM-Path style,
    arXiv 2604.13479).

    The backbone feature map is projected to the decoder width D (a 1x1
    convolution, skipped when the widths already agree, as with SAM's image
    encoder), given a random Fourier position encoding and flattened into N
    image tokens. Learnable tokens and the image tokens pass through
    ``num_layers`` :class:`DFATransformerDecoderLayer` blocks (the
    image-to-token attention carries the DFA bias) and a final
    token-to-image attention. A mask logit at a pixel is the dot product of
    the 4x upsampled image embedding (width D/8) with a per-token MLP of the
    token. Submodule names follow SAM's mask decoder.

    Two token layouts:

    - ``'class'`` (default): one token per class (``class_tokens``), C
      masks, class c is token c and bias entry c.
    - ``'sam'``: SAM-Path's and the DFA authors' layout: SAM's IoU token
      (``iou_token``) and C + 2 mask tokens (``mask_tokens``): SAM's
      single-mask token, whose mask SAM-Path discards, the token of
      SAM-Path's class 0 (pixels outside the annotated region, ignored by
      the loss), and one per class. The decoder predicts C + 1 masks (class
      0's first; inference uses the C class masks) and, when the loss has
      an IoU term, from the IoU token through ``iou_prediction_head`` the
      IoU of each class mask. Class c's
      token is token ``3 + c``, and bias entry c acts on it (with
      ``reference_bias_offset=True`` on token ``2 + c``, as in the DFA
      reference code). It trains with :class:`SAMPathLoss`. Converted SAM
      weights give it SAM's IoU token, the first two layers of SAM's IoU
      head, and SAM's first hypernetwork MLP as every mask's MLP.

    Args:
        in_channels: Backbone channels (a list with
            ``input_transform='resize_concat'``).
        channels: Decoder width D (SAM: 256).
        num_classes: Number of classes C.
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
        token_layout: ``'class'`` or ``'sam'`` (see above).
        no_mask_embed: Add SAM's prompt-encoder embedding for "no mask
            prompt" (a frozen buffer of D values, loaded from converted SAM
            weights) to every image token, as SAM does when it is called
            without prompts.
        iou_head_channels: Hidden width of the IoU head (SAM: 256;
            ``'sam'`` layout with a loss that has an IoU term only).
        reference_bias_offset: Apply bias entry c to the token of class
            c - 1 (class 0's entry to the ignored class's token), as the DFA
            reference code does; for comparing numbers with the paper
            (``'sam'`` layout only).
        **kwargs: :class:`BaseDecodeHead` arguments (``loss_decode``,
            ``in_index``, ``input_transform``, ``align_corners``,
            ``dropout_ratio`` applied to the upsampled embedding, ...). The
            default ``loss_decode`` is focal + Dice (:class:`SegFocalLoss`,
            :class:`SegDiceLoss`) with the ``'class'`` layout and
            :class:`SAMPathLoss` with the ``'sam'`` layout.

    Shape:
        ``forward(inputs)`` returns mask logits (B, C, 4h, 4w) for a feature
        map of size (h, w); ``predict_masks(inputs)`` all masks (B, C or
        C + 1, 4h, 4w) and, with the ``'sam'`` layout and an IoU term in the
        loss, IoU predictions (B, C).
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
                 token_layout: str = 'class',
                 no_mask_embed: bool = False,
                 iou_head_channels: int = 256,
                 reference_bias_offset: bool = False,
                 **kwargs):
        if token_layout not in TOKEN_LAYOUTS:
            raise ConfigError(f'DFAHead: token_layout={token_layout!r}; '
                              f'expected one of {TOKEN_LAYOUTS}')
        if reference_bias_offset and token_layout != 'sam':
            raise ConfigError(
                'DFAHead: reference_bias_offset=True reproduces the DFA '
                "reference code's token layout and needs token_layout='sam'")
        kwargs.setdefault('dropout_ratio', 0.0)
        # Scoped names: the head may be built from another task's scope.
        kwargs.setdefault('loss_decode', [
            dict(type='mmseg.SegFocalLoss', loss_weight=1.0),
            dict(type='mmseg.SegDiceLoss', loss_weight=1.0)
        ] if token_layout == 'class' else dict(type='mmseg.SAMPathLoss'))
        kwargs.setdefault('init_cfg', None)
        super().__init__(
            in_channels, channels, num_classes=num_classes, **kwargs)
        if self.out_channels != num_classes:
            raise ConfigError('DFAHead predicts one mask per class token; '
                              f'out_channels must equal num_classes, got '
                              f'{self.out_channels}')
        if channels % 8:
            raise ConfigError(f'DFAHead: channels must be divisible by 8 '
                              f'(the masks use width channels // 8), got '
                              f'{channels}')
        if bias_sharing not in BIAS_SHARING:
            raise ConfigError(f'DFAHead: bias_sharing={bias_sharing!r}; '
                              f'expected one of {BIAS_SHARING}')
        if self.input_transform == 'multiple_select':
            raise ConfigError(
                "DFAHead: input_transform='multiple_select' passes a list "
                'of feature maps, and the decoder takes one; use '
                "input_transform='resize_concat' (with in_index a list) or "
                'None (one in_index)')
        losses = self.loss_decode if isinstance(
            self.loss_decode, nn.ModuleList) else [self.loss_decode]
        if token_layout == 'sam' and (
                len(losses) != 1 or not isinstance(losses[0], SAMPathLoss)):
            raise ConfigError(
                "DFAHead: token_layout='sam' trains with SAM-Path's loss on "
                'its C + 1 masks (the ignored class first); set '
                "loss_decode=dict(type='SAMPathLoss', ...), got "
                f'{[type(loss).__name__ for loss in losses]}')
        del self.conv_seg
        self.delta_penalty = delta_penalty
        self.token_layout = token_layout

        self.input_proj = nn.Identity() if self.in_channels == channels \
            else nn.Conv2d(self.in_channels, channels, kernel_size=1)
        self.pe_layer = RandomFourierPositionEncoding(channels)
        if no_mask_embed:
            self.register_buffer('no_mask_embed', torch.randn(1, channels))
        else:
            self.no_mask_embed = None
        if token_layout == 'class':
            self.class_tokens = nn.Embedding(num_classes, channels)
            num_tokens, class_offset = num_classes, 0
            # tokens whose masks are predicted
            self.mask_token_slice = slice(None)
        else:
            self.iou_token = nn.Embedding(1, channels)
            self.mask_tokens = nn.Embedding(num_classes + 2, channels)
            num_tokens = num_classes + 3
            class_offset = 2 if reference_bias_offset else 3
            self.mask_token_slice = slice(2, None)

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
                num_tokens=num_tokens,
                class_offset=class_offset,
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
        num_masks = num_classes if token_layout == 'class' \
            else num_classes + 1
        self.output_hypernetworks_mlps = MLP(
            channels,
            channels,
            channels // 8,
            3,
            affine_func=partial(ClassWiseLinear, num_masks))
        # Only a loss with an IoU term trains the IoU head (SAM-Path's CRAG
        # setting has none); an unused head would stall DDP.
        self.iou_prediction_head = MLP(
            channels, iou_head_channels, num_classes,
            3) if token_layout == 'sam' and losses[0].iou_weight else None

    def init_weights(self) -> None:
        """Initialise; a ``Pretrained`` ``init_cfg`` with a ``prefix`` must
        find weights under that prefix (mmengine stops with a bare
        assertion otherwise)."""
        cfg = self.init_cfg
        if not self.is_init and isinstance(cfg, dict) and \
                cfg.get('type') == 'Pretrained' and cfg.get('prefix'):
            check_checkpoint_prefix(cfg['checkpoint'], cfg['prefix'],
                                    'model.decode_head')
        super().init_weights()

    def dfa_biases(self) -> List[Tuple[str, DFABias]]:
        """The distinct :class:`DFABias` modules, with their names."""
        return [(name, m) for name, m in self.named_modules()
                if isinstance(m, DFABias)]

    def output_tokens(self) -> Tensor:
        """The learnable tokens in decoder order, shape (T, D)."""
        if self.token_layout == 'class':
            return self.class_tokens.weight
        return torch.cat([self.iou_token.weight, self.mask_tokens.weight])

    def transformer(self, image_embedding: Tensor, image_pe: Tensor,
                    tokens: Tensor) -> Tuple[Tensor, Tensor]:
        """The two-way transformer, as SAM's ``TwoWayTransformer.forward``.

        Args:
            image_embedding: (B, D, h, w).
            image_pe: (1 or B, D, h, w) position encoding.
            tokens: (B, T, D); also their positional embedding.

        Returns:
            tuple: the tokens (B, T, D) and image tokens (B, h * w, D).
        """
        keys = image_embedding.flatten(2).transpose(1, 2)
        key_pe = image_pe.flatten(2).transpose(1, 2)
        queries = tokens
        for layer in self.layers:
            queries, keys = layer(queries, keys, tokens, key_pe)
        attn = self.final_attn_token_to_image(queries + tokens,
                                              keys + key_pe, keys)
        queries = self.norm_final_attn(queries + attn)
        return queries, keys

    def predict_masks(self, inputs: Sequence[Tensor],
                      with_iou: bool = True
                      ) -> Tuple[Tensor, Optional[Tensor]]:
        """All mask logits and, with the ``'sam'`` layout and ``with_iou``,
        the IoU predictions (see the class docstring for the shapes)."""
        x = self.input_proj(self._transform_inputs(inputs))
        if self.no_mask_embed is not None:
            x = x + self.no_mask_embed.to(x.dtype)[..., None, None]
        b, d, h, w = x.shape
        image_pe = self.pe_layer((h, w)).to(x.dtype)[None]
        tokens = self.output_tokens()[None].expand(b, -1, -1)
        queries, keys = self.transformer(x, image_pe, tokens)

        embedding = self.output_upscaling(keys.transpose(1, 2).reshape(
            b, d, h, w))
        if self.dropout is not None:
            embedding = self.dropout(embedding)
        hyper = self.output_hypernetworks_mlps(
            queries[:, self.mask_token_slice])
        masks = torch.einsum('bcd,bdhw->bchw', hyper, embedding)
        iou = None
        if with_iou and self.iou_prediction_head is not None:
            iou = self.iou_prediction_head(queries[:, 0])
        return masks, iou

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        masks, _ = self.predict_masks(inputs, with_iou=False)
        return masks if self.token_layout == 'class' else masks[:, 1:]

    def loss(self, inputs: Sequence[Tensor], batch_data_samples,
             train_cfg) -> dict:
        if self.token_layout == 'class':
            return super().loss(inputs, batch_data_samples, train_cfg)
        return self.loss_by_feat(self.predict_masks(inputs),
                                 batch_data_samples)

    def loss_by_feat(self, seg_logits: Union[Tensor, Tuple[Tensor, Tensor]],
                     batch_data_samples) -> dict:
        """Losses of the C masks (``'class'``), or of the C + 1 masks and
        IoU predictions ``(masks, iou)`` (``'sam'``)."""
        if self.token_layout == 'class':
            losses = super().loss_by_feat(seg_logits, batch_data_samples)
        else:
            masks, iou = seg_logits
            seg_label = self._stack_batch_gt(batch_data_samples)
            masks = resize(
                masks,
                size=seg_label.shape[2:],
                mode='bilinear',
                align_corners=self.align_corners)
            seg_label = seg_label.squeeze(1)
            loss_decode = self.loss_decode[0] if isinstance(
                self.loss_decode, nn.ModuleList) else self.loss_decode
            losses = loss_decode(
                masks, seg_label, iou, ignore_index=self.ignore_index)
            losses['acc_seg'] = accuracy(
                masks[:, 1:], seg_label, ignore_index=self.ignore_index)
        if self.delta_penalty:
            deltas = [m.delta for _, m in self.dfa_biases()
                      if m.delta is not None]
            if deltas:
                losses['loss_dfa_delta'] = self.delta_penalty * sum(
                    delta.pow(2).sum() for delta in deltas)
        return losses
