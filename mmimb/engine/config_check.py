"""Checks that stop a bad config with one clear message before training.

Each check names the config field, the value found and what was expected,
so that a wrong data root, class count or type name fails in a second rather
than deep inside a dataloader worker or a registry lookup.
"""
import difflib
import os
import os.path as osp
from typing import Iterator, List, Optional, Tuple

from mmengine.config import Config
from mmengine.registry import DefaultScope, Registry

from mmimb.utils.checkpoint_keys import check_checkpoint_prefix
from mmimb.utils.errors import ConfigError

# Scopes whose registries the checks know, with the model types that reveal
# a config's scope when ``default_scope`` is missing.
_SCOPE_MODULES = {
    'mmseg': 'mmseg.registry',
    'mmpretrain': 'mmpretrain.registry'
}
# Dataset types that generate their samples and have no data root.
GENERATED_DATASETS = ('SyntheticTissueDataset', )
# Keys of a dataset config that wrap other dataset configs.
_WRAPPED_KEYS = ('dataset', 'datasets')


def _registries(scope: str):
    import importlib
    return importlib.import_module(_SCOPE_MODULES[scope])


def infer_scope(cfg: Config) -> str:
    """Return the config's default scope, inferring it from the model type.

    Raises:
        ConfigError: If the scope is neither set nor inferable.
    """
    scope = cfg.get('default_scope')
    if scope is not None:
        if scope not in _SCOPE_MODULES:
            raise ConfigError(
                f'default_scope={scope!r}: mmimb configs run under '
                f"{sorted(_SCOPE_MODULES)}")
        return scope
    model_type = (cfg.get('model') or {}).get('type')
    for candidate in _SCOPE_MODULES:
        if model_type and _registries(candidate).MODELS.get(model_type):
            return candidate
    raise ConfigError(
        f'cannot tell whether the config is for segmentation or '
        f"classification: default_scope is not set and model.type="
        f"{model_type!r} is registered in neither mmseg nor mmpretrain; add "
        "default_scope = 'mmseg' or 'mmpretrain'")


def _known_names(registry: Registry) -> List[str]:
    names, node = [], registry
    while node is not None:
        names.extend(node.module_dict)
        names.extend(f'{node.scope}.{n}' for n in node.module_dict)
        node = node.parent
    return names


def check_type(registry: Registry, type_name, field: str, scope: str) -> None:
    """Raise :class:`ConfigError` if ``type_name`` is not registered."""
    if not isinstance(type_name, str):
        return
    with DefaultScope.overwrite_default_scope(scope):
        if registry.get(type_name) is not None:
            return
    close = difflib.get_close_matches(type_name, _known_names(registry), n=3)
    hint = f'; did you mean {", ".join(map(repr, close))}?' if close else ''
    raise ConfigError(
        f'{field}.type={type_name!r} is not a registered {registry.name} in '
        f"scope {scope!r} (is the package that defines it in "
        f'custom_imports?){hint}')


def iter_datasets(dataset_cfg: dict, field: str) -> Iterator[Tuple[dict, str]]:
    """Yield a dataset config and the configs it wraps, with their fields."""
    yield dataset_cfg, field
    for key in _WRAPPED_KEYS:
        inner = dataset_cfg.get(key)
        if isinstance(inner, dict):
            yield from iter_datasets(inner, f'{field}.{key}')
        elif isinstance(inner, (list, tuple)):
            for i, item in enumerate(inner):
                yield from iter_datasets(item, f'{field}.{key}[{i}]')


def _has_file(folder: str) -> bool:
    """Whether ``folder`` or a folder below it holds a file (stops at the
    first one)."""
    for _, _, files in os.walk(folder):
        if files:
            return True
    return False


def _check_data_paths(ds: dict, field: str) -> None:
    if ds.get('type') in GENERATED_DATASETS or 'data_root' not in ds:
        return
    root = ds['data_root']
    if not root or not osp.isdir(root):
        raise ConfigError(
            f'{field}.data_root={root!r} does not exist; expected the folder '
            'written by the dataset converter (see docs/datasets.md), e.g. '
            f"--cfg-options {field.split('.')[0]}.dataset.data_root=PATH")
    prefix = ds.get('data_prefix') or {}
    # mmpretrain datasets take one prefix string, mmseg ones a dict.
    prefixes = {'': prefix} if isinstance(prefix, str) else {
        f'.{key}': rel
        for key, rel in prefix.items()
    }
    for key, rel in prefixes.items():
        path = osp.join(root, rel)
        if rel and not osp.exists(path):
            raise ConfigError(
                f'{field}.data_prefix{key}={rel!r} does not exist under '
                f'data_root {root!r} (looked for {path!r})')
    for key, rel in prefixes.items():
        path = osp.join(root, rel)
        if rel and osp.isdir(path) and not _has_file(path):
            raise ConfigError(
                f'{field}.data_prefix{key}={rel!r} under data_root {root!r} '
                f'is an empty folder ({path!r}); convert the dataset into it '
                '(docs/datasets.md) or point data_root at a converted one')
    ann = ds.get('ann_file')
    if ann and not osp.isfile(osp.join(root, ann)) and not osp.isfile(ann):
        raise ConfigError(f'{field}.ann_file={ann!r} does not exist under '
                          f'data_root {root!r}')


def dataset_classes(ds: dict, registry: Registry,
                    scope: str) -> Optional[tuple]:
    """The class names a dataset config declares, if known without I/O."""
    for inner, _ in iter_datasets(ds, ''):
        meta = inner.get('metainfo') or {}
        if meta.get('classes'):
            return tuple(meta['classes'])
        if inner.get('type') in GENERATED_DATASETS and inner.get(
                'class_specs'):
            return tuple(s['name'] for s in inner['class_specs'])
        with DefaultScope.overwrite_default_scope(scope):
            cls = registry.get(inner.get('type', ''))
        classes = (getattr(cls, 'METAINFO', None) or {}).get('classes')
        if classes:
            return tuple(classes)
    return None


def _model_num_classes(model: dict) -> List[Tuple[str, int]]:
    found = []
    for key in ('decode_head', 'head'):
        heads = model.get(key)
        if isinstance(heads, dict) and 'num_classes' in heads:
            found.append((f'model.{key}.num_classes', heads['num_classes']))
    aux = model.get('auxiliary_head')
    for i, head in enumerate(aux if isinstance(aux, list) else [aux]):
        if isinstance(head, dict) and 'num_classes' in head:
            name = 'model.auxiliary_head' + (f'[{i}]' if isinstance(
                aux, list) else '')
            found.append((f'{name}.num_classes', head['num_classes']))
    return found


def _check_model_types(model: dict, registry: Registry, scope: str) -> None:
    check_type(registry, model.get('type'), 'model', scope)
    for key in ('data_preprocessor', 'backbone', 'neck', 'decode_head',
                'auxiliary_head', 'head'):
        parts = model.get(key)
        parts = parts if isinstance(parts, list) else [parts]
        for i, part in enumerate(parts):
            if not isinstance(part, dict):
                continue
            field = f'model.{key}' + (f'[{i}]' if len(parts) > 1 else '')
            check_type(registry, part.get('type'), field, scope)
            for loss_key, loss in part.items():
                if not loss_key.startswith('loss'):
                    continue
                losses = loss if isinstance(loss, list) else [loss]
                for j, item in enumerate(losses):
                    if isinstance(item, dict):
                        sub = f'[{j}]' if isinstance(loss, list) else ''
                        check_type(registry, item.get('type'),
                                   f'{field}.{loss_key}{sub}', scope)


def check_config(cfg: Config, mode: str = 'train') -> str:
    """Validate a config before any runner is built.

    Args:
        cfg: The loaded config.
        mode: ``'train'`` checks the train and val data, ``'test'`` the test
            data; both check the model.

    Returns:
        str: The default scope (``'mmseg'`` or ``'mmpretrain'``).

    Raises:
        ConfigError: Naming the field, the value and what was expected.
    """
    scope = infer_scope(cfg)
    reg = _registries(scope)
    model = cfg.get('model')
    if not isinstance(model, dict):
        raise ConfigError('the config has no model dict')
    _check_model_types(model, reg.MODELS, scope)

    loaders = ['train_dataloader', 'val_dataloader'] if mode == 'train' \
        else ['test_dataloader']
    classes = None
    for loader in loaders:
        loader_cfg = cfg.get(loader)
        if not loader_cfg or 'dataset' not in loader_cfg:
            continue
        for ds, field in iter_datasets(loader_cfg['dataset'],
                                       f'{loader}.dataset'):
            check_type(reg.DATASETS, ds.get('type'), field, scope)
            for i, step in enumerate(ds.get('pipeline') or []):
                check_type(reg.TRANSFORMS, step.get('type'),
                           f'{field}.pipeline[{i}]', scope)
            _check_data_paths(ds, field)
        classes = classes or dataset_classes(loader_cfg['dataset'],
                                             reg.DATASETS, scope)

    if classes is not None:
        for field, num in _model_num_classes(model):
            if num != len(classes):
                raise ConfigError(
                    f'{field}={num} but the dataset has {len(classes)} '
                    f'classes {list(classes)}; set {field}={len(classes)} '
                    'or the dataset metainfo to the classes the model '
                    'predicts')

    _check_class_stat_files(model)
    if mode == 'train':
        _check_pretrained(model)
        _check_load_from(cfg.get('load_from'))
        _check_save_best(cfg, reg.METRICS)
    return scope


def _check_save_best(cfg: Config, registry: Registry) -> None:
    """A ``save_best`` metric such as ``'lt/top1'`` must carry the prefix
    of a validation evaluator, or the checkpoint hook fails with a bare
    KeyError after the first validation."""
    hook = (cfg.get('default_hooks') or {}).get('checkpoint') or {}
    keys = hook.get('save_best')
    evaluators = cfg.get('val_evaluator')
    if not keys or not evaluators or cfg.get('val_cfg', {}) is None:
        return
    evaluators = evaluators if isinstance(evaluators, list) else [evaluators]
    prefixes = set()
    for evaluator in evaluators:
        metric = registry.get(evaluator.get('type'))
        prefixes.add(
            evaluator.get('prefix') or getattr(metric, 'default_prefix', None))
    for key in [keys] if isinstance(keys, str) else keys:
        if '/' in key and key.split('/')[0] not in prefixes:
            types = [e.get('type') for e in evaluators]
            raise ConfigError(
                f'default_hooks.checkpoint.save_best={key!r} names no metric '
                f'of val_evaluator {types} (their prefixes: '
                f'{sorted(p for p in prefixes if p)}); set save_best to one '
                'of their metrics, or to None')


# Model arguments that may name a JSON file of per-class statistics.
CLASS_STAT_KEYS = {
    'class_freq': 'tools/analysis_tools/class_stats.py CONFIG --out PATH',
    'class_dice': 'tools/analysis_tools/class_difficulty.py CONFIG '
    'CHECKPOINT --out PATH',
    'class_counts': 'tools/analysis_tools/class_stats.py CONFIG --out PATH',
}


def _check_class_stat_files(node, field: str = 'model') -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            sub = f'{field}.{key}'
            if key in CLASS_STAT_KEYS and isinstance(value, str) and \
                    value != 'auto' and not osp.isfile(value):
                raise ConfigError(
                    f'{sub}={value!r} does not exist; write it with '
                    f'`python {CLASS_STAT_KEYS[key]}` or pass a list')
            _check_class_stat_files(value, sub)
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            _check_class_stat_files(value, f'{field}[{i}]')


def _check_load_from(path) -> None:
    # A second training stage (LWS, a fine-tuning) starts from load_from;
    # mmengine would fail on it only after building everything.
    if isinstance(path, str) and '://' not in path and not osp.isfile(path):
        raise ConfigError(
            f'load_from={path!r} does not exist; train the model it names '
            'first (a second-stage config says which) or pass --cfg-options '
            'load_from=PATH')


def _check_pretrained(model: dict) -> None:
    for field, part in (('model', model),
                        ('model.backbone', model.get('backbone')),
                        ('model.decode_head', model.get('decode_head'))):
        init_cfg = part.get('init_cfg') if isinstance(part, dict) else None
        if not isinstance(init_cfg, dict) or \
                init_cfg.get('type') != 'Pretrained':
            continue
        ckpt = init_cfg.get('checkpoint')
        if not isinstance(ckpt, str) or '://' in ckpt:
            continue
        if not osp.isfile(ckpt):
            raise ConfigError(
                f'{field}.init_cfg.checkpoint={ckpt!r} does not exist; '
                'download and convert the pretrained weights (README.md, '
                '"Pretrained weights") and pass --cfg-options '
                f'{field}.init_cfg.checkpoint=PATH')
        if init_cfg.get('prefix'):
            check_checkpoint_prefix(ckpt, init_cfg['prefix'], field)
