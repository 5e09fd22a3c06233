"""An encoder-decoder segmentor whose backbone is frozen: SAM-Path's and
the DFA authors' setting, where only the mask decoder trains."""
from typing import List

import torch
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class FrozenBackboneEncoderDecoder(EncoderDecoder):
    """:class:`mmseg.models.EncoderDecoder` with a frozen backbone.

    The backbone's parameters do not require gradients, it stays in eval
    mode while the rest trains (dropout, drop path and normalisation
    statistics as at inference), and it runs under ``torch.no_grad()``, so
    that training keeps none of its activations. The neck, if any, and the
    heads train as usual. State-dict keys are those of ``EncoderDecoder``
    (``backbone.*``), so checkpoints and ``Pretrained`` initialisation work
    unchanged.

    Args:
        **kwargs: :class:`mmseg.models.EncoderDecoder` arguments.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.backbone.requires_grad_(False)
        self.backbone.eval()

    def train(self, mode: bool = True) -> 'FrozenBackboneEncoderDecoder':
        super().train(mode)
        self.backbone.eval()
        return self

    def extract_feat(self, inputs: Tensor) -> List[Tensor]:
        with torch.no_grad():
            x = self.backbone(inputs)
        if self.with_neck:
            x = self.neck(x)
        return x
