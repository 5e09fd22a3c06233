"""The CIFAR ResNet of He et al. (CVPR 2016, section 4.2).

Three stages of ``n`` basic blocks with 16, 32 and 64 channels on 32x32
inputs, depth ``6n + 2`` (20, 32, 44, 56, 110): the network of the
long-tailed CIFAR literature (LDAM-DRW, logit adjustment, CCAR), where
ResNet-32 has about 0.46M parameters. mmpretrain's ``ResNet_CIFAR`` is a
different network (ImageNet ResNet stages with a 3x3 stem, 11M parameters
at depth 18).
"""
from typing import Sequence

import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from mmpretrain.models.backbones.resnet import BasicBlock
from mmpretrain.registry import MODELS
from torch import Tensor

SHORTCUTS = ('A', 'B')


class PadShortcut(nn.Module):
    """He et al.'s option A shortcut: subsample by the stride and pad the
    new channels with zeros, half before and half after (as LDAM-DRW's
    ``LambdaLayer``). No parameters.

    Args:
        in_channels: Channels of the input.
        out_channels: Channels of the output, at least ``in_channels``.
        stride: Spatial subsampling factor.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.stride = stride
        extra = out_channels - in_channels
        self.pad = (extra // 2, extra - extra // 2)

    def forward(self, x: Tensor) -> Tensor:
        x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, *self.pad))


@MODELS.register_module()
class CifarResNet(BaseBackbone):
    """He et al.'s 3-stage ResNet for 32x32 images (CIFAR), as used by the
    long-tailed CIFAR benchmarks.

    A 3x3 convolution to ``base_channels``, then three stages of
    ``(depth - 2) / 6`` basic blocks with ``base_channels * (1, 2, 4)``
    channels, the last two starting with stride 2.

    Args:
        depth (int): ``6n + 2``: 20, 32, 44, 56, 110, ... Defaults to 32.
        in_channels (int): Input channels. Defaults to 3.
        base_channels (int): Channels of the stem and the first stage.
            Defaults to 16.
        shortcut (str): ``'A'``: parameter-free zero-padding shortcut where
            the shape changes (He et al.'s CIFAR choice, LDAM-DRW's
            ``resnet32``); ``'B'``: 1x1 convolution and norm. Defaults to
            ``'A'``.
        out_indices (Sequence[int]): Stages (0-2) whose outputs are
            returned. Defaults to ``(2, )``: the last stage,
            (N, 4 * base_channels, H / 4, W / 4).
        norm_cfg (dict): Norm layers. Defaults to ``dict(type='BN')``.
        init_cfg (dict | list, optional): Defaults to Kaiming-normal
            convolutions (fan-in, as LDAM-DRW) and unit norm weights.
    """

    def __init__(self,
                 depth: int = 32,
                 in_channels: int = 3,
                 base_channels: int = 16,
                 shortcut: str = 'A',
                 out_indices: Sequence[int] = (2, ),
                 norm_cfg: dict = dict(type='BN'),
                 init_cfg=(dict(
                     type='Kaiming',
                     layer='Conv2d',
                     mode='fan_in',
                     nonlinearity='relu',
                     distribution='normal'),
                           dict(
                               type='Constant',
                               val=1,
                               layer=['_BatchNorm', 'GroupNorm']))):
        super().__init__(
            init_cfg=list(init_cfg) if isinstance(init_cfg, tuple) else
            init_cfg)
        if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
            raise ValueError(f'CifarResNet: depth={depth!r}, expected 6n + 2 '
                             'with n >= 1 (20, 32, 44, 56, 110)')
        if shortcut not in SHORTCUTS:
            raise ValueError(f'CifarResNet: shortcut={shortcut!r}, expected '
                             f'one of {SHORTCUTS}')
        out_indices = tuple(out_indices)
        if not out_indices or any(i not in (0, 1, 2) for i in out_indices):
            raise ValueError(f'CifarResNet: out_indices={out_indices}, '
                             'expected stage indices in 0..2')
        self.depth = depth
        self.shortcut = shortcut
        self.out_indices = out_indices
        self.num_blocks = (depth - 2) // 6

        self.conv1 = build_conv_layer(
            None, in_channels, base_channels, 3, padding=1, bias=False)
        self.norm1_name, norm1 = build_norm_layer(
            norm_cfg, base_channels, postfix=1)
        self.add_module(self.norm1_name, norm1)
        self.relu = nn.ReLU(inplace=True)

        self.stage_names = []
        channels = base_channels
        for i, width in enumerate(base_channels * m for m in (1, 2, 4)):
            blocks = []
            for j in range(self.num_blocks):
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(
                    BasicBlock(
                        channels,
                        width,
                        stride=stride,
                        downsample=self._shortcut(channels, width, stride,
                                                  norm_cfg),
                        norm_cfg=norm_cfg))
                channels = width
            name = f'layer{i + 1}'
            self.add_module(name, nn.Sequential(*blocks))
            self.stage_names.append(name)

    def _shortcut(self, in_channels: int, out_channels: int, stride: int,
                  norm_cfg: dict):
        if stride == 1 and in_channels == out_channels:
            return None
        if self.shortcut == 'A':
            return PadShortcut(in_channels, out_channels, stride)
        return nn.Sequential(
            build_conv_layer(
                None, in_channels, out_channels, 1, stride=stride,
                bias=False),
            build_norm_layer(norm_cfg, out_channels)[1])

    @property
    def norm1(self):
        return getattr(self, self.norm1_name)

    def forward(self, x: Tensor) -> tuple:
        """(N, C_in, H, W) -> tuple of the selected stages' outputs."""
        x = self.relu(self.norm1(self.conv1(x)))
        outs = []
        for i, name in enumerate(self.stage_names):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
