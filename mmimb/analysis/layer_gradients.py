"""Closed-form per-sample gradients of the parameters of common layers.

For a layer ``out = layer(x)`` applied to each sample on its own, the
gradient of a loss with respect to the layer's weight and bias is a sum over
samples of terms that need only the sample's input ``x_n`` and its output
gradient ``d_n``:

- ``nn.Linear``: ``dW_n = sum over extra dims of d_n^T x_n``,
  ``db_n = sum d_n``;
- ``nn.Conv{1,2,3}d``: ``dW_n`` is the weight gradient of the convolution on
  sample ``n`` alone, ``db_n = sum over positions of d_n``;
- norm layers whose statistics do not depend on other samples (BatchNorm
  with running statistics, LayerNorm, GroupNorm, InstanceNorm):
  ``dgamma_n = sum d_n * xhat_n``, ``dbeta_n = sum d_n``, with ``xhat`` the
  normalised input (the layer without its affine part), summed over every
  dimension the affine parameters broadcast over;
- mmimb's class-wise layers (``ClassWiseLinear``, ``ClassWiseLinearClsHead``):
  one weight vector per class applied to that class's feature.

Rules are looked up by the **exact** type of the module (never
``isinstance``): a subclass may change the forward pass (mmcv's ``ConvWS2d``
standardises its weight, ``Conv2dAdaptivePadding`` pads differently), and a
rule for its parent would then be silently wrong. A module whose weight or
bias is not a plain parameter (``torch.nn.utils.parametrize``, the old
``weight_norm`` hook) has no closed form here either; the analysis handles
such modules with autograd instead (:mod:`mmimb.analysis.class_gradients`).

The convolution case evaluates all samples in one call by folding the batch
into the channel groups (a convolution with ``N * groups`` groups on a batch
of one), which handles stride, padding (including padding modes and
``'same'``), dilation and grouped / depthwise layers exactly as the layer's
own backward does.
"""
from typing import Callable, Dict, List, NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Per-sample gradients are formed in chunks of samples that hold at most this
# many elements, so a wide layer does not need N copies of its weights.
CHUNK_ELEMENTS = 1 << 23


def trainable_parameters(module: nn.Module) -> List[nn.Parameter]:
    """The module's own parameters that require gradients, in the order
    their gradients are flattened (registration order: weight, then bias)."""
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


def _linear_sums(module: nn.Linear, a: Tensor, d: Tensor, rows: Tensor,
                 out: Tensor) -> None:
    """Add each row's gradient sum of a linear layer to ``out``: one matrix
    product per row over its samples' vectors, without per-sample
    gradients."""
    order = torch.argsort(rows, stable=True)
    sizes = torch.bincount(rows, minlength=out.shape[0]).tolist()
    a = a[order].reshape(a.shape[0], -1, a.shape[-1])
    d = d[order].reshape(d.shape[0], -1, d.shape[-1])
    with_w = module.weight.requires_grad
    with_b = module.bias is not None and module.bias.requires_grad
    for r, (ar, dr) in enumerate(zip(a.split(sizes), d.split(sizes))):
        if not sizes[r]:
            continue
        ar, dr = ar.reshape(-1, ar.shape[-1]), dr.reshape(-1, dr.shape[-1])
        parts = []
        if with_w:
            parts.append((dr.T @ ar).reshape(-1))
        if with_b:
            parts.append(dr.sum(0))
        out[r] += torch.cat(parts)


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


def _normalized(module: nn.Module, x: Tensor) -> Tensor:
    """The norm layer's output without its affine part, as its forward
    computes it in eval mode."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return F.batch_norm(x, module.running_mean, module.running_var,
                            None, None, False, 0.0, module.eps)
    if isinstance(module, nn.LayerNorm):
        return F.layer_norm(x, module.normalized_shape, None, None,
                            module.eps)
    if isinstance(module, nn.GroupNorm):
        return F.group_norm(x, module.num_groups, None, None, module.eps)
    running = module.track_running_stats and not module.training
    return F.instance_norm(
        x, module.running_mean if running else None,
        module.running_var if running else None, None, None,
        not running, 0.0, module.eps)


def _norm(module: nn.Module, x: Tensor, d: Tensor) -> Dict[str, Tensor]:
    n = x.shape[0]
    if isinstance(module, nn.LayerNorm):
        # The affine parameters cover the last dimensions.
        trail = len(module.normalized_shape)
        dims = tuple(range(1, x.dim() - trail))
    else:
        # One value per channel (dimension 1).
        dims = tuple(range(2, x.dim()))
    grads = {}
    if module.weight is not None and module.weight.requires_grad:
        prod = d * _normalized(module, x)
        grads['weight'] = (prod.sum(dims) if dims else prod).reshape(n, -1)
    if module.bias is not None and module.bias.requires_grad:
        grads['bias'] = (d.sum(dims) if dims else d).reshape(n, -1)
    return grads


def _class_wise_linear(module: nn.Module, x: Tensor,
                       d: Tensor) -> Dict[str, Tensor]:
    # out[n, c, o] = sum_i x[n, c, i] W[c, o, i] + b[c, o]
    n = x.shape[0]
    grads = {}
    if module.weight.requires_grad:
        grads['weight'] = torch.einsum('nco,nci->ncoi', d, x).reshape(n, -1)
    if module.bias.requires_grad:
        grads['bias'] = d.reshape(n, -1)
    return grads


def _class_wise_head(module: nn.Module, z: Tensor,
                     d: Tensor) -> Dict[str, Tensor]:
    # scores[n, c] = <W[c], z[n, c]> + b[c]: a class-wise linear layer with
    # one output per class.
    return _class_wise_linear(module, z, d.unsqueeze(2))


class Rule(NamedTuple):
    """A closed-form per-sample rule.

    Args:
        grads: ``grads(module, x, d)`` gives the per-sample gradients of the
            named parameters, each (n, numel).
        sums: Optional ``sums(module, x, d, rows, out)`` adding each row's
            sum to ``out`` directly (cheaper than per-sample gradients).
        input: ``input(module, args)`` gives ``x``, the sample-first tensor
            the rule reads, from the module's positional arguments.
    """
    grads: Callable[[nn.Module, Tensor, Tensor], Dict[str, Tensor]]
    input: Callable[[nn.Module, tuple], Tensor]
    sums: Optional[Callable] = None


def _first_argument(module: nn.Module, args: tuple) -> Tensor:
    return args[0] if args else None


def _head_features(module: nn.Module, args: tuple) -> Tensor:
    return module.pre_logits(args[0]) if args else None


_LINEAR = Rule(_linear, _first_argument, _linear_sums)
_CONV = Rule(_conv, _first_argument)
# BatchNorm: with running statistics (the analysis refuses per-sample
# grouping when a BatchNorm layer has none, see class_gradients).
_NORM = Rule(_norm, _first_argument)

# Exact types. Upstream wrappers are named by their qualified name so that
# this plain-torch module imports neither mmcv nor mmimb's models; each of
# them only adds an empty-input branch (mmcv) or is mmimb's own layer.
RULES: Dict[object, Rule] = {
    nn.Linear: _LINEAR,
    nn.modules.linear.NonDynamicallyQuantizableLinear: _LINEAR,
    'mmcv.cnn.bricks.wrappers.Linear': _LINEAR,
    nn.Conv1d: _CONV,
    nn.Conv2d: _CONV,
    nn.Conv3d: _CONV,
    'mmcv.cnn.bricks.wrappers.Conv2d': _CONV,
    'mmcv.cnn.bricks.wrappers.Conv3d': _CONV,
    nn.BatchNorm1d: _NORM,
    nn.BatchNorm2d: _NORM,
    nn.BatchNorm3d: _NORM,
    nn.SyncBatchNorm: _NORM,
    nn.LayerNorm: _NORM,
    nn.GroupNorm: _NORM,
    nn.InstanceNorm1d: _NORM,
    nn.InstanceNorm2d: _NORM,
    nn.InstanceNorm3d: _NORM,
    'mmimb.models.layers.class_wise_linear.ClassWiseLinear':
    Rule(_class_wise_linear, _first_argument),
    'mmimb.models.heads.class_wise_linear_head.ClassWiseLinearClsHead':
    Rule(_class_wise_head, _head_features),
}


def has_plain_parameters(module: nn.Module) -> bool:
    """Whether the module's ``weight`` and ``bias`` (if any) are its own
    parameters, not computed from others (parametrizations, hooks)."""
    from torch.nn.utils import parametrize
    if parametrize.is_parametrized(module):
        return False
    own = dict(module.named_parameters(recurse=False))
    for name in ('weight', 'bias'):
        value = getattr(module, name, None)
        if value is not None and own.get(name) is not value:
            return False
    return True


def rule_for(module: nn.Module) -> Optional[Rule]:
    """The closed-form rule of the module's exact type, or None (no rule,
    or its weights are not plain parameters)."""
    cls = type(module)
    rule = RULES.get(cls) or RULES.get(f'{cls.__module__}.{cls.__qualname__}')
    if rule is None or not has_plain_parameters(module):
        return None
    return rule


def class_sums(module: nn.Module, rule: Rule, x: Tensor, d: Tensor,
               rows: Tensor, num_rows: int,
               out: Optional[Tensor] = None) -> Tensor:
    """Per-sample gradients of the module's trainable parameters, summed
    over the samples of each row (class).

    Args:
        module: A module with a closed-form rule (:func:`rule_for`).
        rule: That rule.
        x: What the rule reads (``rule.input``), sample first.
        d: The loss gradient with respect to the module's output, shape as
            the output.
        rows: The row of each sample, shape (N,), in ``[0, num_rows)``.
        num_rows: Number of rows R.
        out: (R, P) sums to add to, else a new zero tensor.

    Returns:
        Tensor: Shape (R, P), row r the sum over the samples of row r of
        the flattened gradients of the parameters returned by
        :func:`trainable_parameters`, in that order. Samples are taken in
        chunks of at most ``CHUNK_ELEMENTS`` gradient entries.
    """
    names = [n for n, p in module.named_parameters(recurse=False)
             if p.requires_grad]
    size = sum(p.numel() for p in trainable_parameters(module))
    if out is None:
        out = x.new_zeros(num_rows, size, dtype=torch.float32)
    if rule.sums is not None:
        rule.sums(module, x, d, rows, out)
        return out
    step = max(1, CHUNK_ELEMENTS // max(size, 1))
    for start in range(0, x.shape[0], step):
        grads = rule.grads(module, x[start:start + step],
                           d[start:start + step])
        out.index_add_(0, rows[start:start + step],
                       torch.cat([grads[k] for k in names], dim=1))
    return out


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


def kernel_gradient_sum(module: nn.Linear, a: Tensor, d: Tensor,
                        scale: Tensor) -> Tensor:
    """``sum_n scale_n * (per-sample gradient n)`` of a linear layer on one
    vector per sample, flattened like :func:`per_sample_gradients`, in one
    matrix product."""
    ds = d * scale[:, None].to(d.dtype)
    parts = []
    if module.weight.requires_grad:
        parts.append((ds.T @ a).reshape(-1))
    if module.bias is not None and module.bias.requires_grad:
        parts.append(ds.sum(0))
    return torch.cat(parts)
