from .cpu_amp_optim_wrapper import CPUAmpOptimWrapper, cpu_bf16_support
from .group_step_constructor import (GroupStepOptimWrapperConstructor,
                                     apply_group_step_options)

__all__ = [
    'CPUAmpOptimWrapper', 'GroupStepOptimWrapperConstructor',
    'apply_group_step_options', 'cpu_bf16_support'
]
