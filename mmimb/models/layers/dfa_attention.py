"""Dynamic Focal Attention: image tokens attend to class tokens with a
per-class bias on the logits (DFA, arXiv 2604.13479, Eq. 1)."""
from typing import Optional, Sequence, Tuple, Union

import torch.nn.functional as F
from torch import Tensor

from .dfa_bias import DFABias
from .dfa_prior import ArrayLike
from .sdpa_attention import SDPAttention

BIAS_SHARING = ('shared', 'per_layer', 'per_head')


class DynamicFocalAttention(SDPAttention):
    """Multi-head attention of image tokens (queries) over class tokens
    (keys and values) with a per-class bias ``b`` on the logits::

        Attn(Q, K, V) = softmax(Q K^T / sqrt(d) + b) V

    The softmax runs over the C class tokens, so ``b_c = log w_c`` multiplies
    the attention every pixel pays to class c by ``w_c`` before
    renormalisation, and adding one constant to all ``b_c`` changes nothing.
    The bias enters ``F.scaled_dot_product_attention`` as an additive float
    mask of shape (1, heads or 1, 1, C), broadcast over batch and queries;
    its maximum is subtracted first (the softmax is invariant to it) so that
    the mask stays <= 0 and finite in fp16/bf16.

    Args:
        embed_dims: Width D of image and class tokens.
        num_heads: Number of heads.
        num_classes: Number of class tokens C; class c is key index c.
        bias_mode: ``'none'``, ``'fixed'``, ``'learned'`` or ``'anchored'``
            (see :class:`DFABias`).
        prior: ``'focal'``, ``'inverse_log_freq'``, ``'difficulty'`` or an
            explicit list of C values.
        class_freq: Class frequencies (list, class-statistics JSON path, or
            ``'auto'`` in a config built by mmimb's runner, which replaces it
            by the training set's frequencies).
        gamma: Focusing strength of the focal and difficulty priors.
        init_scale: Scale ``alpha`` of the learned bias's initialisation
            ``alpha * (p - mean(p))``.
        bias_sharing: ``'shared'`` (one vector for all heads),
            ``'per_head'`` (one per head) or ``'per_layer'``. Sharing over
            layers is arranged by the module that stacks the layers: it builds
            one :class:`DFABias` and passes it as ``bias`` to every layer (as
            :class:`~mmimb.models.DFAHead` does); a lone attention module
            with ``'per_layer'`` or ``'shared'`` has one vector of its own.
        dropout: Dropout on the attention probabilities while training.
        class_dice: Per-class Dice of a baseline for ``prior='difficulty'``
            (list or the JSON of ``tools/analysis_tools/class_difficulty.py``).
        downsample_rate: Internal width ``D // downsample_rate`` (SAM: 2).
        bias: A :class:`DFABias` owned by another module and shared with it.
            It is referenced, not registered, here: the owner holds it as a
            submodule so that its parameter is saved and optimised once. The
            bias arguments above are then ignored.
        num_tokens: Number of keys T when the keys hold tokens besides the
            class tokens (SAM's IoU and mask tokens); ``None``: T = C.
        class_offset: Key index of class 0's token; class c is key
            ``class_offset + c``. The other keys get bias 0.

    Shape:
        - query: image tokens (B, N, D).
        - key, value: tokens (B, T, D), class c at key ``class_offset + c``;
          ``value`` defaults to ``key``.
        - output: (B, N, D); with ``return_attn=True`` also the attention
          probabilities (B, heads, N, T).
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 num_classes: int,
                 bias_mode: str = 'learned',
                 prior: Union[str, Sequence[float]] = 'focal',
                 class_freq: Optional[ArrayLike] = None,
                 gamma: float = 2.0,
                 init_scale: float = 0.5,
                 bias_sharing: str = 'shared',
                 dropout: float = 0.0,
                 class_dice: Optional[ArrayLike] = None,
                 downsample_rate: int = 1,
                 bias: Optional[DFABias] = None,
                 num_tokens: Optional[int] = None,
                 class_offset: int = 0):
        super().__init__(embed_dims, num_heads, downsample_rate, dropout)
        if bias_sharing not in BIAS_SHARING:
            raise ValueError(f'bias_sharing={bias_sharing!r}; expected one '
                             f'of {BIAS_SHARING}')
        num_tokens = num_classes if num_tokens is None else num_tokens
        if class_offset < 0 or class_offset + num_classes > num_tokens:
            raise ValueError(
                f'{num_classes} class tokens from key {class_offset} do not '
                f'fit into num_tokens={num_tokens} keys')
        self.num_classes = num_classes
        self.num_tokens = num_tokens
        self.class_offset = class_offset
        if bias is None:
            self.class_bias = DFABias(
                num_classes,
                bias_mode=bias_mode,
                prior=prior,
                class_freq=class_freq,
                class_dice=class_dice,
                gamma=gamma,
                init_scale=init_scale,
                num_heads=num_heads if bias_sharing == 'per_head' else 1)
        else:
            if bias.num_classes != num_classes or bias.num_heads not in (
                    1, num_heads):
                raise ValueError(
                    f'the shared DFABias has num_classes={bias.num_classes}'
                    f' and num_heads={bias.num_heads}; this attention has '
                    f'num_classes={num_classes} and num_heads={num_heads}')
            # A tuple keeps nn.Module from registering the owner's module.
            self._shared_bias = (bias, )

    @property
    def dfa_bias(self) -> DFABias:
        """The :class:`DFABias` this attention applies."""
        shared = self.__dict__.get('_shared_bias')
        return shared[0] if shared else self.class_bias

    def attn_bias(self) -> Optional[Tensor]:
        """The additive mask, shape (1, heads or 1, 1, T), max 0; ``None``
        in mode ``none``."""
        bias = self.dfa_bias()
        if bias is None:
            return None
        if self.num_tokens != self.num_classes:
            bias = F.pad(bias, (self.class_offset, self.num_tokens -
                                self.num_classes - self.class_offset))
        # Detaching the max leaves the gradient unchanged: the softmax is
        # shift invariant, so its gradient w.r.t. b sums to 0 over classes.
        bias = bias - bias.amax(dim=-1, keepdim=True).detach()
        return bias[None, :, None, :]

    def forward(self,
                query: Tensor,
                key: Tensor,
                value: Optional[Tensor] = None,
                return_attn: bool = False
                ) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        if key.dim() != 3 or key.shape[1] != self.num_tokens:
            raise ValueError(
                f'key must be the tokens (B, {self.num_tokens}, D) with '
                f'class c at index {self.class_offset} + c, got shape '
                f'{tuple(key.shape)}')
        return super().forward(
            query, key, value, attn_mask=self.attn_bias(),
            return_attn=return_attn)
