"""An image classifier whose feature extractor is frozen: the second stage
of decoupled training (Kang et al., ICLR 2020), where only the classifier
is re-trained (cRT) or re-scaled (LWS) on class-balanced batches."""
from typing import Sequence

from mmpretrain.models.classifiers import ImageClassifier
from mmpretrain.registry import MODELS
from torch.nn.modules.batchnorm import _BatchNorm


@MODELS.register_module()
class FrozenBackboneClassifier(ImageClassifier):
    """``ImageClassifier`` with the parameters of ``frozen`` submodules
    excluded from training (``requires_grad=False``, set when the model is
    built, before a distributed wrapper sees it).

    As in the authors' code (classifier-balancing ``run_networks.py``), the
    frozen modules stay in training mode, so their batch-norm statistics
    follow the (class-balanced) second-stage batches; ``norm_eval=True``
    keeps the first stage's statistics instead.

    Args:
        frozen (Sequence[str]): Submodules to freeze. Defaults to
            ``('backbone', 'neck')``; an absent neck is skipped.
        norm_eval (bool): Keep the batch-norm layers of the frozen modules
            in eval mode. Defaults to False (the authors').
        **kwargs: Arguments of ``ImageClassifier`` (``backbone``, ``neck``,
            ``head``, ``data_preprocessor``, ...).
    """

    def __init__(self,
                 frozen: Sequence[str] = ('backbone', 'neck'),
                 norm_eval: bool = False,
                 **kwargs):
        super().__init__(**kwargs)
        if isinstance(frozen, str):
            frozen = (frozen, )
        self.frozen = tuple(frozen)
        self.norm_eval = bool(norm_eval)
        for name in self.frozen:
            if name == 'neck' and not self.with_neck:
                continue
            module = getattr(self, name, None)
            if module is None:
                raise ValueError(
                    f'FrozenBackboneClassifier: frozen={self.frozen} names '
                    f'{name!r}, which is not a submodule (expected backbone, '
                    'neck or head)')
            module.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and self.norm_eval:
            for name in self.frozen:
                module = getattr(self, name, None)
                for m in module.modules() if module is not None else ():
                    if isinstance(m, _BatchNorm):
                        m.eval()
        return self
