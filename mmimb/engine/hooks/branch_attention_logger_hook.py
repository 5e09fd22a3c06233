"""Log how far branch attention is from uniform while training."""
from functools import partial
from typing import List

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


@HOOKS.register_module()
class BranchAttentionLoggerHook(Hook):
    """Put statistics of the branch attention of :class:`CSBANeck` and
    :class:`MultiBranchNeck` into the message hub at every training forward
    pass, so that the logger writes them (averaged over its window) to the
    text log, the JSON scalars and TensorBoard.

    Keys: ``branch_attention/from_uniform``, the mean ``|a - 1/B|`` of the
    batch's branch weights (0 while the attention is uniform, as at
    initialisation), and for class-specific attention
    ``branch_attention/class_spread``, their standard deviation over
    classes (0 for an attention that ignores the class). With several
    attention modules the module name comes after ``branch_attention/``.
    See :func:`mmimb.models.layers.attention_statistics`.
    """

    priority = 'NORMAL'  # before LoggerHook (BELOW_NORMAL) in each iteration

    def __init__(self) -> None:
        self._handles: List = []

    def before_train(self, runner) -> None:
        from mmimb.models.layers import BranchAttention
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        modules = [(name, m) for name, m in model.named_modules()
                   if isinstance(m, BranchAttention)]
        if not modules:
            runner.logger.warning('BranchAttentionLoggerHook: the model has '
                                  'no branch attention to log')
        for name, module in modules:
            prefix = 'branch_attention' if len(modules) == 1 else \
                f'branch_attention/{name}'
            self._handles.append(module.register_forward_hook(
                partial(self._record, runner.message_hub, prefix)))

    @staticmethod
    def _record(hub, prefix: str, module, inputs, weights) -> None:
        if not module.training:
            return
        from mmimb.models.layers import attention_statistics
        from_uniform, spread = attention_statistics(weights)
        hub.update_scalar(f'train/{prefix}/from_uniform', from_uniform)
        if module.num_sets > 1:
            hub.update_scalar(f'train/{prefix}/class_spread', spread)

    def after_train(self, runner) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
