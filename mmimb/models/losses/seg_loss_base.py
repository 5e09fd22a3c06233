"""What mmimb's registered segmentation losses share."""
from typing import Optional, Sequence, Union

import torch
from mmseg.models.losses.utils import get_class_weight
from torch import Tensor, nn


class SegLossBase(nn.Module):
    """Holds the arguments every mmseg decode-head loss takes.

    Args:
        class_weight: Per-class weights (list or file path, read by mmseg's
            ``get_class_weight``).
        loss_weight: Multiplier of the loss.
        loss_name: Key in the loss dict; must start with ``loss_``.
    """

    def __init__(self,
                 class_weight: Optional[Union[Sequence[float], str]] = None,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_seg'):
        super().__init__()
        if not loss_name.startswith('loss_'):
            raise ValueError(f"loss_name={loss_name!r} must start with "
                             "'loss_' so that mmseg adds it to the total")
        self.class_weight = get_class_weight(class_weight)
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def class_weight_tensor(self) -> Optional[Tensor]:
        return None if self.class_weight is None else torch.as_tensor(
            self.class_weight)

    @property
    def loss_name(self) -> str:
        return self._loss_name
