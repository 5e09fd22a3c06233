"""Memory footprint of a forward and backward pass, measured the same way on
the CPU and on a GPU.

Peak-allocation counters exist only for accelerators, so the footprint is
read from the operators themselves: the largest tensor any aten operator
returns (forward or backward) and the bytes autograd keeps for the backward
pass. Both are exact and deterministic, which makes growth laws (e.g.
linear in the number of classes) testable.
"""
from dataclasses import dataclass
from typing import Callable

import torch
# TorchDispatchMode is the documented way to intercept every aten operator;
# torch keeps it in a private module.
from torch.utils._python_dispatch import TorchDispatchMode


@dataclass
class Footprint:
    """What a pass held.

    Attributes:
        largest_numel: Elements of the largest tensor an operator returned.
        saved_bytes: Bytes of the distinct storages autograd saved for the
            backward pass (the activation memory of training, plus the
            weights some operators save); a storage saved by several
            operators counts once.
    """
    largest_numel: int
    saved_bytes: int


class _LargestTensor(TorchDispatchMode):

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in (out if isinstance(out, (tuple, list)) else [out]):
            if torch.is_tensor(t):
                self.largest = max(self.largest, t.numel())
        return out


def autograd_footprint(step: Callable[[], torch.Tensor]) -> Footprint:
    """Run ``step`` (which returns a scalar loss) and its backward pass, and
    measure them.

    Args:
        step: Builds the graph and returns a scalar tensor.

    Returns:
        Footprint: The largest tensor and the bytes saved for backward.
    """
    saved = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        saved[storage.data_ptr()] = storage.nbytes()
        return t

    with _LargestTensor() as mode, \
            torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step().backward()
    return Footprint(mode.largest, sum(saved.values()))
