"""Log the DFA class bias while training."""
import re
from typing import List, Optional, Sequence, Tuple

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


def _safe(name: str) -> str:
    return re.sub(r'\s+', '_', str(name))


def short_names(names: Sequence[str]) -> List[str]:
    """Module names without the dotted prefix and suffix they all share,
    keeping the last shared prefix part: ``decode_head.layers.0.x.class_bias``
    and ``decode_head.layers.1.x.class_bias`` become ``layers.0`` and
    ``layers.1``."""
    parts = [name.split('.') for name in names]
    if len(parts) < 2:
        return ['' for _ in names]
    lead = 0
    while all(len(p) > lead + 1 for p in parts) and \
            len({p[lead] for p in parts}) == 1:
        lead += 1
    trail = 0
    while all(len(p) > lead + trail + 1 for p in parts) and \
            len({p[-1 - trail] for p in parts}) == 1:
        trail += 1
    return ['.'.join(p[max(lead - 1, 0):len(p) - trail]) for p in parts]


@HOOKS.register_module()
class DFABiasLoggerHook(Hook):
    """Put every DFA bias vector, per class and named, into the message hub
    after each training iteration, so that the logger writes it to the text
    log, the JSON scalars and TensorBoard at its logging interval.

    Keys, for a model with one bias vector (``bias_sharing='shared'``):

    - ``dfa_bias/<class>``: the bias ``b`` the attention applies;
    - ``dfa_bias_centred/<class>``: ``b - mean_c b``. Only differences
      between classes change the attention (adding a constant to every
      ``b_c`` changes nothing), and Adam moves the mean too, so the centred
      values are the ones to compare over training and between runs;
    - ``dfa_delta/<class>``: the learned part of an anchored bias
      (``b = prior + delta``).

    With ``bias_sharing='per_layer'`` each key names the layer,
    ``dfa_bias/layers.<i>/<class>`` and ``dfa_bias_centred/layers.<i>/<class>``
    (DFAHead's bias modules ``decode_head.layers.<i>.cross_attn_image_to_token
    .class_bias``, named by the part of their names that differs); with
    ``'per_head'`` the head, ``dfa_bias/head<h>/<class>`` and
    ``dfa_bias_centred/head<h>/<class>``.

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
        found = [(name, m) for name, m in model.named_modules()
                 if isinstance(m, DFABias) and m.bias_mode != 'none']
        if not found:
            runner.logger.warning('DFABiasLoggerHook: the model has no DFA '
                                  'bias to log')
            return
        names = short_names([name for name, _ in found])
        self._biases = [(name, m) for name, (_, m) in zip(names, found)]
        if self.class_names is None:
            meta = getattr(runner.train_dataloader.dataset, 'metainfo', {})
            self.class_names = meta.get('classes')
        num_classes = found[0][1].num_classes
        if self.class_names is None or len(self.class_names) != num_classes:
            self.class_names = [str(c) for c in range(num_classes)]

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        for name, module in self._biases:
            bias = module().detach().float()
            values = [('dfa_bias', bias),
                      ('dfa_bias_centred',
                       bias - bias.mean(dim=-1, keepdim=True))]
            if module.bias_mode == 'anchored':
                values.append(('dfa_delta', module.delta.detach()))
            for kind, value in values:
                rows = value.float().cpu().tolist()
                for h, row in enumerate(rows):
                    parts = [kind] + ([name] if name else []) + \
                        ([f'head{h}'] if len(rows) > 1 else [])
                    for cls, v in zip(self.class_names, row):
                        key = '/'.join(parts + [_safe(cls)])
                        runner.message_hub.update_scalar(f'train/{key}', v)
