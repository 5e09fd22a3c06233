"""bf16 mixed precision without loss scaling, for the CPU (and any device
whose model runs in bf16)."""
import logging
import platform
from contextlib import contextmanager
from typing import Tuple

import torch
from mmengine.logging import print_log
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS
from torch import nn

# /proc/cpuinfo flags of CPUs that compute bf16 natively: Intel AMX and
# AVX512-BF16 (Intel Cooper Lake and later, AMD Zen 4 and later) on x86, the
# BF16 extension on Arm. Elsewhere oneDNN emulates bf16, slower than fp32.
BF16_CPU_FLAGS = ('amx_bf16', 'avx512_bf16', 'bf16')


def cpu_bf16_support() -> Tuple[bool, str]:
    """Whether this CPU computes bf16 natively, and what was found.

    Returns:
        tuple: ``(supported, reason)``; ``reason`` names the flag found, or
        says why bf16 is taken to be absent.
    """
    try:
        with open('/proc/cpuinfo') as f:
            flags = set()
            for line in f:
                key, _, value = line.partition(':')
                if key.strip() in ('flags', 'Features'):
                    flags.update(value.split())
    except OSError:
        return False, (f'cannot read /proc/cpuinfo on {platform.system()} '
                       'to look for bf16 instructions')
    found = [flag for flag in BF16_CPU_FLAGS if flag in flags]
    if found:
        return True, f'the CPU has {", ".join(found)}'
    return False, (f'the CPU ({platform.machine()}) lists none of '
                   f'{", ".join(BF16_CPU_FLAGS)} in /proc/cpuinfo')


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(OptimWrapper):
    """:class:`mmengine.optim.OptimWrapper` that runs the forward pass under
    ``torch.autocast(device, dtype=torch.bfloat16)``, for training on CPUs
    with bf16 instructions (AMX, AVX512-BF16).

    mmengine's ``AmpOptimWrapper`` asserts an accelerator and scales the loss
    for fp16. bf16 has fp32's exponent range, so no loss scaling is needed:
    gradients and the optimizer step stay in fp32, as the parameters are
    fp32. Autocast follows the device of the model's parameters, so a config
    that selects this wrapper also trains in bf16 on a GPU.

    Where the CPU has no bf16 instructions (oneDNN would emulate them, more
    slowly than fp32) the wrapper says so once and trains in fp32.

    ``tools/train.py --amp`` selects it on a machine without a GPU; a config
    selects it with ``optim_wrapper = dict(type='CPUAmpOptimWrapper', ...)``.

    Args:
        **kwargs: :class:`~mmengine.optim.OptimWrapper` arguments
            (``optimizer``, ``accumulative_counts``, ``clip_grad``).
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        supported, reason = cpu_bf16_support()
        self.cpu_bf16 = supported
        if not supported:
            print_log(
                f'CPUAmpOptimWrapper: {reason}; training in fp32 on the CPU '
                '(bf16 would be emulated, slower than fp32)',
                logger='current',
                level=logging.WARNING)

    @contextmanager
    def optim_context(self, model: nn.Module):
        param = next(model.parameters(), None)
        device = param.device.type if param is not None else 'cpu'
        enabled = self.cpu_bf16 if device == 'cpu' else True
        with super().optim_context(model), torch.autocast(
                device, dtype=torch.bfloat16, enabled=enabled):
            yield
