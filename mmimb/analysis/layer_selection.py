"""Which parameters a gradient analysis covers.

A *layer* (unit of analysis) is a module that owns trainable parameters,
together with the parameters it computes its weights from: those of its
``torch.nn.utils.parametrize`` parametrizations, and for
``nn.MultiheadAttention`` those of its ``out_proj``, which it uses
functionally. Every trainable parameter of a model belongs to exactly one
layer (a parameter shared by several modules to the first of them), so the
layers' class gradients side by side are the model's.

:func:`select_layers` resolves a ``layers`` argument to layers and reports,
for :class:`Coverage`, what it leaves out and why.
"""
import difflib
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from torch import nn
from torch.nn.utils import parametrize

from .layer_gradients import Rule, rule_for

# How the class gradients of a layer are computed in classification 'fast'
# mode (per-sample grouping).
CLOSED_FORM = 'closed form'
LOCAL_AUTOGRAD = 'local autograd'


@dataclass
class Layer:
    """A module and the trainable parameters analysed with it.

    Args:
        name: The module's name in the model.
        module: The module.
        params: Its trainable parameters, in the order their gradients are
            flattened.
        rule: The closed-form per-sample rule of its exact type, or None.
        sample_dim: Dimension of the sample in its first output (1 for a
            sequence-first ``nn.MultiheadAttention``, else 0).
        leaf: Whether no other layer lies inside the module.
    """
    name: str
    module: nn.Module
    params: List[nn.Parameter]
    rule: Optional[Rule] = None
    sample_dim: int = 0
    leaf: bool = True

    @property
    def size(self) -> int:
        return sum(p.numel() for p in self.params)

    @property
    def grouping(self) -> Optional[str]:
        """How classification 'fast' mode computes the layer's class
        gradients from per-sample terms: its closed form, autograd through
        the module alone (one backward of the module per class), or None
        when neither applies (a module whose parameters feed other layers
        inside it)."""
        if self.rule is not None:
            return CLOSED_FORM
        if self.leaf or isinstance(self.module, nn.MultiheadAttention):
            return LOCAL_AUTOGRAD
        return None


@dataclass
class Coverage:
    """What an analysis covered.

    Args:
        analysed: Trainable parameters (scalars) analysed.
        total: Trainable parameters of the model.
        skipped: Layer name to why it was not analysed (layers within the
            requested ``layers`` only).
    """
    analysed: int
    total: int
    skipped: Dict[str, str] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        """Fraction of the model's trainable parameters analysed."""
        return self.analysed / self.total if self.total else 0.0

    def describe(self, limit: int = 10) -> str:
        """One line: the fraction analysed and what was skipped."""
        text = (f'{100 * self.fraction:.1f}% of the {self.total:,} '
                'trainable parameters analysed')
        if self.skipped:
            items = [f'{n or "<model>"} ({r})'
                     for n, r in list(self.skipped.items())[:limit]]
            more = len(self.skipped) - limit
            text += '; skipped: ' + '; '.join(items) + (
                f'; and {more} more' if more > 0 else '')
        return text


def _prefix(name: str) -> str:
    return f'{name}.' if name else ''


def model_layers(model: nn.Module) -> List[Layer]:
    """Every layer of the model, in module order."""
    layers, absorbed, owner = [], [], {}
    for name, module in model.named_modules():
        if any(name.startswith(p) for p in absorbed):
            continue
        if isinstance(module, nn.MultiheadAttention):
            params = list(module.parameters())
            absorbed.append(_prefix(name))
        elif parametrize.is_parametrized(module):
            params = list(module.parameters(recurse=False)) + list(
                module.parametrizations.parameters())
            absorbed.append(_prefix(name) + 'parametrizations.')
        else:
            params = list(module.parameters(recurse=False))
        # A parameter shared by several modules belongs to the first.
        params = [p for p in params
                  if p.requires_grad and owner.setdefault(id(p), name) ==
                  name]
        if not params:
            continue
        batch_first = getattr(module, 'batch_first', True)
        sample_dim = 1 if isinstance(module, nn.MultiheadAttention) and \
            not batch_first else 0
        layers.append(Layer(name, module, params, rule_for(module),
                            sample_dim))
    names = [layer.name for layer in layers]
    for layer in layers:
        prefix = _prefix(layer.name)
        layer.leaf = not any(
            n.startswith(prefix) and n != layer.name for n in names)
    users = {}
    for name, module in model.named_modules():
        if not any(name.startswith(a) for a in absorbed):
            for p in module.parameters(recurse=False):
                users.setdefault(id(p), set()).add(name)
    shared = {n for names in users.values() if len(names) > 1 for n in names}
    for layer in layers:
        if layer.name in shared:
            # A rule would give only this module's share of the gradient.
            layer.rule = None
            layer.leaf = False
    return layers


def trainable_count(model: nn.Module) -> int:
    """Trainable parameters (scalars) of the model, each counted once."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _refusal(layer: Layer) -> str:
    return (f'{type(layer.module).__name__} whose parameters feed the '
            'layers inside it (or are shared with another module), which '
            "per-sample grouping cannot separate; mode='loop' analyses it")


def select_layers(model: nn.Module, layers: Optional[Sequence[str]],
                  grouping: bool) -> Tuple[List[Layer], Coverage, set]:
    """Resolve ``layers`` to the layers to analyse, in model order.

    Args:
        model: The model.
        layers: None for every layer; else module names: a layer, or a
            container standing for every layer inside it (and itself, if
            it owns parameters).
        grouping: Whether the analysis groups per-sample terms
            (classification ``'fast'``), which some layers do not allow
            (:attr:`Layer.grouping`).

    Returns:
        The layers, the coverage so far (skipped: layers of the scope that
        cannot be analysed), and the names given explicitly as single
        layers: these must not be skipped (the caller raises or warns).

    Raises:
        ValueError: For a name that is not a module of the model, names
            only a part of a layer, or holds no layer.
    """
    all_layers = model_layers(model)
    by_name = {layer.name: layer for layer in all_layers}
    coverage = Coverage(0, trainable_count(model))
    if layers is None:
        scope, explicit = list(all_layers), set()
    else:
        if isinstance(layers, str):
            layers = [layers]
        named = dict(model.named_modules())
        chosen, explicit = set(), set()
        for entry in layers:
            if entry not in named:
                close = difflib.get_close_matches(entry, list(named), n=3)
                hint = f'; did you mean {", ".join(map(repr, close))}?' \
                    if close else ''
                raise ValueError(f'layers: the model has no module {entry!r}'
                                 f'{hint}')
            inside = [n for n in by_name
                      if n == entry or n.startswith(_prefix(entry))]
            if not inside:
                outer = [n for n in by_name if entry.startswith(_prefix(n))]
                if outer:
                    raise ValueError(
                        f'layers: {entry!r} is part of the layer '
                        f'{outer[-1]!r} ({type(named[outer[-1]]).__name__}), '
                        f'whose parameters are analysed together; name '
                        f'{outer[-1]!r}')
                raise ValueError(f'layers: {entry!r} holds no module with '
                                 'trainable parameters')
            if inside == [entry] and by_name[entry].leaf:
                explicit.add(entry)
            chosen.update(inside)
        scope = [layer for layer in all_layers if layer.name in chosen]
    selected = []
    for layer in scope:
        if grouping and layer.grouping is None:
            coverage.skipped[layer.name] = _refusal(layer)
        else:
            selected.append(layer)
    return selected, coverage, explicit
