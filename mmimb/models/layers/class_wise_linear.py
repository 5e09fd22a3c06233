"""A linear layer with separate weights for each class token."""
import math

import torch
from torch import Tensor, nn


class ClassWiseLinear(nn.Module):
    """Applies one ``nn.Linear`` per class token in a single batched product
    (SAM's per-token hypernetwork MLPs, without a Python loop over classes).

    A state dict may hold one ``nn.Linear``'s weight (out, in) and bias
    (out,) instead of the per-class ones: every class then starts from a
    copy of it, as SAM-Path starts every class's hypernetwork MLP from SAM's
    first one (``tools/model_converters/sam2mmpretrain.py`` writes it so).

    Args:
        num_classes: Number of class tokens C.
        in_features: Input width.
        out_features: Output width.

    Shape:
        (B, C, in_features) -> (B, C, out_features).
    """

    def __init__(self, num_classes: int, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(
            torch.empty(num_classes, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(num_classes, out_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # nn.Linear's default initialisation, class by class.
        bound = 1 / math.sqrt(self.weight.shape[-1])
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in ('weight', 'bias'):
            key = prefix + name
            value = state_dict.get(key)
            own = getattr(self, name)
            if value is not None and value.shape == own.shape[1:]:
                state_dict[key] = value.expand_as(own).clone()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: Tensor) -> Tensor:
        return torch.einsum('bci,coi->bco', x, self.weight) + self.bias

    def extra_repr(self) -> str:
        c, o, i = self.weight.shape
        return f'num_classes={c}, in_features={i}, out_features={o}'
