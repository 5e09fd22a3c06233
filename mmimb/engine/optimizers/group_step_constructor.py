"""Step options of single parameter groups: a learning rate that no
scheduler changes, and a gradient-norm clip of the group alone.

The DFA authors optimise the bias delta so (their ``pl_module_sam_seg.py``:
a constant learning rate in a ``LambdaLR`` of its own, and
``clip_grad_norm_([delta], 0.5)`` in ``on_before_optimizer_step``). Both act
in a step pre-hook of the torch optimizer, which runs inside every wrapper's
``optimizer.step()``: with mmengine's ``OptimWrapper`` and mmimb's
``CPUAmpOptimWrapper``, with ``AmpOptimWrapper`` after the loss scaler has
unscaled the gradients (``GradScaler.step`` unscales, then steps; a step it
skips for an overflow runs no hook), and with ``accumulative_counts`` on the
accumulated gradient, once per optimizer step. So ``--amp`` and gradient
accumulation compose with it, whatever the wrapper type.
"""
import logging
from typing import List

import torch
from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch import nn


def apply_group_step_options(optimizer: torch.optim.Optimizer, args,
                             kwargs) -> None:
    """Optimizer step pre-hook: for each parameter group with
    ``constant_lr=True`` set the learning rate back to the group's
    ``initial_lr`` (what schedulers started from, i.e. the configured
    value), and clip the gradient norm of each group with
    ``max_grad_norm``."""
    for group in optimizer.param_groups:
        if group.get('constant_lr'):
            group['lr'] = group.get('initial_lr', group['lr'])
        max_norm = group.get('max_grad_norm')
        if max_norm:
            grads: List[nn.Parameter] = [
                p for p in group['params'] if p.grad is not None
            ]
            if grads:
                torch.nn.utils.clip_grad_norm_(grads, max_norm)


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class GroupStepOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmengine's default constructor, plus two options per parameter group
    in ``paramwise_cfg.custom_keys``:

    - ``constant_lr=True``: the group keeps its configured learning rate
      (base lr x ``lr_mult``) at every step; warm-up and decay schedulers
      act on the other groups only.
    - ``max_grad_norm=X``: before each optimizer step the group's gradient
      is clipped to total norm X, on its own.

    For example (the DFA authors' bias group)::

        optim_wrapper = dict(
            constructor='GroupStepOptimWrapperConstructor',
            optimizer=dict(type='AdamW', lr=1e-4, weight_decay=1e-2),
            paramwise_cfg=dict(custom_keys={'dfa_delta': dict(
                lr_mult=20.0, decay_mult=0.0, constant_lr=True,
                max_grad_norm=0.5)}))

    Modules without a trainable parameter (a frozen backbone) are left out
    of the parameter groups with one log line, rather than one warning per
    parameter.

    Args:
        optim_wrapper_cfg: As for :class:`DefaultOptimWrapperConstructor`.
        paramwise_cfg: As for :class:`DefaultOptimWrapperConstructor`, with
            the two keys above.
    """

    def __call__(self, model: nn.Module) -> OptimWrapper:
        frozen = sum(p.numel() for p in model.parameters()
                     if not p.requires_grad)
        if frozen and self.paramwise_cfg:
            print_log(
                f'{frozen} frozen parameters (requires_grad=False) are left '
                'out of the optimizer', logger='current', level=logging.INFO)
        optim_wrapper = super().__call__(model)
        optimizer = optim_wrapper.optimizer
        if any(
                group.get('constant_lr') or group.get('max_grad_norm')
                for group in optimizer.param_groups):
            optimizer.register_step_pre_hook(apply_group_step_options)
        return optim_wrapper

    def add_params(self, params, module: nn.Module, prefix: str = '',
                   is_dcn_module=None) -> None:
        if not any(p.requires_grad for p in module.parameters()):
            return
        super().add_params(params, module, prefix, is_dcn_module)
