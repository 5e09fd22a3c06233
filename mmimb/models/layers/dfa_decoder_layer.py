"""SAM's two-way transformer block with DFA in the image-to-token
attention."""
from typing import Optional, Sequence, Tuple, Union

from mmcv.cnn import build_activation_layer
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import Tensor, nn

from .dfa_attention import DynamicFocalAttention
from .dfa_bias import DFABias
from .dfa_prior import ArrayLike
from .sdpa_attention import SDPAttention


class MLPBlock(nn.Module):
    """Two linear layers with an activation, named as in SAM (``lin1``,
    ``lin2``) so that SAM's mask-decoder weights load by name.

    Args:
        embed_dims: Input and output width.
        feedforward_channels: Hidden width.
        act_cfg: Activation config.
    """

    def __init__(self,
                 embed_dims: int,
                 feedforward_channels: int,
                 act_cfg: dict = dict(type='ReLU')):
        super().__init__()
        self.lin1 = nn.Linear(embed_dims, feedforward_channels)
        self.lin2 = nn.Linear(feedforward_channels, embed_dims)
        self.act = build_activation_layer(act_cfg)

    def forward(self, x: Tensor) -> Tensor:
        return self.lin2(self.act(self.lin1(x)))


@MODELS.register_module()
class DFATransformerDecoderLayer(BaseModule):
    """Two-way attention block of SAM's mask decoder with Dynamic Focal
    Attention.

    Four steps, each followed by a residual connection and LayerNorm:
    (1) self-attention of the class tokens, (2) class tokens attend to the
    image tokens, (3) MLP on the class tokens, (4) image tokens attend to the
    class tokens through :class:`DynamicFocalAttention`. Only step (4) has
    the softmax over classes where a per-class bias acts; in step (2) the
    softmax runs over pixels and a per-class constant would cancel.

    Submodule names follow SAM's ``TwoWayAttentionBlock`` so that a SAM
    checkpoint's ``mask_decoder.transformer.layers.{i}`` weights load into
    it (the DFA bias then starts from its own initialisation).

    Args:
        embed_dims: Token width D.
        num_heads: Attention heads.
        num_classes: Number of class tokens C.
        feedforward_channels: Hidden width of the MLP.
        attention_downsample_rate: Internal width divisor of the two
            cross-attentions (SAM: 2).
        skip_first_layer_pe: Do not add the query positional embedding in
            the self-attention (SAM does this in its first layer).
        act_cfg: MLP activation.
        dropout: Attention dropout.
        bias_mode, prior, class_freq, class_dice, gamma, init_scale,
        bias_sharing: See :class:`DynamicFocalAttention`.
        dfa_bias: A :class:`DFABias` owned by the caller and shared over
            layers; overrides the bias arguments.
        num_tokens, class_offset: Where the class tokens sit among the
            queries when there are other tokens too (SAM's IoU and mask
            tokens), see :class:`DynamicFocalAttention`.
        init_cfg: Initialisation config.

    Shape:
        - queries, query_pe: tokens (B, T, D), T = C by default.
        - keys, key_pe: image tokens (B, N, D) (``key_pe`` may have batch 1).
        - returns the updated (queries, keys).
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 num_classes: int,
                 feedforward_channels: int = 2048,
                 attention_downsample_rate: int = 2,
                 skip_first_layer_pe: bool = False,
                 act_cfg: dict = dict(type='ReLU'),
                 dropout: float = 0.0,
                 bias_mode: str = 'learned',
                 prior: Union[str, Sequence[float]] = 'focal',
                 class_freq: Optional[ArrayLike] = None,
                 class_dice: Optional[ArrayLike] = None,
                 gamma: float = 2.0,
                 init_scale: float = 0.5,
                 bias_sharing: str = 'shared',
                 dfa_bias: Optional[DFABias] = None,
                 num_tokens: Optional[int] = None,
                 class_offset: int = 0,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg)
        self.skip_first_layer_pe = skip_first_layer_pe
        self.self_attn = SDPAttention(embed_dims, num_heads, dropout=dropout)
        self.norm1 = nn.LayerNorm(embed_dims)
        self.cross_attn_token_to_image = SDPAttention(
            embed_dims, num_heads, attention_downsample_rate, dropout)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.mlp = MLPBlock(embed_dims, feedforward_channels, act_cfg)
        self.norm3 = nn.LayerNorm(embed_dims)
        self.cross_attn_image_to_token = DynamicFocalAttention(
            embed_dims,
            num_heads,
            num_classes,
            bias_mode=bias_mode,
            prior=prior,
            class_freq=class_freq,
            gamma=gamma,
            init_scale=init_scale,
            bias_sharing=bias_sharing,
            dropout=dropout,
            class_dice=class_dice,
            downsample_rate=attention_downsample_rate,
            bias=dfa_bias,
            num_tokens=num_tokens,
            class_offset=class_offset)
        self.norm4 = nn.LayerNorm(embed_dims)

    def forward(self, queries: Tensor, keys: Tensor, query_pe: Tensor,
                key_pe: Tensor) -> Tuple[Tensor, Tensor]:
        if self.skip_first_layer_pe:
            queries = self.self_attn(queries, queries, queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q, q, queries)
        queries = self.norm1(queries)

        q, k = queries + query_pe, keys + key_pe
        queries = self.norm2(queries +
                             self.cross_attn_token_to_image(q, k, keys))
        queries = self.norm3(queries + self.mlp(queries))

        q = queries + query_pe
        keys = self.norm4(keys +
                          self.cross_attn_image_to_token(k, q, queries))
        return queries, keys
