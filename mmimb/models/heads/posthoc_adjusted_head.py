"""Post-hoc logit adjustment (Menon et al., "Long-tail learning via logit
adjustment", ICLR 2021, Eq. 3): predict with ``argmax_c z_c - tau log pi_c``
from a model trained with plain cross-entropy."""
from typing import List, Optional, Tuple

import torch
from mmpretrain.models.heads import LinearClsHead
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from mmimb.utils import load_class_freq


@MODELS.register_module()
class PostHocAdjustedClsHead(LinearClsHead):
    """``LinearClsHead`` whose predictions use the logits minus
    ``tau * log(pi)``, ``pi`` the training class prior; training (the loss)
    sees the plain logits.

    The scores are the softmax of the adjusted logits. The authors' code
    (google-research ``logit_adjustment/main.py``) subtracts
    ``log(pi ** tau + 1e-12)``; the ``1e-12`` only matters for a class
    whose prior is below about 1e-10, which ``class_freq`` refuses anyway
    (every class must occur).

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Feature channels.
        class_freq (list | str): Training class counts or frequencies, a
            class-statistics JSON path, or ``'auto'`` (mmimb's runner).
        tau (float): Strength of the adjustment; 0 predicts as
            ``LinearClsHead``. Defaults to 1.0 (the authors').
        **kwargs: Arguments of ``LinearClsHead``.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 class_freq,
                 tau: float = 1.0,
                 **kwargs):
        super().__init__(num_classes, in_channels, **kwargs)
        freq = load_class_freq(
            class_freq, num_classes,
            name='PostHocAdjustedClsHead.class_freq')
        self.register_buffer('log_prior', freq.log().float(),
                             persistent=False)
        self.tau = float(tau)

    def predict(
        self,
        feats: Tuple[torch.Tensor],
        data_samples: Optional[List[Optional[DataSample]]] = None
    ) -> List[DataSample]:
        adjusted = self(feats) - self.tau * self.log_prior.to(feats[-1])
        return self._get_predictions(adjusted, data_samples)
