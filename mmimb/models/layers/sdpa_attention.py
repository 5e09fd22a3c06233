"""Multi-head attention through ``F.scaled_dot_product_attention``."""
import math
from typing import Optional, Tuple, Union

import torch.nn.functional as F
from torch import Tensor, nn


class SDPAttention(nn.Module):
    """Multi-head attention with separate q/k/v projections, as in SAM's mask
    decoder, computed by ``F.scaled_dot_product_attention`` so that fused
    kernels are used where the hardware has them.

    Args:
        embed_dims: Width D of queries, keys and values.
        num_heads: Number of heads.
        downsample_rate: The projections map D to ``D // downsample_rate``
            (SAM's cross-attentions use 2).
        dropout: Dropout on the attention probabilities while training.

    Shape:
        - query: (B, N, D); key, value: (B, M, D).
        - attn_mask: additive float mask broadcastable to (B, heads, N, M).
        - output: (B, N, D); with ``return_attn`` also the probabilities
          (B, heads, N, M).
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 downsample_rate: int = 1,
                 dropout: float = 0.0):
        super().__init__()
        internal = embed_dims // downsample_rate
        if internal * downsample_rate != embed_dims or \
                internal % num_heads:
            raise ValueError(
                f'embed_dims={embed_dims} / downsample_rate='
                f'{downsample_rate} must be divisible by num_heads='
                f'{num_heads}')
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.internal_dims = internal
        self.dropout = dropout
        self.q_proj = nn.Linear(embed_dims, internal)
        self.k_proj = nn.Linear(embed_dims, internal)
        self.v_proj = nn.Linear(embed_dims, internal)
        self.out_proj = nn.Linear(internal, embed_dims)

    def _split_heads(self, x: Tensor) -> Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.num_heads, -1).transpose(1, 2)

    def forward(self,
                query: Tensor,
                key: Tensor,
                value: Optional[Tensor] = None,
                attn_mask: Optional[Tensor] = None,
                return_attn: bool = False
                ) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        value = key if value is None else value
        q = self._split_heads(self.q_proj(query))
        k = self._split_heads(self.k_proj(key))
        v = self._split_heads(self.v_proj(value))
        if attn_mask is not None:
            # SDPA requires a float mask in the dtype of the query (autocast
            # makes the projections fp16/bf16 while masks are built in fp32).
            attn_mask = attn_mask.to(q.dtype)
        dropout = self.dropout if self.training else 0.0
        if return_attn:
            logits = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
            if attn_mask is not None:
                logits = logits + attn_mask
            attn = logits.float().softmax(dim=-1).to(q.dtype)
            out = F.dropout(attn, dropout, self.training) @ v
        else:
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=attn_mask, dropout_p=dropout)
        out = self.out_proj(out.transpose(1, 2).flatten(2))
        return (out, attn) if return_attn else out

    def extra_repr(self) -> str:
        return (f'embed_dims={self.embed_dims}, num_heads={self.num_heads}, '
                f'internal_dims={self.internal_dims}')
