"""Per-sample weight gradients of linear and convolution layers.

For a layer ``out = layer(a)`` whose weights enter linearly, the gradient of
a loss with respect to the weights is a sum over samples of terms that need
only the sample's input ``a_n`` and its output gradient ``d_n``:

- ``nn.Linear``: ``dW_n = sum over extra dims of d_n^T a_n``,
  ``db_n = sum d_n``;
- ``nn.Conv{1,2,3}d``: ``dW_n`` is the weight gradient of the convolution on
  sample ``n`` alone, ``db_n = sum over positions of d_n``.

The convolution case evaluates all samples in one call by folding the batch
into the channel groups (a convolution with ``N * groups`` groups on a batch
of one), which handles stride, padding (including padding modes and
``'same'``), dilation and grouped / depthwise layers exactly as the layer's
own backward does.
"""
from typing import Dict, List

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Per-sample gradients are formed in chunks of samples that hold at most this
# many elements, so a wide layer does not need N copies of its weights.
CHUNK_ELEMENTS = 1 << 25


def is_supported(module: nn.Module) -> bool:
    """Whether :func:`per_sample_gradients` handles ``module``."""
    if isinstance(module, nn.Linear):
        return True
    return isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d))


def trainable_parameters(module: nn.Module) -> List[nn.Parameter]:
    """The module's own parameters that require gradients, in the order
    their gradients are flattened (weight first, then bias)."""
    return [p for p in module.parameters(recurse=False) if p.requires_grad]


def _linear(module: nn.Linear, a: Tensor, d: Tensor) -> Dict[str, Tensor]:
    n = a.shape[0]
    a = a.reshape(n, -1, a.shape[-1])
    d = d.reshape(n, -1, d.shape[-1])
    grads = {}
    if module.weight.requires_grad:
        grads['weight'] = torch.bmm(d.transpose(1, 2), a).reshape(n, -1)
    if module.bias is not None and module.bias.requires_grad:
        grads['bias'] = d.sum(1)
    return grads


def _conv(module: nn.modules.conv._ConvNd, a: Tensor,
          d: Tensor) -> Dict[str, Tensor]:
    n = a.shape[0]
    dims = a.dim() - 2
    padding = module.padding
    if isinstance(padding, str) or module.padding_mode != 'zeros':
        # The layer pads explicitly in these cases (or 'same' may be
        # asymmetric), so pad the same way and convolve without padding.
        mode = 'constant' if module.padding_mode == 'zeros' else \
            module.padding_mode
        a = F.pad(a, module._reversed_padding_repeated_twice, mode=mode)
        padding = (0, ) * dims
    grads = {}
    if module.weight.requires_grad:
        weight_shape = (n * module.out_channels, *module.weight.shape[1:])
        grads['weight'] = torch.ops.aten.convolution_backward(
            d.reshape(1, -1, *d.shape[2:]),
            a.reshape(1, -1, *a.shape[2:]),
            d.new_empty(1).expand(weight_shape),
            None,
            list(module.stride),
            list(padding),
            list(module.dilation),
            False,
            [0] * dims,
            n * module.groups,
            (False, True, False),
        )[1].reshape(n, -1)
    if module.bias is not None and module.bias.requires_grad:
        grads['bias'] = d.flatten(2).sum(2)
    return grads


def per_sample_gradients(module: nn.Module, a: Tensor, d: Tensor) -> Tensor:
    """Gradients of the module's trainable parameters, one row per sample.

    Args:
        module: An ``nn.Linear`` or ``nn.Conv{1,2,3}d``.
        a: The module's input, shape (N, ..., in_features) or (N, C_in, ...).
        d: The loss gradient with respect to the module's output, shape as
            the output.

    Returns:
        Tensor: Shape (N, P), each row the flattened gradients of the
        parameters returned by :func:`trainable_parameters` (weight, then
        bias) for that sample.
    """
    fn = _linear if isinstance(module, nn.Linear) else _conv
    size = sum(p.numel() for p in trainable_parameters(module))
    step = max(1, CHUNK_ELEMENTS // max(size, 1))
    rows = []
    for start in range(0, a.shape[0], step):
        grads = fn(module, a[start:start + step], d[start:start + step])
        rows.append(torch.cat([grads[k] for k in ('weight', 'bias')
                               if k in grads], dim=1))
    return torch.cat(rows)


def per_sample_kernel(module: nn.Linear, a: Tensor, d: Tensor) -> Tensor:
    """Inner products of the per-sample gradients of a linear layer applied
    to one vector per sample, without forming the gradients.

    ``<d_n a_n^T, d_m a_m^T> = (d_n . d_m)(a_n . a_m)``, and the bias adds
    ``d_n . d_m``: the cost is ``N^2 (in + out)`` instead of
    ``N * in * out``.

    Args:
        module: An ``nn.Linear``.
        a: Input, shape (N, in_features).
        d: Output gradient, shape (N, out_features).

    Returns:
        Tensor: Shape (N, N).
    """
    dd = d @ d.T
    aa = a @ a.T if module.weight.requires_grad else torch.zeros_like(dd)
    if module.bias is not None and module.bias.requires_grad:
        aa = aa + 1
    return dd * aa
