"""Deferred re-weighting (DRW; Cao et al., NeurIPS 2019) for any loss."""
import numbers
from typing import List, Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


def _start(value, name: str) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(
            value, numbers.Integral) or value < 0:
        raise ValueError(f'DRWHook: {name}={value!r}, expected an integer '
                         '>= 0')
    return int(value)


@HOOKS.register_module()
class DRWHook(Hook):
    """Switch the class-balanced weights of every ``ClassBalancedLoss`` in
    the model off before ``start_epoch`` (or ``start_iter``) and on from
    it: LDAM-DRW's schedule, where the loss is unweighted for 160 epochs
    and weighted with ``beta = 0.9999`` for the last 40 (``cifar_train.py``,
    ``betas[epoch // 160]``), usable with any wrapped loss.

    The state follows from the epoch (iteration) alone, so a resumed run
    continues correctly.

    Args:
        start_epoch (int, optional): First epoch (0-based, as mmengine
            counts) with the weights on.
        start_iter (int, optional): First iteration with the weights on, for
            iteration-based loops. Give exactly one of the two.
    """

    priority = 'NORMAL'

    def __init__(self,
                 start_epoch: Optional[int] = None,
                 start_iter: Optional[int] = None):
        self.start_epoch = _start(start_epoch, 'start_epoch')
        self.start_iter = _start(start_iter, 'start_iter')
        if (self.start_epoch is None) == (self.start_iter is None):
            raise ValueError('DRWHook: give exactly one of start_epoch and '
                             'start_iter')
        self._losses: List = []
        self._on: Optional[bool] = None

    def before_train(self, runner) -> None:
        from mmimb.models.losses import ClassBalancedLoss
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        self._losses = [
            m for m in model.modules() if isinstance(m, ClassBalancedLoss)
        ]
        if not self._losses:
            raise ValueError(
                'DRWHook: the model has no ClassBalancedLoss to switch on; '
                "wrap the head's loss, e.g. loss=dict(type="
                "'ClassBalancedLoss', loss=dict(type='LDAMLoss', ...), "
                "class_counts='auto', beta=0.9999)")

    def _set(self, runner, on: bool) -> None:
        for loss in self._losses:
            loss.enabled = on
        if on != self._on:
            when = f'epoch {runner.epoch}' if self.start_epoch is not None \
                else f'iteration {runner.iter}'
            runner.logger.info(
                f'DRWHook: class-balanced weights {"on" if on else "off"} '
                f'from {when}')
            self._on = on

    def before_train_epoch(self, runner) -> None:
        if self.start_epoch is not None:
            self._set(runner, runner.epoch >= self.start_epoch)

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch=None) -> None:
        if self.start_iter is not None:
            self._set(runner, runner.iter >= self.start_iter)
