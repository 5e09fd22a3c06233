"""How far bf16 autocast moves a model's gradients from fp32's, and which
modules to keep in fp32 (plain PyTorch)."""
from contextlib import contextmanager
from itertools import chain
from typing import Dict, Iterator, Mapping, Optional, Sequence, Tuple, Type

import torch
from torch import Tensor, nn


@contextmanager
def modules_in_fp32(model: nn.Module,
                    types: Tuple[Type[nn.Module], ...]) -> Iterator[int]:
    """Run the submodules of ``model`` that are instances of ``types`` in
    fp32 under autocast: their fp16 and bf16 tensor arguments (also inside
    lists, tuples and dicts) are cast to fp32 and autocast is off inside
    them for the device of their parameters, so their outputs are fp32.

    This is what mmcv 1.x's ``wrap_fp16_model`` did for normalisation layers
    (``patch_norm_fp32``), for any module type.

    Args:
        model (nn.Module): The model; its modules' ``forward`` is replaced
            on the instances for the duration of the context.
        types (tuple[type]): Module classes to keep in fp32.

    Yields:
        int: The number of modules kept in fp32.
    """
    patched = [m for m in model.modules() if isinstance(m, types)]
    # A forward already set on an instance (another patch) is restored.
    own = [m.__dict__.get('forward') for m in patched]
    for module in patched:
        module.forward = _fp32_forward(module)
    try:
        yield len(patched)
    finally:
        for module, forward in zip(patched, own):
            if forward is None:
                del module.forward
            else:
                module.forward = forward


def _fp32_forward(module: nn.Module):
    forward = module.forward

    def fp32(*args, **kwargs):
        first = next(chain(module.parameters(),
                           (a for a in args if torch.is_tensor(a))), None)
        device = first.device.type if first is not None else 'cpu'
        with torch.autocast(device, enabled=False):
            return forward(*_to_fp32(args), **_to_fp32(kwargs))

    return fp32


def _to_fp32(value):
    """``value`` with its fp16 and bf16 tensors cast to fp32, in lists,
    tuples and dicts too (other dtypes, fp64 included, are kept)."""
    if torch.is_tensor(value):
        if value.dtype in (torch.float16, torch.bfloat16):
            return value.float()
        return value
    if isinstance(value, tuple) and hasattr(value, '_fields'):
        return type(value)(*map(_to_fp32, value))
    if isinstance(value, (list, tuple)):
        return type(value)(map(_to_fp32, value))
    if isinstance(value, dict):
        return {k: _to_fp32(v) for k, v in value.items()}
    return value


def gradient_error(
        reference: Mapping[str, Tensor],
        other: Mapping[str, Tensor],
        groups: Optional[Sequence[str]] = None) -> Dict[str, float]:
    """Relative error and cosine of a set of gradients against a reference.

    With the gradients of all parameters of a group flattened into one
    vector each, ``g`` (``other``) and ``r`` (``reference``)::

        error = ||g - r|| / ||r||,    cosine = <g, r> / (||g|| ||r||)

    Args:
        reference (Mapping[str, Tensor]): Reference gradients (fp32) by
            parameter name.
        other (Mapping[str, Tensor]): Gradients of the same parameters,
            any shape-compatible memory layout or dtype.
        groups (Sequence[str], optional): Name prefixes (for example
            ``'backbone'``, ``'head'``); each gets its own error. All
            parameters form the group ``'all'``.

    Returns:
        dict: ``{'all': error, 'cosine': cosine, prefix: error, ...}``; a
        group whose reference gradient is zero gets NaN.
    """
    if set(reference) != set(other):
        missing = sorted(set(reference) ^ set(other))
        raise ValueError('the gradients are of different parameters: '
                         f'{", ".join(missing[:5])}')
    sums = {}
    for group in ('all', *(groups or ())):
        names = [n for n in reference
                 if group == 'all' or n == group or
                 n.startswith(group + '.')]
        diff = sum(((other[n].double() - reference[n].double())**2).sum()
                   for n in names)
        ref = sum((reference[n].double()**2).sum() for n in names)
        sums[group] = (float(diff), float(ref))
    names = list(reference)
    dot = float(sum((other[n].double() * reference[n].double()).sum()
                    for n in names))
    norm = float(sum((other[n].double()**2).sum() for n in names))**0.5
    out = {
        group: (diff / ref)**0.5 if ref > 0 else float('nan')
        for group, (diff, ref) in sums.items()
    }
    ref_norm = sums['all'][1]**0.5
    out['cosine'] = (dot / (norm * ref_norm)
                     if norm > 0 and ref_norm > 0 else float('nan'))
    return out
