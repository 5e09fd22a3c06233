"""A linear head on normalised features and weights: cosine-similarity
logits, the classifier LDAM is trained with."""
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.models.heads import LinearClsHead
from mmpretrain.registry import MODELS


def cosine_logits(feats: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``cos(x_n, w_c)``: (N, D) features against (C, D) weights, (N, C)."""
    return F.linear(F.normalize(feats, dim=1), F.normalize(weight, dim=1))


@MODELS.register_module()
class CosineLinearClsHead(LinearClsHead):
    """``LinearClsHead`` whose logits are the cosine similarities between
    the feature and each class's weight vector, in ``[-1, 1]``, without a
    bias: LDAM-DRW's ``NormedLinear`` (``use_norm=True`` with the LDAM
    loss, which scales the cosines by ``s = 30``).

    The scores (``pred_score``) are the softmax of the cosines, as the
    authors' model outputs them at test time; they are far less peaked than
    the training softmax of ``s`` times the cosines.

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Feature channels.
        **kwargs: ``loss``, ``topk``, ``cal_acc``, ``init_cfg`` of
            ``LinearClsHead``. The default initialisation (normal weights)
            gives directions uniform on the sphere; LDAM-DRW draws them
            uniformly in a cube, a detail normalisation makes minor.

    Shapes:
        input: (N, in_channels), or a tuple whose last item is that.
        output: (N, num_classes).
    """

    def __init__(self, num_classes: int, in_channels: int, **kwargs):
        super().__init__(num_classes, in_channels, **kwargs)
        self.fc = nn.Linear(in_channels, num_classes, bias=False)

    def forward(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        return cosine_logits(self.pre_logits(feats), self.fc.weight)
