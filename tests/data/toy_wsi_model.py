"""Test-only backbone for whole-slide inference: stride-1 3x3 convolutions,
so the model is translation-equivariant and each output pixel depends on the
input within ``num_convs`` pixels. Imported through ``custom_imports`` with
tests/data on PYTHONPATH. ``TOY_WSI_DELAY`` (seconds slept per forward) slows
a run down so that a test can kill it part-way.
"""
import os
import time

import torch
from mmengine.model import BaseModule
from mmseg.registry import MODELS


@MODELS.register_module()
class ToyConvBackbone(BaseModule):
    """Args:
        in_channels: Input channels.
        channels: Output channels.
        num_convs: 3x3 convolutions (0: one 1x1 convolution, pointwise).
    """
    calls = 0

    def __init__(self, in_channels=3, channels=8, num_convs=2):
        super().__init__()
        layers = []
        for i in range(max(num_convs, 1)):
            kernel = 3 if num_convs else 1
            layers += [
                torch.nn.Conv2d(in_channels if i == 0 else channels, channels,
                                kernel, padding=kernel // 2),
                torch.nn.Tanh()
            ]
        self.layers = torch.nn.Sequential(*layers)

    def forward(self, x):
        ToyConvBackbone.calls += x.shape[0]
        time.sleep(float(os.environ.get('TOY_WSI_DELAY', 0)))
        return [self.layers(x)]
