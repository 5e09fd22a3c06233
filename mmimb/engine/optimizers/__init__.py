from .cpu_amp_optim_wrapper import CPUAmpOptimWrapper, cpu_bf16_support

__all__ = ['CPUAmpOptimWrapper', 'cpu_bf16_support']
