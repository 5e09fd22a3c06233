"""The classifier adjustments of decoupled training (Kang et al.,
"Decoupling Representation and Classifier for Long-Tailed Recognition",
ICLR 2020), as heads that load a first-stage ``LinearClsHead``'s weights.

- tau-normalisation: score with ``w_c / ||w_c|| ** tau`` and no bias, after
  training, without any data (the authors' ``tau_norm.py``);
- learnable weight scaling (LWS): ``f_c * (w_c . x + b_c)`` with the linear
  layer frozen and only the scales ``f`` trained, on class-balanced batches
  (their ``TauNormClassifier.py``, which is the LWS classifier).

Classifier re-training (cRT) needs no head of its own: a fresh
``LinearClsHead`` trained on the frozen features of
``FrozenBackboneClassifier`` with ``ClassBalancedSampler``.
"""
import numbers
from typing import Tuple

import torch
import torch.nn as nn
from mmpretrain.models.heads import LinearClsHead
from mmpretrain.registry import MODELS


def tau_normalized_logits(feats: torch.Tensor, weight: torch.Tensor,
                          tau: float) -> torch.Tensor:
    """``x . w_c / ||w_c|| ** tau`` for (N, D) features and (C, D) weights.

    ``tau = 0`` is the plain dot product, ``tau = 1`` scores with unit
    weight vectors.
    """
    norms = weight.norm(dim=1, keepdim=True)
    return feats @ (weight / norms.pow(tau)).t()


@MODELS.register_module()
class TauNormClsHead(LinearClsHead):
    """``LinearClsHead`` with tau-normalised weights (Kang et al. 2020):
    ``logits_c = x . w_c / ||w_c|| ** tau``, without the bias, as the
    authors' ``tau_norm.py`` scores.

    Meant for testing a first-stage model (its ``fc.weight`` loads as is);
    the authors pick ``tau`` on a validation set, from 0 to 2.

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Feature channels.
        tau (float): Normalisation power, >= 0. Defaults to 1.0.
        **kwargs: Arguments of ``LinearClsHead``.
    """

    def __init__(self, num_classes: int, in_channels: int, tau: float = 1.0,
                 **kwargs):
        super().__init__(num_classes, in_channels, **kwargs)
        if isinstance(tau, bool) or not isinstance(
                tau, numbers.Real) or not tau >= 0:
            raise ValueError(f'TauNormClsHead: tau={tau!r}, expected a '
                             'number >= 0')
        self.tau = float(tau)

    def forward(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        return tau_normalized_logits(
            self.pre_logits(feats), self.fc.weight, self.tau)


@MODELS.register_module()
class LWSClsHead(LinearClsHead):
    """``LinearClsHead`` with learnable weight scaling (Kang et al. 2020):
    ``logits_c = f_c * (w_c . x + b_c)``, ``f`` initialised to 1 and the
    linear layer frozen, as the authors' LWS classifier.

    Load the first-stage model's weights (``load_from``); ``scales`` is the
    only trainable parameter of the head.

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Feature channels.
        **kwargs: Arguments of ``LinearClsHead``.
    """

    def __init__(self, num_classes: int, in_channels: int, **kwargs):
        super().__init__(num_classes, in_channels, **kwargs)
        self.scales = nn.Parameter(torch.ones(num_classes))
        self.fc.requires_grad_(False)

    def forward(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        return self.fc(self.pre_logits(feats)) * self.scales
