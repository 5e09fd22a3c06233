"""Run a convolutional model in the channels-last memory format."""
from typing import Optional

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


def _channels_last_inputs(module, args, data: dict) -> dict:
    inputs = data.get('inputs') if isinstance(data, dict) else None
    if torch.is_tensor(inputs) and inputs.dim() == 4:
        data['inputs'] = inputs.contiguous(memory_format=torch.channels_last)
    return data


@HOOKS.register_module()
class ChannelsLastHook(Hook):
    """Store the model's 4-D weights and its input batches channels-last
    (NHWC), for training, validation and test alike.

    oneDNN's CPU convolutions, and cuDNN's with Tensor Cores, are fastest in
    NHWC, above all in bf16 (``CPUAmpOptimWrapper``, ``AmpOptimWrapper``):
    on ResNet-32 at batch 128 on a 2-core CPU, bf16 + channels-last trains
    about twice as fast as bf16 alone (``benchmarks/cpu_training.py``).
    Models without convolutions gain nothing; the benchmark says which.

    The model is converted in ``before_run`` (``Module.to(memory_format=
    torch.channels_last)`` touches 4-D tensors only), and a forward hook on
    its data preprocessor makes every 4-D ``inputs`` batch channels-last.
    Under DDP the parameters change layout after the wrapper was built;
    gradients are still reduced correctly (the buckets copy them).

    Example::

        custom_hooks = [dict(type='ChannelsLastHook')]
    """

    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self._handle: Optional[torch.utils.hooks.RemovableHandle] = None

    def before_run(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) \
            else runner.model
        model.to(memory_format=torch.channels_last)
        if self._handle is None:
            self._handle = model.data_preprocessor.register_forward_hook(
                _channels_last_inputs)
