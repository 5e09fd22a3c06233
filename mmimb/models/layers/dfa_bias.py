"""The per-class attention bias of Dynamic Focal Attention."""
from typing import Optional, Sequence, Union

import torch
from torch import Tensor, nn

from .dfa_prior import ArrayLike, class_prior

BIAS_MODES = ('none', 'fixed', 'learned', 'anchored')
# Name of the learnable part: distinctive, so that an optimizer's
# ``paramwise_cfg.custom_keys`` entry matches it and nothing else.
DELTA_NAME = 'dfa_delta'
PRIOR_NAME = 'dfa_prior'


class DFABias(nn.Module):
    """Per-class bias ``b`` added to the logits of attention over class
    tokens.

    - ``none``: ``b = 0`` (no parameter, no buffer).
    - ``fixed``: ``b = p``, a buffer (CFFA with a frequency prior, HCFA with
      the difficulty prior).
    - ``learned``: ``b = delta``, ``delta`` initialised to
      ``init_scale * (p - mean(p))`` (DFA).
    - ``anchored``: ``b = p + delta``, ``delta`` initialised to 0 (our
      reading: the prior stays, the model learns a correction).

    One module can serve several attention layers (the DFA paper shares one
    vector over layers and heads); the module that stacks the layers owns it.

    Args:
        num_classes: Number of classes C (keys of the attention).
        bias_mode: One of ``none``, ``fixed``, ``learned``, ``anchored``.
        prior: ``'focal'`` (``gamma * log(1 - f_c)``), ``'inverse_log_freq'``
            (``-log f_c``), ``'difficulty'`` (``gamma * log(1 - Dice_c)``) or
            an explicit list of C values. See :func:`class_prior`.
        class_freq: Class frequencies for the frequency priors (list or
            class-statistics JSON path).
        class_dice: Per-class Dice of a baseline for ``'difficulty'`` (list or
            the JSON of ``class_difficulty.py``).
        gamma: Focusing strength of the focal and difficulty priors.
        init_scale: ``alpha`` of the learned mode's initialisation.
        num_heads: 1 for one vector shared by all heads, else one vector per
            head (shape (num_heads, C)).

    Shape:
        ``forward()`` returns ``b`` of shape (num_heads, C) in float32, or
        ``None`` in mode ``none``.
    """

    def __init__(self,
                 num_classes: int,
                 bias_mode: str = 'learned',
                 prior: Union[str, Sequence[float]] = 'focal',
                 class_freq: Optional[ArrayLike] = None,
                 class_dice: Optional[ArrayLike] = None,
                 gamma: float = 2.0,
                 init_scale: float = 0.5,
                 num_heads: int = 1):
        super().__init__()
        if bias_mode not in BIAS_MODES:
            raise ValueError(f'bias_mode={bias_mode!r}; expected one of '
                             f'{BIAS_MODES}')
        if num_heads < 1:
            raise ValueError(f'num_heads must be >= 1, got {num_heads}')
        self.num_classes = num_classes
        self.num_heads = num_heads
        self.bias_mode = bias_mode
        if bias_mode == 'none':
            return
        p = class_prior(prior, num_classes, class_freq, class_dice,
                        gamma).float()
        if bias_mode in ('fixed', 'anchored'):
            self.register_buffer(PRIOR_NAME, p)
        if bias_mode == 'learned':
            delta = init_scale * (p - p.mean())
        elif bias_mode == 'anchored':
            delta = torch.zeros_like(p)
        else:
            return
        setattr(self, DELTA_NAME,
                nn.Parameter(delta.expand(num_heads, -1).clone()))

    @property
    def delta(self) -> Optional[Tensor]:
        """The learnable part, shape (num_heads, C), or ``None``."""
        return getattr(self, DELTA_NAME, None)

    def forward(self) -> Optional[Tensor]:
        if self.bias_mode == 'none':
            return None
        bias = getattr(self, PRIOR_NAME, None)
        if self.delta is not None:
            bias = self.delta if bias is None else bias + self.delta
        return bias.expand(self.num_heads, -1)

    def extra_repr(self) -> str:
        return (f'num_classes={self.num_classes}, bias_mode='
                f'{self.bias_mode!r}, num_heads={self.num_heads}')
