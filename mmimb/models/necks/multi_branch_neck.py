"""The multi-branch baseline of CSBA: the same branches, fused with weights
shared by all classes."""
from typing import Optional

from mmengine.model import BaseModule
from mmpretrain.registry import MODELS

from ..layers.branch_attention import (BranchAttention, Features,
                                       build_branches, fuse_branches,
                                       last_feature_map, wrap_like)

FUSIONS = ('attention', 'mean', 'concat')


@MODELS.register_module()
class MultiBranchNeck(BaseModule):
    """B parallel convolution branches fused into one feature for all
    classes; the control for :class:`CSBANeck`.

    With the same ``branch_cfg`` it has exactly CSBANeck's branches (same
    depth and receptive fields). ``fusion='attention'`` weighs them with one
    class-shared channel attention (Selective-Kernel style,
    :class:`BranchAttention` with a single set), ``'mean'`` averages them,
    ``'concat'`` concatenates them (N, B * D): a linear head on that gives
    every class its own but input-independent weighting of the branches,
    the static counterpart of CSBA's attention.
    Its parameter count can be matched to a CSBANeck's by widening the
    attention (``hidden_channels``), so that a comparison isolates the
    class specificity of the attention rather than its size.

    Args:
        in_channels: Channels of the backbone's last feature map.
        num_branches: Number of branches B.
        out_channels: Channels D of every branch and of the output;
            ``None`` means ``in_channels``.
        branch_cfg: As in :class:`CSBANeck`.
        fusion: ``'attention'``, ``'mean'`` or ``'concat'``.
        reduction: Hidden width of the attention is ``D // reduction``
            (at least 8).
        hidden_channels: Explicit hidden width of the attention.
        gate: ``'softmax'`` or ``'sigmoid'``, as in :class:`CSBANeck`.
        logit_scale: Factor on the attention logits, as in
            :class:`CSBANeck`.
        init_cfg: Initialisation config.

    Shapes:
        input: (N, in_channels, H, W), or a tuple whose last item is one.
        output: (N, D), or (N, B * D) for ``'concat'``; a 1-tuple of it for
        a tuple input (for ``LinearClsHead``).
    """

    def __init__(self,
                 in_channels: int,
                 num_branches: int = 3,
                 out_channels: Optional[int] = None,
                 branch_cfg: Optional[dict] = None,
                 fusion: str = 'attention',
                 reduction: int = 4,
                 hidden_channels: Optional[int] = None,
                 gate: str = 'softmax',
                 logit_scale: float = 8.0,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if fusion not in FUSIONS:
            raise ValueError(f'MultiBranchNeck: fusion={fusion!r}: expected '
                             f'one of {FUSIONS}')
        self.in_channels, self.fusion = in_channels, fusion
        self.branches = build_branches(in_channels, out_channels,
                                       num_branches, branch_cfg,
                                       'MultiBranchNeck')
        self.out_channels = self.branches.out_channels
        self.attention = BranchAttention(
            num_branches,
            self.out_channels,
            num_sets=1,
            reduction=reduction,
            hidden_channels=hidden_channels,
            gate=gate,
            logit_scale=logit_scale) if fusion == 'attention' else None

    def forward(self, inputs: Features) -> Features:
        pooled = self.branches(
            last_feature_map(inputs, self.in_channels, 'MultiBranchNeck'))
        if self.fusion == 'mean':
            fused = pooled.mean(dim=1)
        elif self.fusion == 'concat':
            fused = pooled.flatten(1)
        else:
            fused = fuse_branches(pooled, self.attention(pooled))[:, 0]
        return wrap_like(inputs, fused)
