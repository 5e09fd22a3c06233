"""Log the DFA class bias while training."""
import re
from typing import List, Optional, Sequence, Tuple

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


def _safe(name: str) -> str:
    return re.sub(r'\s+', '_', str(name))


@HOOKS.register_module()
class DFABiasLoggerHook(Hook):
    """Put every DFA bias vector, per class and named, into the message hub
    after each training iteration, so that the logger writes it to the text
    log, the JSON scalars and TensorBoard at its logging interval.

    The keys are ``dfa_bias/<class>`` for the bias the attention applies
    (``b``), and ``dfa_delta/<class>`` for the learned part of an anchored
    bias (``b = prior + delta``). Several bias modules (``per_layer``) add
    their module name, per-head biases ``head<h>``:
    ``dfa_bias/layers.0.cross_attn_image_to_token/head3/<class>``.

    Args:
        class_names: Names of the classes; by default the training dataset's
            ``metainfo['classes']``, else class indices.
    """

    priority = 'NORMAL'  # before LoggerHook (BELOW_NORMAL) in each iteration

    def __init__(self, class_names: Optional[Sequence[str]] = None):
        self.class_names = class_names
        self._biases: List[Tuple[str, object]] = []

    def before_train(self, runner) -> None:
        from mmimb.models.layers import DFABias
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        self._biases = [(name, m) for name, m in model.named_modules()
                        if isinstance(m, DFABias) and m.bias_mode != 'none']
        if not self._biases:
            runner.logger.warning('DFABiasLoggerHook: the model has no DFA '
                                  'bias to log')
            return
        if self.class_names is None:
            meta = getattr(runner.train_dataloader.dataset, 'metainfo', {})
            self.class_names = meta.get('classes')
        num_classes = self._biases[0][1].num_classes
        if self.class_names is None or len(self.class_names) != num_classes:
            self.class_names = [str(c) for c in range(num_classes)]

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        single = len(self._biases) == 1
        for name, module in self._biases:
            values = [('dfa_bias', module().detach())]
            if module.bias_mode == 'anchored':
                values.append(('dfa_delta', module.delta.detach()))
            for kind, value in values:
                rows = value.float().cpu().tolist()
                for h, row in enumerate(rows):
                    parts = [kind] + ([] if single else [name]) + \
                        ([f'head{h}'] if len(rows) > 1 else [])
                    for cls, v in zip(self.class_names, row):
                        key = '/'.join(parts + [_safe(cls)])
                        runner.message_hub.update_scalar(f'train/{key}', v)
