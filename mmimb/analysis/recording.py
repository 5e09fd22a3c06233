"""What the analysis records during its forward pass: each analysed
layer's calls (forward hooks), and the modes the model runs in."""
from typing import Callable, Dict, List, Optional

from torch import Tensor, nn

from .layer_selection import CLOSED_FORM, Layer


class LayerCall:
    """One call of a recorded layer: what its gradient rule reads (``inp``),
    its outputs, and what to do with each output gradient when the backward
    reaches it (``on_grad``; by default keep it)."""

    def __init__(self,
                 inp: Optional[Tensor],
                 outs: List[Tensor],
                 error: Optional[str] = None,
                 armed: Optional[list] = None):
        self.inp = inp
        # Gradients count only while armed[0]: other backward passes (the
        # verification's) must not reach on_grad or mark the call done.
        self.armed = armed or [True]
        self.version = inp._version if isinstance(inp, Tensor) else None
        self.outs = outs
        self.grads: List[Optional[Tensor]] = [None] * len(outs)
        self.error = error
        self.done = False
        self.on_grad: Optional[Callable[['LayerCall', Tensor], None]] = None
        self.grad_hooks = []

    @property
    def out(self) -> Optional[Tensor]:
        return self.outs[0] if self.outs else None

    def release(self) -> None:
        """Drop the tensors and the outputs' gradient hooks. A hook and its
        tensor reference each other through autograd, a cycle Python's
        garbage collector cannot see: without this, every analysed batch's
        activations would stay in memory."""
        for hook in self.grad_hooks:
            hook.remove()
        self.inp = self.on_grad = None
        self.outs, self.grads, self.grad_hooks = [], [], []

    def hook_outputs(self) -> None:
        for i, out in enumerate(self.outs):
            if out.requires_grad:
                # A tensor hook registered now receives the gradient with
                # respect to this output even if a later in-place op (e.g.
                # ReLU(inplace=True)) modifies it.
                self.grad_hooks.append(
                    out.register_hook(lambda g, i=i: self._set(i, g)))

    def _set(self, i: int, grad: Tensor) -> None:
        if not self.armed[0]:
            return
        self.done = True
        if self.on_grad is None:
            self.grads[i] = grad.detach()
        else:
            self.on_grad(self, grad.detach())


def _tensors(output) -> List[Tensor]:
    items = output if isinstance(output, (tuple, list)) else (output, )
    return [t for t in items if isinstance(t, Tensor)]


class Recorder:
    """Forward hooks on the analysed layers.

    ``capture``: keep what per-sample grouping needs (the rule's input, the
    outputs and their gradients); a layer grouped by autograd through the
    module alone returns copies of its outputs, so that in-place ops after
    it leave the graph from its parameters to its real outputs intact.
    Otherwise only calls are counted, and the input and output of 1x1
    convolutions are kept (the segmentation classifier is one of them).
    """

    def __init__(self, layers: List[Layer], capture: bool):
        self.calls: Dict[str, List[LayerCall]] = {
            layer.name: []
            for layer in layers
        }
        self._capture = capture
        self.armed = [False]
        self._handles = [
            layer.module.register_forward_hook(
                self._hook(layer), with_kwargs=True) for layer in layers
        ]

    def _hook(self, layer: Layer):

        def hook(module, args, kwargs, output):
            if not self._capture:
                classifier = is_1x1_conv(layer) and args and isinstance(
                    args[0], Tensor) and isinstance(output, Tensor)
                self.calls[layer.name].append(
                    LayerCall(args[0], [output]
                              ) if classifier else LayerCall(None, []))
                return None
            if layer.grouping == CLOSED_FORM:
                inp = layer.rule.input(module, args)
                if not isinstance(inp, Tensor) or \
                        not isinstance(output, Tensor):
                    call = LayerCall(
                        None, [], 'it does not take and return one '
                        'tensor')
                else:
                    call = LayerCall(inp, [output], armed=self.armed)
                    call.hook_outputs()
                self.calls[layer.name].append(call)
                return None
            outs = _tensors(output)
            call = LayerCall(
                None, [t for t in outs if t.requires_grad], armed=self.armed)
            call.hook_outputs()
            self.calls[layer.name].append(call)
            if isinstance(output, Tensor):
                return output.clone()
            if isinstance(output, (tuple, list)):
                return type(output)(
                    t.clone() if isinstance(t, Tensor) else t for t in output)
            return None

        return hook

    def arm(self) -> None:
        """Let output gradients reach the calls from now on."""
        self.armed[0] = True

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()

    def release(self) -> None:
        """Remove the hooks and free every recorded call."""
        self.remove()
        for calls in self.calls.values():
            for call in calls:
                call.release()


def is_1x1_conv(layer: Layer) -> bool:
    module = layer.module
    return (layer.grouping == CLOSED_FORM
            and isinstance(module, nn.modules.conv._ConvNd)
            and module.groups == 1 and all(s == 1 for s in module.kernel_size)
            and all(s == 1 for s in module.stride)
            and (module.padding in ('valid', 'same')
                 or all(p == 0 for p in module.padding)))


def batch_norms(model: nn.Module) -> List[nn.Module]:
    return [
        m for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
    ]


class AnalysisMode:
    """Eval mode for every module, restoring each one's own flag; with
    ``batch_stats``, the BatchNorm layers that were training normalise with
    the batch's statistics, without updating their running ones."""

    def __init__(self, model: nn.Module, batch_stats: bool):
        self._flags = [(m, m.training) for m in model.modules()]
        self._model = model
        self._batch = [m for m in batch_norms(model)
                       if m.training] if batch_stats else []
        self._tracked = [(m, m.track_running_stats) for m in self._batch]

    def __enter__(self):
        self._model.eval()
        for module in self._batch:
            module.train()
            # With training=True and no statistics to track, _BatchNorm
            # uses the batch's statistics and passes no running buffers.
            module.track_running_stats = False

    def __exit__(self, *exc):
        for module, flag in self._tracked:
            module.track_running_stats = flag
        for module, flag in self._flags:
            module.training = flag


def check_norm_stats(model: nn.Module, norm_stats: str) -> bool:
    """Whether the samples are coupled in the analysis (BatchNorm with batch
    statistics); refuses a synchronised BatchNorm with batch statistics
    across processes (its collectives would run once per class)."""
    norms = batch_norms(model)
    if norm_stats == 'batch':
        import torch.distributed as dist
        sync = [
            m for m in norms if m.training and isinstance(m, nn.SyncBatchNorm)
        ]
        if sync and dist.is_available() and dist.is_initialized() and \
                dist.get_world_size() > 1:
            raise ValueError(
                "norm_stats='batch' with SyncBatchNorm on several processes "
                'would synchronise statistics once per class; use '
                "norm_stats='running'")
        return any(m.training for m in norms)
    return any(m.running_mean is None for m in norms)
