"""Turn an MMSegmentation segmentor or MMPretrain classifier and a data
batch into what :mod:`mmimb.analysis` needs: preprocessed inputs, integer
targets, the number of classes and the label to ignore.

``model(inputs)`` of both libraries runs ``mode='tensor'``: mmpretrain's
ImageClassifier returns the head's logits, mmseg's segmentors the decode
head's low-resolution logits, which the analysis resizes to label size as
the decode head's loss does (bilinear, the head's ``align_corners``).
"""
import copy
import math
import random
from contextlib import contextmanager
from dataclasses import dataclass
from typing import (Callable, Iterable, Iterator, List, Optional, Sequence,
                    Tuple, Union)

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.model import is_model_wrapper
from torch import Tensor, nn

from mmimb.analysis import ClassGradients, class_gradients
from mmimb.analysis.class_gradients import LossError


@dataclass
class Probe:
    """A batch ready for :func:`mmimb.analysis.class_gradients`.

    Args:
        inputs: Preprocessed images, shape (N, 3, H, W).
        targets: Class indices, shape (N,) or (N, H, W).
        num_classes: Classes the model predicts.
        ignore_index: Label excluded from the analysis, or None.
        align_corners: Of the resize of segmentation logits to label size.
    """
    inputs: Tensor
    targets: Tensor
    num_classes: int
    ignore_index: Optional[int] = None
    align_corners: bool = False

    def kwargs(self) -> dict:
        """Keyword arguments for ``class_gradients``."""
        return dict(
            num_classes=self.num_classes,
            ignore_index=self.ignore_index,
            align_corners=self.align_corners)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside a (Distributed)DataParallel wrapper.

    The analysis runs on the bare module so that its backward passes do not
    trigger the wrapper's gradient synchronisation.
    """
    return model.module if is_model_wrapper(model) else model


def _preprocess(model: nn.Module, data_batch: dict) -> dict:
    pre = model.data_preprocessor
    augments = getattr(pre, 'batch_augments', None)
    # training=True pads and stacks segmentation labels as in a training
    # step; batch augmentations (Mixup, CutMix) are switched off because
    # their soft labels have no class. The copy keeps the caller's data
    # samples unmodified.
    if augments is not None:
        pre.batch_augments = None
    try:
        return pre(copy.deepcopy(data_batch), training=True)
    finally:
        if augments is not None:
            pre.batch_augments = augments


def probe_batch(model: nn.Module, data_batch: dict) -> Probe:
    """Preprocess a data batch of a segmentor or classifier.

    Args:
        model: An mmseg segmentor (with ``decode_head``) or an mmpretrain
            classifier (with ``head.num_classes``), unwrapped.
        data_batch: A batch from the model's dataloader.

    Raises:
        ValueError: For a model of another kind, a binary sigmoid decode
            head, or multi-label samples.
    """
    data = _preprocess(model, data_batch)
    inputs, samples = data['inputs'], data['data_samples']
    head = getattr(model, 'decode_head', None)
    if head is not None:
        if getattr(head, 'out_channels', head.num_classes) != \
                head.num_classes:
            raise ValueError(
                f'decode_head has out_channels={head.out_channels} for '
                f'num_classes={head.num_classes} (a sigmoid head); the '
                'gradient conflict analysis needs one logit per class')
        targets = torch.stack(
            [s.gt_sem_seg.data.reshape(s.gt_sem_seg.data.shape[-2:])
             for s in samples]).long()
        return Probe(inputs, targets, head.num_classes,
                     getattr(head, 'ignore_index', None),
                     bool(getattr(head, 'align_corners', False)))
    head = getattr(model, 'head', None)
    if head is not None and hasattr(head, 'num_classes'):
        labels = [s.gt_label for s in samples]
        multi = [i for i, label in enumerate(labels) if label.numel() != 1]
        if multi:
            count = labels[multi[0]].numel()
            raise ValueError(
                f'sample {multi[0]} of the batch has {count} labels; the '
                'gradient conflict analysis needs one class per sample')
        return Probe(inputs, torch.cat(labels).long().to(inputs.device),
                     head.num_classes)
    raise ValueError(
        f'{type(model).__name__} is neither an mmseg segmentor (with a '
        'decode_head) nor an mmpretrain classifier (with head.num_classes)')


def probe_class_gradients(model: nn.Module, batches: Iterable[dict],
                          **kwargs) -> Tuple[ClassGradients, Probe]:
    """Class gradients over data batches: each class's loss averaged over
    all its samples (pixels) in them. Each batch's class gradients are added
    to the earlier ones layer by layer.

    Args:
        model: The unwrapped segmentor or classifier.
        batches: Data batches of its dataloader (at least one).
        **kwargs: For :func:`mmimb.analysis.class_gradients` (``layers``,
            ``mode``, ``statistic``, ``loss_fn``, ...).

    Returns:
        The merged class gradients and the last batch's probe.
    """
    merged, probe = None, None
    for batch in batches:
        probe = probe_batch(model, batch)
        merged = class_gradients(model, (probe.inputs, probe.targets),
                                 accumulate=merged, **kwargs,
                                 **probe.kwargs())
    if merged is None:
        raise ValueError('no batch to analyse')
    return merged, probe


def module_loss(losses: nn.Module) -> Tuple[Callable, str]:
    """A loss module (or a ModuleList of them, added) as
    ``loss_fn(logits, targets, reduction='none')``, called with
    ``reduction_override``, and its name."""
    modules = list(losses) if isinstance(losses, nn.ModuleList) else \
        [losses]

    def loss_fn(logits, targets, reduction='none'):
        total = None
        for module in modules:
            value = module(logits, targets, reduction_override=reduction)
            total = value if total is None else total + value
        return total

    return loss_fn, '+'.join(type(m).__name__ for m in modules)


def model_loss(model: nn.Module) -> Tuple[Optional[Callable], str]:
    """The model's own loss (mmseg: the decode head's ``loss_decode``;
    mmpretrain: the head's ``loss_module``) by :func:`module_loss`, and its
    name; ``(None, reason)`` for a model without one. Whether it really is
    per-element is checked by the analysis."""
    head = getattr(model, 'decode_head', None)
    losses = getattr(head, 'loss_decode', None) if head is not None else \
        getattr(getattr(model, 'head', None), 'loss_module', None)
    if losses is None:
        return None, 'the model has no decode_head.loss_decode or ' \
            'head.loss_module'
    return module_loss(losses)


class ProbeLoss:
    """The loss a gradient analysis of a model uses.

    Args:
        spec: None: the model's own loss (:func:`model_loss`) if it gives a
            loss per sample (pixel) that depends on that sample's logits
            only, else cross-entropy (with a warning); ``'cross_entropy'``;
            a loss config dict (built by mmengine's registry, called with
            ``reduction_override``); or a callable
            ``loss_fn(logits, targets, reduction='none')``.
    """

    def __init__(self, spec: Union[None, str, dict, Callable] = None):
        if not (spec is None or spec == 'cross_entropy'
                or isinstance(spec, dict) or callable(spec)):
            raise ValueError(f'loss_fn={spec!r}; expected None, '
                             "'cross_entropy', a loss config or a callable")
        self.spec = spec
        self.fn: Optional[Callable] = None
        self.name = ''

    def _resolve(self, model: nn.Module, warn: Callable[[str], None]):
        if self.spec == 'cross_entropy':
            self.fn, self.name = F.cross_entropy, 'cross_entropy'
        elif callable(self.spec):
            self.fn = self.spec
            self.name = getattr(self.spec, '__name__',
                                type(self.spec).__name__)
        elif isinstance(self.spec, dict):
            from mmengine.registry import MODELS
            self.fn, self.name = module_loss(MODELS.build(self.spec))
        else:
            self.fn, self.name = model_loss(model)
            if self.fn is None:
                warn(f'{self.name}; using cross-entropy')
                self.fn, self.name = F.cross_entropy, 'cross_entropy'

    def class_gradients(self, model: nn.Module, batches: Sequence[dict],
                        warn: Callable[[str], None],
                        **kwargs) -> Tuple[ClassGradients, Probe]:
        """:func:`probe_class_gradients` with this loss; the model's own
        loss is replaced by cross-entropy (for good, with a warning) if the
        analysis refuses it."""
        if self.fn is None:
            self._resolve(model, warn)
        try:
            return probe_class_gradients(model, batches, loss_fn=self.fn,
                                         **kwargs)
        except LossError as err:
            if self.spec is not None or self.fn is F.cross_entropy:
                raise
            warn(f"the model's loss {self.name} cannot be used ({err}); "
                 'using cross-entropy')
            self.fn, self.name = F.cross_entropy, 'cross_entropy'
            return probe_class_gradients(model, batches, loss_fn=self.fn,
                                         **kwargs)


def cold_batch_norms(model: nn.Module,
                     weight: float = 0.01) -> List[Tuple[str, int, int]]:
    """The BatchNorm layers in training mode whose running statistics still
    weigh their initial values by more than ``weight``: (name, batches
    seen, batches needed). With momentum m the initial values weigh
    ``(1 - m) ** t`` after t batches (none after one batch with the
    cumulative average, ``momentum=None``)."""
    cold = []
    for name, module in model.named_modules():
        if not isinstance(module, nn.modules.batchnorm._BatchNorm) or \
                not module.training or not module.track_running_stats:
            continue
        m = module.momentum
        needed = 1 if m is None or m >= 1 else math.ceil(
            math.log(weight) / math.log(1 - m))
        seen = int(module.num_batches_tracked)
        if seen < needed:
            cold.append((name, seen, needed))
    return cold


def class_names(dataset) -> Optional[Sequence[str]]:
    """The dataset's class names from its metainfo, if it has any."""
    meta = getattr(dataset, 'metainfo', None) or {}
    names = meta.get('classes')
    return list(names) if names else None


@contextmanager
def preserved_rng() -> Iterator[None]:
    """Restore Python's, NumPy's and torch's (CPU and CUDA) random states on
    exit, so that work done inside leaves the training's random stream as
    it was."""
    py_state = random.getstate()
    np_state = np.random.get_state()
    devices = list(range(torch.cuda.device_count())) \
        if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)
