"""A classification head that scores every class from its own feature."""
from typing import Sequence, Union

import torch
import torch.nn as nn
from mmpretrain.models.heads import ClsHead
from mmpretrain.registry import MODELS


def class_wise_linear(feats: torch.Tensor, weight: torch.Tensor,
                      bias: torch.Tensor) -> torch.Tensor:
    """Score class c from its own feature only.

    Args:
        feats: (N, C, D) class-specific features z_c.
        weight: (C, D), one weight vector per class.
        bias: (C, ), one bias per class.

    Returns:
        torch.Tensor: (N, C), ``scores[n, c] = <weight[c], feats[n, c]> +
        bias[c]``.
    """
    return torch.einsum('ncd,cd->nc', feats, weight) + bias


@MODELS.register_module()
class ClassWiseLinearClsHead(ClsHead):
    """Linear head over class-specific features, e.g. from
    :class:`CSBANeck`: class c has one weight vector and one bias and sees
    only its own feature z_c.

    Loss, accuracy and predictions behave as in mmpretrain's
    ``LinearClsHead`` (it is a :class:`ClsHead`), so any registered loss
    (cross-entropy, logit-adjusted, Balanced Softmax, CCAR) works unchanged.

    Args:
        num_classes: Number of classes C.
        in_channels: Channels D of every class-specific feature.
        init_std: Standard deviation of the normal initialisation of the
            weights (biases start at 0), as ``LinearClsHead``'s default.
        **kwargs: ``loss``, ``topk``, ``cal_acc``, ``init_cfg`` of
            :class:`ClsHead`.

    Shapes:
        input: (N, C, D), or a tuple whose last item is that.
        output: (N, C) scores.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 init_std: float = 0.01,
                 **kwargs):
        super().__init__(**kwargs)
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f'ClassWiseLinearClsHead: num_classes='
                             f'{num_classes!r}: expected a positive int')
        self.num_classes, self.in_channels = num_classes, in_channels
        self.weight = nn.Parameter(
            torch.randn(num_classes, in_channels) * init_std)
        self.bias = nn.Parameter(torch.zeros(num_classes))

    def pre_logits(self, feats: Union[torch.Tensor, Sequence[torch.Tensor]]
                   ) -> torch.Tensor:
        """The class-specific features: ``feats`` itself or its last item."""
        z = feats[-1] if isinstance(feats, (tuple, list)) and feats \
            else feats
        expected = (self.num_classes, self.in_channels)
        if not torch.is_tensor(z) or z.dim() != 3 or \
                tuple(z.shape[1:]) != expected:
            found = tuple(z.shape) if torch.is_tensor(z) \
                else type(z).__name__
            raise ValueError(
                'ClassWiseLinearClsHead expects class-specific features '
                f'(N, num_classes={expected[0]}, in_channels={expected[1]}) '
                f'such as CSBANeck gives, got {found}; a neck giving one '
                'feature per sample (N, D) goes with LinearClsHead')
        return z

    def forward(self, feats: Union[torch.Tensor, Sequence[torch.Tensor]]
                ) -> torch.Tensor:
        return class_wise_linear(self.pre_logits(feats), self.weight,
                                 self.bias)
