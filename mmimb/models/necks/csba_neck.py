"""Class-Specific Branch Attention neck (CSBA, arXiv 2606.05740; the design
is our reading of the abstract, see docs/csba.md)."""
from typing import Optional, Tuple

import torch
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS

from ..layers.branch_attention import (BranchAttention, Features,
                                       build_branches, fuse_branches,
                                       last_feature_map, wrap_like)


@MODELS.register_module()
class CSBANeck(BaseModule):
    """Class-Specific Branch Attention: one feature per class from B
    parallel branches weighed by class-specific channel attention.

    For the backbone's last feature map F, B parallel convolution branches
    (different receptive fields) give maps F_b, pooled to p_b (D channels).
    From the pooled features every class c computes a channel attention over
    the branches, a[c, b] in R^D, and its own feature::

        z_c = sum_b a[c, b] * p_b        (channel-wise products)

    Pair it with :class:`ClassWiseLinearClsHead`, which scores class c from
    z_c alone. No label is used: every class builds its feature for every
    sample, at training and at test time alike.

    Memory and time are linear in the number of classes C: the largest
    intermediates are (N, C, B, D) (see :class:`BranchAttention`).

    Args:
        in_channels: Channels of the backbone's last feature map.
        num_classes: Number of classes C.
        num_branches: Number of branches B.
        branch_cfg: Arguments of :class:`MultiBranchConv`: ``kernel_size``
            and ``dilation`` (an int or one per branch; default 3x3 kernels
            with dilations 1, ..., B), ``num_convs``, ``groups``,
            ``stem_channels`` (a shared 1x1 reduction first, for wide
            backbones), ``conv_cfg``, ``norm_cfg``, ``act_cfg``.
        reduction: Hidden width of the attention is ``D // reduction``
            (at least 8).
        out_channels: Keyword-only. Channels D of every branch and of z_c,
            a positive int; ``None`` means ``in_channels``.
        hidden_channels: Explicit hidden width of the attention.
        gate: ``'softmax'`` (branches compete per channel) or ``'sigmoid'``.
        factorized: Share the attention's expansion across classes and give
            each class a modulation vector and bias; far fewer parameters
            for many classes (see :class:`BranchAttention`).
        logit_scale: Constant factor on the attention logits (our
            choice, measured in docs/csba.md, "Attention that learns"): at
            1 the attention's gradient is so much smaller than the head's
            that it stays uniform under the usual schedules; 8 moves it
            away from uniform within a few hundred SGD steps.
        init_cfg: Initialisation config.

    Shapes:
        input: (N, in_channels, H, W), or a tuple whose last item is one.
        output: (N, C, D); a 1-tuple of it for a tuple input.
    """

    def __init__(self,
                 in_channels: int,
                 num_classes: int,
                 num_branches: int = 3,
                 branch_cfg: Optional[dict] = None,
                 reduction: int = 4,
                 *,
                 out_channels: Optional[int] = None,
                 hidden_channels: Optional[int] = None,
                 gate: str = 'softmax',
                 factorized: bool = False,
                 logit_scale: float = 8.0,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f'CSBANeck: num_classes={num_classes!r}: '
                             'expected a positive int')
        self.in_channels, self.num_classes = in_channels, num_classes
        self.branches = build_branches(in_channels, out_channels,
                                       num_branches, branch_cfg, 'CSBANeck')
        self.out_channels = self.branches.out_channels
        self.attention = BranchAttention(
            num_branches,
            self.out_channels,
            num_sets=num_classes,
            reduction=reduction,
            hidden_channels=hidden_channels,
            gate=gate,
            factorized=factorized,
            logit_scale=logit_scale)

    def branch_attention(self, inputs: Features
                         ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Pooled branch features (N, B, D) and the class-specific attention
        (N, C, B, D) for ``inputs``."""
        pooled = self.branches(
            last_feature_map(inputs, self.in_channels, 'CSBANeck'))
        return pooled, self.attention(pooled)

    def forward(self, inputs: Features) -> Features:
        pooled, weights = self.branch_attention(inputs)
        return wrap_like(inputs, fuse_branches(pooled, weights))
