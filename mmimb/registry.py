"""The ``mmimb`` registry scope.

mmimb registers its components in the registries of the library that owns
their kind: segmentation pieces in mmseg's, classification pieces in
mmpretrain's, kind-neutral ones (shared losses, hooks, the runner) in
mmengine's root registries. It still needs registries of its own scope:
mmengine tags every dict of a config loaded as ``mmimb::path.py`` with
``_scope_='mmimb'`` and then looks the types up in the ``mmimb`` scope. These
registries hold nothing; a lookup is answered by mmseg's or mmpretrain's
registry, the one of the running task first (the config's
``default_scope``), so ``mmimb::`` bases behave exactly like local ones.
"""
from typing import List, Optional, Type

from mmengine import registry as root
from mmengine.registry import DefaultScope, Registry

TASK_SCOPES = ('mmseg', 'mmpretrain')


def _task_scope() -> Optional[str]:
    """The innermost mmseg or mmpretrain default scope in force.

    While mmengine builds an ``_scope_='mmimb'`` dict it pushes a temporary
    ``mmimb`` scope; the task's scope is the newest one before it.
    mmengine offers no public view of the scope stack, hence the private
    instance table.
    """
    for instance in reversed(list(DefaultScope._instance_dict.values())):
        if instance.scope_name in TASK_SCOPES:
            return instance.scope_name
    return None


class TaskDelegatingRegistry(Registry):
    """A registry of scope ``mmimb`` that resolves names in mmseg's and
    mmpretrain's registries of the same kind.

    Args:
        name: Registry name, as mmengine's root registry of this kind.
        parent: mmengine's root registry of this kind.
        delegate: Name of the registries in ``mmseg.registry`` and
            ``mmpretrain.registry`` to search, e.g. ``'MODELS'``.
    """

    def __init__(self, name: str, parent: Registry, delegate: str):
        super().__init__(
            name, parent=parent, scope='mmimb', locations=['mmimb'])
        self._delegate = delegate

    def _delegates(self) -> List[Registry]:
        import importlib
        first = _task_scope()
        order = sorted(TASK_SCOPES, key=lambda s: s != first)
        found = (getattr(
            importlib.import_module(f'{scope}.registry'), self._delegate,
            None) for scope in order)
        return [registry for registry in found if registry is not None]

    def get(self, key: str) -> Optional[Type]:
        scope, real_key = self.split_scope_key(key)
        if scope not in (None, self.scope):
            return super().get(key)
        self.import_from_location()
        for registry in self._delegates():
            obj = registry.get(real_key)
            if obj is not None:
                return obj
        return super().get(real_key)


def _scope_registry(name: str) -> TaskDelegatingRegistry:
    upstream = getattr(root, name)
    return TaskDelegatingRegistry(upstream.name, upstream, name)


RUNNERS = _scope_registry('RUNNERS')
RUNNER_CONSTRUCTORS = _scope_registry('RUNNER_CONSTRUCTORS')
LOOPS = _scope_registry('LOOPS')
HOOKS = _scope_registry('HOOKS')
LOG_PROCESSORS = _scope_registry('LOG_PROCESSORS')
OPTIMIZERS = _scope_registry('OPTIMIZERS')
OPTIM_WRAPPERS = _scope_registry('OPTIM_WRAPPERS')
OPTIM_WRAPPER_CONSTRUCTORS = _scope_registry('OPTIM_WRAPPER_CONSTRUCTORS')
PARAM_SCHEDULERS = _scope_registry('PARAM_SCHEDULERS')
DATASETS = _scope_registry('DATASETS')
DATA_SAMPLERS = _scope_registry('DATA_SAMPLERS')
TRANSFORMS = _scope_registry('TRANSFORMS')
MODELS = _scope_registry('MODELS')
MODEL_WRAPPERS = _scope_registry('MODEL_WRAPPERS')
WEIGHT_INITIALIZERS = _scope_registry('WEIGHT_INITIALIZERS')
TASK_UTILS = _scope_registry('TASK_UTILS')
METRICS = _scope_registry('METRICS')
EVALUATOR = _scope_registry('EVALUATOR')
VISUALIZERS = _scope_registry('VISUALIZERS')
VISBACKENDS = _scope_registry('VISBACKENDS')
INFERENCERS = _scope_registry('INFERENCERS')
FUNCTIONS = _scope_registry('FUNCTIONS')
