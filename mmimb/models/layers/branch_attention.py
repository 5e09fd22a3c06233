"""Parallel convolution branches and their channel-wise fusion.

Class-Specific Branch Attention (CSBA, ../shared/METHODS.md section 3, our
reading) and its class-shared baseline differ in one thing only: how many
sets of branch attention they compute. Both are built from the pieces here:

- :class:`MultiBranchConv`: B parallel convolution branches of different
  receptive fields over the same feature map, each globally average pooled,
  giving ``pooled`` of shape (N, B, D);
- :class:`BranchAttention`: from the pooled features, K sets of channel
  attention over the branches, (N, K, B, D); K = num_classes for CSBA, 1 for
  the class-shared baseline (Selective-Kernel style, Li et al., CVPR 2019);
- :func:`fuse_branches`: ``z[n, k] = sum_b a[n, k, b] * pooled[n, b]``
  (channel-wise products), (N, K, D).

Pooling before fusing is exact, not an approximation: the attention is
constant over space, so ``pool(sum_b a_b * F_b) = sum_b a_b * pool(F_b)``,
and no (N, K, D, H, W) tensor is ever formed. Every intermediate is at most
(N, K, B, D), so memory grows linearly with the number of classes.
"""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule

GATES = ('softmax', 'sigmoid')

IntOrSeq = Union[int, Sequence[int]]
Features = Union[torch.Tensor, Sequence[torch.Tensor]]


def branch_weights(logits: torch.Tensor,
                   gate: str = 'softmax') -> torch.Tensor:
    """Turn attention logits into branch weights.

    Args:
        logits: (..., B, D) logits, one per branch and channel.
        gate: ``'softmax'``: the branches compete for every channel (weights
            sum to 1 over B, as in Selective-Kernel networks), so the fused
            feature stays a per-channel convex combination of the branch
            features; ``'sigmoid'``: independent gates in (0, 1), as in
            Squeeze-and-Excitation.

    Returns:
        torch.Tensor: weights of the same shape as ``logits``.
    """
    if gate == 'softmax':
        return logits.softmax(dim=-2)
    if gate == 'sigmoid':
        return logits.sigmoid()
    raise ValueError(f'gate={gate!r}: expected one of {GATES}')


def attention_statistics(weights: torch.Tensor) -> Tuple[float, float]:
    """How far branch weights are from uniform, and how much they differ
    between sets.

    Args:
        weights: (N, K, B, D) branch weights (K sets, B branches).

    Returns:
        tuple: ``mean |a - 1/B|`` over all entries, and the standard
        deviation over the K sets (classes), averaged over samples, branches
        and channels (0 for a class-shared attention or K = 1).
    """
    uniform = 1.0 / weights.shape[2]
    weights = weights.detach().float()
    return (float((weights - uniform).abs().mean()),
            float(weights.std(dim=1, unbiased=False).mean()))


def fuse_branches(pooled: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weigh pooled branch features channel by channel and sum over branches.

    Args:
        pooled: (N, B, D) pooled features of the B branches.
        weights: (N, K, B, D) K sets of branch weights per sample.

    Returns:
        torch.Tensor: (N, K, D), ``out[n, k, d] = sum_b weights[n, k, b, d] *
        pooled[n, b, d]``.
    """
    if pooled.dim() != 3 or weights.dim() != 4 or \
            weights.shape[0] != pooled.shape[0] or \
            weights.shape[2:] != pooled.shape[1:]:
        raise ValueError(
            'fuse_branches expects pooled (N, B, D) and weights (N, K, B, D), '
            f'got {tuple(pooled.shape)} and {tuple(weights.shape)}')
    # Broadcast product and sum rather than einsum: torch lowers this
    # contraction to a bmm over permuted copies and saves an extra
    # (N, K, B, D) copy for the backward pass (219 vs 125 MB at N=128,
    # K=1000, B=3, D=64); the product here saves only the weights, which
    # the softmax saved already.
    return (weights * pooled.unsqueeze(1)).sum(dim=2)


def last_feature_map(inputs: Features,
                     in_channels: int, owner: str) -> torch.Tensor:
    """The (N, in_channels, H, W) map a neck works on: ``inputs`` itself or
    the last item of a tuple of backbone stages.

    Raises:
        ValueError: Naming ``owner`` and the shape found, for anything else.
    """
    x = inputs[-1] if isinstance(inputs, (tuple, list)) and inputs else inputs
    if not torch.is_tensor(x) or x.dim() != 4 or x.shape[1] != in_channels:
        found = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
        raise ValueError(
            f'{owner} expects a feature map (N, in_channels={in_channels}, H, '
            f'W) or a tuple whose last item is one, got {found}; set '
            'in_channels to the channels of the backbone\'s last output')
    return x


def _per_branch(value: IntOrSeq, num_branches: int, name: str) -> Tuple[int]:
    values = (value, ) * num_branches if isinstance(value, int) \
        else tuple(value)
    if len(values) != num_branches or \
            not all(isinstance(v, int) and v > 0 for v in values):
        raise ValueError(
            f'branch_cfg.{name}={value!r}: expected a positive int or '
            f'{num_branches} positive ints (one per branch)')
    return values


class MultiBranchConv(BaseModule):
    """B parallel convolution branches of different receptive fields, each
    globally average pooled.

    Branch b is ``num_convs`` ConvModules (conv, norm, activation) with kernel
    size ``kernel_size[b]`` and dilation ``dilation[b]``, padded to keep the
    spatial size. The default (3x3 kernels with dilations 1, ..., B; for
    B = 3 receptive fields of 3, 5 and 7 pixels) keeps the parameter cost
    equal, so the branches differ only in the context they see.

    Args:
        in_channels: Channels of the input map.
        out_channels: Channels D of every branch.
        num_branches: Number of branches B.
        kernel_size: One odd kernel size for all branches or one per branch.
        dilation: One dilation for all branches or one per branch;
            ``None`` gives branch b the dilation b (1, 2, ..., B).
        num_convs: Convolutions per branch (depth of a branch).
        groups: Groups of every convolution (reduces parameters on wide
            backbones).
        stem_channels: If set, a shared 1x1 ConvModule first reduces the
            input to this many channels; on wide backbones (2048 channels
            for ResNet-50) it cuts the branches' parameters by
            ``in_channels / stem_channels``.
        conv_cfg, norm_cfg, act_cfg: As in :class:`mmcv.cnn.ConvModule`.
        init_cfg: Initialisation config.

    Shapes:
        input: (N, in_channels, H, W); output: (N, B, D) pooled features.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 num_branches: int = 3,
                 kernel_size: IntOrSeq = 3,
                 dilation: Optional[IntOrSeq] = None,
                 num_convs: int = 1,
                 groups: int = 1,
                 stem_channels: Optional[int] = None,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 act_cfg: Optional[dict] = dict(type='ReLU'),
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if not isinstance(num_branches, int) or num_branches < 1:
            raise ValueError(f'num_branches={num_branches!r}: expected a '
                             'positive int')
        if not isinstance(num_convs, int) or num_convs < 1:
            raise ValueError(f'branch_cfg.num_convs={num_convs!r}: expected '
                             'a positive int')
        if dilation is None:
            dilation = tuple(range(1, num_branches + 1))
        kernels = _per_branch(kernel_size, num_branches, 'kernel_size')
        dilations = _per_branch(dilation, num_branches, 'dilation')
        if any(k % 2 == 0 for k in kernels):
            raise ValueError(f'branch_cfg.kernel_size={kernel_size!r}: '
                             'expected odd sizes, so that padding keeps the '
                             'spatial size')
        self.num_branches = num_branches
        self.out_channels = out_channels
        self.kernel_sizes, self.dilations = kernels, dilations
        self.stem = None
        if stem_channels is not None:
            self.stem = ConvModule(
                in_channels,
                stem_channels,
                1,
                conv_cfg=conv_cfg,
                norm_cfg=norm_cfg,
                act_cfg=act_cfg)
            in_channels = stem_channels
        self.branches = nn.ModuleList()
        for k, d in zip(kernels, dilations):
            self.branches.append(
                nn.Sequential(*[
                    ConvModule(
                        in_channels if i == 0 else out_channels,
                        out_channels,
                        k,
                        padding=d * (k - 1) // 2,
                        dilation=d,
                        groups=groups,
                        conv_cfg=conv_cfg,
                        norm_cfg=norm_cfg,
                        act_cfg=act_cfg) for i in range(num_convs)
                ]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stem is not None:
            x = self.stem(x)
        return torch.stack([branch(x).mean(dim=(2, 3))
                            for branch in self.branches], dim=1)


class BranchAttention(BaseModule):
    """K sets of channel attention over B branches, from pooled features.

    A squeeze layer reads the concatenated pooled branch features (so it sees
    which branch responds) and reduces them to ``hidden`` channels; an
    expansion gives, for every set k, branch b and channel d, a logit, turned
    into weights by ``gate``::

        h = ReLU(W_s [p_1; ...; p_B] + b_s)                  (N, hidden)
        logits[n, k, b, d] = s (E_k h_n + e_k)[b, d]         full
        logits[n, k, b, d] = s (U (h_n * q_k) + e_k)[b, d]   factorized

    ``full`` gives every set its own expansion E_k (K * B * D * (hidden + 1)
    parameters); ``factorized`` shares U and gives every set a
    hidden-channel modulation q_k and a bias e_k (K * (hidden + B * D)
    parameters), for many classes.

    The expansion (U, E, e) starts at zero and q at one, so at initialisation
    every set weighs the branches uniformly: with ``gate='softmax'`` (weights
    1/B) CSBA starts as the class-shared multi-branch network with mean
    fusion and learns class specificity; with ``gate='sigmoid'`` every
    weight starts at 1/2, i.e. half the sum over branches (B/2 times the
    mean).

    Args:
        num_branches: Number of branches B.
        channels: Channels D of every branch.
        num_sets: Number of attention sets K (classes, or 1 for shared).
        reduction: ``hidden = max(channels // reduction, min_hidden)``.
        hidden_channels: Explicit hidden width (overrides ``reduction``), e.g.
            to match another model's parameter count.
        min_hidden: Lower bound of the hidden width.
        gate: ``'softmax'`` over branches or ``'sigmoid'``, see
            :func:`branch_weights`.
        factorized: Use the factorized expansion.
        logit_scale: ``s``, a constant factor on the logits. The gradient of
            the loss with respect to the expansion is ``s`` times larger and
            a step moves the logits ``s ** 2`` times further under SGD
            (``s`` times under Adam). With ``s = 1`` the attention's
            gradient is so small beside the head's that it stays uniform
            (docs/csba.md measures it); :class:`CSBANeck` and
            :class:`MultiBranchNeck` default to 8.
        init_cfg: Initialisation config.

    Shapes:
        input: (N, B, D) pooled features; output: (N, K, B, D) weights.
    """

    def __init__(self,
                 num_branches: int,
                 channels: int,
                 num_sets: int,
                 reduction: int = 4,
                 hidden_channels: Optional[int] = None,
                 min_hidden: int = 8,
                 gate: str = 'softmax',
                 factorized: bool = False,
                 logit_scale: float = 1.0,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if not logit_scale > 0:
            raise ValueError(f'logit_scale={logit_scale!r}: expected a '
                             'positive number')
        if gate not in GATES:
            raise ValueError(f'gate={gate!r}: expected one of {GATES}')
        if not isinstance(num_sets, int) or num_sets < 1:
            raise ValueError(f'num_sets={num_sets!r}: expected a positive '
                             'int')
        if hidden_channels is None:
            if not isinstance(reduction, int) or reduction < 1:
                raise ValueError(f'reduction={reduction!r}: expected a '
                                 'positive int')
            hidden_channels = max(channels // reduction, min_hidden)
        elif not isinstance(hidden_channels, int) or hidden_channels < 1:
            raise ValueError(f'hidden_channels={hidden_channels!r}: expected '
                             'a positive int')
        self.num_branches, self.channels = num_branches, channels
        self.num_sets, self.gate = num_sets, gate
        self.hidden_channels = hidden_channels
        self.factorized = factorized
        self.logit_scale = float(logit_scale)
        width = num_branches * channels
        self.squeeze = nn.Sequential(
            nn.Linear(width, hidden_channels), nn.ReLU(inplace=True))
        if factorized:
            self.expand = nn.Linear(hidden_channels, width, bias=False)
            self.set_embed = nn.Parameter(
                torch.ones(num_sets, hidden_channels))
            self.set_bias = nn.Parameter(torch.zeros(num_sets, width))
        else:
            self.expand = nn.Linear(hidden_channels, num_sets * width)
            nn.init.zeros_(self.expand.bias)
        nn.init.zeros_(self.expand.weight)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        n = pooled.shape[0]
        hidden = self.squeeze(pooled.flatten(1))
        if self.factorized:
            logits = self.expand(hidden[:, None, :] * self.set_embed) \
                + self.set_bias
        else:
            logits = self.expand(hidden)
        logits = logits.view(n, self.num_sets, self.num_branches,
                             self.channels)
        if self.logit_scale != 1.0:
            logits = logits * self.logit_scale
        return branch_weights(logits, self.gate)


def build_branches(in_channels: int, out_channels: Optional[int],
                   num_branches: int, branch_cfg: Optional[dict],
                   owner: str) -> MultiBranchConv:
    """The branches of a multi-branch neck, with ``branch_cfg`` checked
    against :class:`MultiBranchConv`'s arguments."""
    allowed = ('kernel_size', 'dilation', 'num_convs', 'groups',
               'stem_channels', 'conv_cfg', 'norm_cfg', 'act_cfg')
    branch_cfg = dict(branch_cfg or {})
    unknown = sorted(set(branch_cfg) - set(allowed))
    if unknown:
        raise ValueError(f'{owner}: unknown branch_cfg keys {unknown}; '
                         f'expected some of {list(allowed)}')
    if out_channels is None:
        out_channels = in_channels
    elif isinstance(out_channels, bool) or \
            not isinstance(out_channels, int) or out_channels < 1:
        raise ValueError(f'{owner}: out_channels={out_channels!r}: expected '
                         'a positive int, or None for in_channels')
    return MultiBranchConv(
        in_channels,
        out_channels,
        num_branches=num_branches,
        **branch_cfg)


def wrap_like(inputs: Features, out: torch.Tensor) -> Features:
    """Return ``out`` as a 1-tuple when the neck got a tuple, as mmpretrain's
    necks and heads expect, and bare otherwise."""
    return (out, ) if isinstance(inputs, (tuple, list)) else out
