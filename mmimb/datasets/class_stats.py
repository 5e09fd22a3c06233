"""How often each class occurs in a dataset: pixels (segmentation) or
samples (classification).

DFA's class prior and CCAR's weights are computed from these frequencies
(``class_freq='auto'`` in a model config, or the JSON file written by
``tools/analysis_tools/class_stats.py``). Segmentation labels are streamed
one file at a time, in worker processes if asked, and never with their
images; classification labels come from the annotations without decoding an
image. Segmentation results are cached by a fingerprint of what determines
them (the label files with their sizes and modification times, or, for
generated datasets, the dataset config and code).

Counting follows the dataset's indices, through any wrapper (subset,
repeat, concatenation, class-balanced resampling): the frequencies are those
of the stream the training loop draws from.
"""
import copy
import hashlib
import importlib
import inspect
import json
import os
import os.path as osp
import warnings
from dataclasses import dataclass, field
from multiprocessing import Pool
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.registry import DefaultScope
from tqdm import tqdm

from mmimb.utils.errors import ConfigError
from .conversion import write_json_atomic
from .sample_labels import single_labels

CACHE_ENV = 'MMIMB_CACHE_DIR'
DEFAULT_CACHE_DIR = osp.join('~', '.cache', 'mmimb', 'class_stats')
# Bumped whenever the counting changes, so old cache entries are not used.
STATS_VERSION = 1
_TASK_SCOPES = ('mmseg', 'mmpretrain')
_CHUNK = 16


@dataclass
class ClassStats:
    """Per-class counts and frequencies of a dataset.

    Args:
        counts: int64 array (C,): pixels or samples per class.
        classes: Class names (C of them).
        kind: ``'pixel'`` (segmentation) or ``'sample'`` (classification).
        ignore_index: Label value left out of the counts.
        num_images: Number of samples counted.
        fingerprint: Identity of what was counted (the cache key).

    ``frequencies`` (float64 array (C,)) is ``counts / counts.sum()``.
    """
    counts: np.ndarray
    classes: Tuple[str, ...]
    kind: str
    ignore_index: int = 255
    num_images: int = 0
    fingerprint: str = ''
    frequencies: np.ndarray = field(init=False)

    def __post_init__(self):
        self.counts = np.asarray(self.counts, dtype=np.int64)
        self.classes = tuple(self.classes)
        total = self.counts.sum()
        if total <= 0:
            raise ValueError(f'no labelled {self.kind}s to count: every '
                             f'label is {self.ignore_index} or the dataset '
                             'is empty')
        self.frequencies = self.counts / np.float64(total)

    def as_dict(self) -> dict:
        return dict(
            classes=list(self.classes),
            counts=self.counts.tolist(),
            frequencies=self.frequencies.tolist(),
            kind=self.kind,
            ignore_index=self.ignore_index,
            num_images=self.num_images,
            fingerprint=self.fingerprint)

    @classmethod
    def from_dict(cls, data: dict) -> 'ClassStats':
        return cls(
            counts=data['counts'],
            classes=data['classes'],
            kind=data['kind'],
            ignore_index=data['ignore_index'],
            num_images=data['num_images'],
            fingerprint=data['fingerprint'])

    def to_json(self, path: str) -> None:
        """Write the JSON file that ``class_freq='path.json'`` and
        :func:`mmimb.utils.load_class_freq` read."""
        folder = osp.dirname(osp.abspath(path))
        os.makedirs(folder, exist_ok=True)
        write_json_atomic(path, self.as_dict())

    def table(self) -> str:
        """The counts and frequencies as a text table."""
        width = max(len(c) for c in self.classes + ('class', ))
        lines = [f"{'class':<{width}}  {self.kind + 's':>14}  frequency"]
        for name, count, freq in zip(self.classes, self.counts,
                                     self.frequencies):
            lines.append(f'{name:<{width}}  {count:>14d}  {freq:9.5f}')
        return '\n'.join(lines)


def build_dataset(cfg: dict, default_scope: Optional[str] = None):
    """Build a dataset config in the registry of its task.

    Args:
        cfg: Dataset config (a dict with ``type``).
        default_scope: ``'mmseg'`` or ``'mmpretrain'``; ``None`` tries both.

    Raises:
        ConfigError: If no registry knows the type, or the dataset cannot
            be built (e.g. an empty folder).
    """
    import mmimb  # noqa: F401  (registers mmimb's datasets)
    scopes = [default_scope] if default_scope else list(_TASK_SCOPES)
    for scope in scopes:
        registry = importlib.import_module(f'{scope}.registry').DATASETS
        with DefaultScope.overwrite_default_scope(scope):
            if registry.get(cfg.get('type', '')) is None:
                continue
            try:
                return registry.build(copy.deepcopy(cfg))
            except Exception as e:
                # mmengine fails on an empty file list with a numpy message.
                raise ConfigError(
                    f"cannot build {cfg['type']} ({type(e).__name__}: {e}); "
                    f"is data_root {cfg.get('data_root')!r} with data_prefix "
                    f"{_plain(cfg.get('data_prefix'))} a converted dataset "
                    'folder, and not empty?') from e
    raise ConfigError(f"dataset type {cfg.get('type')!r} is not registered "
                      f'in {scopes}; is the package that defines it '
                      'imported?')


def _label_loader(dataset):
    """The dataset's own mmseg ``LoadAnnotations`` (so that the counts see
    labels exactly as training does), or a default one."""
    from mmseg.datasets.transforms import LoadAnnotations
    stack = [dataset]
    while stack:
        ds = stack.pop(0)
        for transform in getattr(getattr(ds, 'pipeline', None), 'transforms',
                                 []):
            if isinstance(transform, LoadAnnotations):
                return copy.copy(transform)
        inner = getattr(ds, 'dataset', None)
        stack += [inner] if inner is not None else []
        stack += list(getattr(ds, 'datasets', []) or [])
    return LoadAnnotations()


class _Counter:
    """Counts the label values of one sample (runs in workers)."""

    def __init__(self, num_classes: int, ignore_index: int, loader=None,
                 dataset=None):
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.loader = loader
        self.dataset = dataset

    def label_map(self, item) -> Tuple[np.ndarray, str]:
        if self.dataset is not None:
            info = self.dataset.get_data_info(item)
            return info['gt_seg_map'], f'sample {item} of the dataset'
        path, reduce_zero_label, label_map = item
        results = dict(
            seg_map_path=path,
            reduce_zero_label=reduce_zero_label,
            label_map=label_map,
            seg_fields=[])
        try:
            copy.copy(self.loader)._load_seg_map(results)
        except Exception as e:
            raise ValueError(f'cannot read label file {path!r}: '
                             f'{type(e).__name__}: {e}') from None
        return results['gt_seg_map'], f'label file {path!r}'

    def __call__(self, items: Sequence[Tuple[Any, int]]) -> np.ndarray:
        hist = np.zeros(256, np.int64)
        for item, weight in items:
            label, where = self.label_map(item)
            label = np.asarray(label)
            if label.dtype != np.uint8 and (label.min() < 0
                                            or label.max() > 255):
                raise ValueError(f'{where} holds values outside 0-255')
            one = np.bincount(label.ravel().astype(np.uint8), minlength=256)
            bad = [int(v) for v in np.flatnonzero(one)
                   if v >= self.num_classes and v != self.ignore_index]
            if bad:
                raise ValueError(
                    f'{where} holds label values {bad[:10]}; expected class '
                    f'indices 0-{self.num_classes - 1} or the ignore index '
                    f'{self.ignore_index} (are these raw codes that the '
                    "dataset's label_map should convert?)")
            hist += weight * one
        return hist


_worker_counter: Optional[_Counter] = None


def _init_worker(counter: _Counter) -> None:
    global _worker_counter
    _worker_counter = counter


def _count_in_worker(items: Sequence[Tuple[Any, int]]) -> np.ndarray:
    return _worker_counter(items)


def _count_pixels(counter: _Counter, items: Sequence[Tuple[Any, int]],
                  num_workers: int, progress: bool) -> np.ndarray:
    """Histogram of label values over ``(item, weight)`` pairs."""
    chunks = [items[i:i + _CHUNK] for i in range(0, len(items), _CHUNK)]
    hist = np.zeros(256, np.int64)
    bar = tqdm(total=len(items), desc='counting labels', unit='img',
               disable=not progress)
    if num_workers > 0 and len(chunks) > 1:
        # The counter (and a generated dataset in it) goes to each worker
        # once, not with every chunk.
        with Pool(num_workers, _init_worker, (counter, )) as pool:
            for chunk, part in zip(chunks,
                                   pool.imap(_count_in_worker, chunks)):
                hist += part
                bar.update(len(chunk))
    else:
        for chunk in chunks:
            hist += counter(chunk)
            bar.update(len(chunk))
    bar.close()
    return hist


def _digest(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _plain(cfg) -> Any:
    return cfg.to_dict() if hasattr(cfg, 'to_dict') else cfg


def _file_state(path: str) -> List:
    try:
        st = os.stat(path)
    except OSError:
        raise ValueError(f'label file {path!r} does not exist') from None
    return [st.st_size, st.st_mtime_ns]


def _cache_path(cache_dir: Optional[str], fingerprint: str) -> str:
    folder = cache_dir or os.environ.get(CACHE_ENV) or DEFAULT_CACHE_DIR
    return osp.join(osp.expanduser(folder), f'{fingerprint}.json')


def _read_cache(path: str, fingerprint: str) -> Optional[ClassStats]:
    try:
        with open(path) as f:
            stats = ClassStats.from_dict(json.load(f))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return stats if stats.fingerprint == fingerprint else None


def _write_cache(path: str, stats: ClassStats) -> None:
    try:
        stats.to_json(path)
    except OSError as e:
        warnings.warn(f'class statistics not cached at {path!r}: {e}')


def class_frequencies(dataset_or_cfg: Union[dict, Any],
                      num_classes: Optional[int] = None,
                      ignore_index: int = 255,
                      num_workers: int = 0,
                      cache_dir: Optional[str] = None,
                      default_scope: Optional[str] = None,
                      progress: bool = False) -> ClassStats:
    """Count the classes of a dataset.

    Args:
        dataset_or_cfg: A built dataset (wrappers included) or its config.
        num_classes: Number of classes; defaults to the length of the
            dataset's ``metainfo['classes']``, and must agree with it.
        ignore_index: Label value that is not counted (segmentation).
        num_workers: Worker processes reading label files.
        cache_dir: Where segmentation results are cached; defaults to
            ``$MMIMB_CACHE_DIR`` or ``~/.cache/mmimb/class_stats``.
        default_scope: ``'mmseg'`` or ``'mmpretrain'``, the registry a config
            is built in; ``None`` tries both.
        progress: Show a progress bar while counting pixels.

    Returns:
        ClassStats: ``counts``, ``frequencies``, ``classes``, ``kind``
        (``'pixel'`` or ``'sample'``) and ``to_json(path)``.

    Raises:
        ValueError: For an empty dataset, a label value that is neither a
            class index nor ``ignore_index`` (naming the file), a class
            count that disagrees with the dataset, or no labels at all.
    """
    cfg = None
    if isinstance(dataset_or_cfg, dict):
        cfg = _plain(dataset_or_cfg)
        dataset = build_dataset(dataset_or_cfg, default_scope)
    else:
        dataset = dataset_or_cfg
    if hasattr(dataset, 'full_init'):
        dataset.full_init()
    if len(dataset) == 0:
        raise ValueError(f'{type(dataset).__name__} is empty: nothing to '
                         'count (check data_root and data_prefix)')
    classes = tuple((getattr(dataset, 'metainfo', None) or {}).get(
        'classes') or ())
    if num_classes is None:
        num_classes = len(classes)
    if not num_classes:
        raise ValueError(f'{type(dataset).__name__} declares no classes in '
                         'its metainfo; pass num_classes')
    if classes and len(classes) != num_classes:
        raise ValueError(f'num_classes={num_classes} but the dataset has '
                         f'{len(classes)} classes {list(classes)}')
    classes = classes or tuple(str(i) for i in range(num_classes))

    first = dataset.get_data_info(0)
    if 'gt_seg_map' not in first and 'seg_map_path' not in first:
        labels = single_labels(dataset, 'class statistics')
        out_of_range = labels[(labels < 0) | (labels >= num_classes)]
        if out_of_range.size:
            raise ValueError(
                f'{type(dataset).__name__} has sample labels '
                f'{np.unique(out_of_range)[:10].tolist()} outside 0-'
                f'{num_classes - 1}')
        return ClassStats(
            np.bincount(labels, minlength=num_classes),
            classes,
            'sample',
            ignore_index=ignore_index,
            num_images=len(dataset),
            fingerprint=_digest(['sample', classes,
                                 hashlib.sha256(labels.astype(
                                     np.int64).tobytes()).hexdigest()]))

    common = [STATS_VERSION, classes, num_classes, ignore_index]
    if 'gt_seg_map' in first:
        items = [(i, 1) for i in range(len(dataset))]
        counter = _Counter(num_classes, ignore_index, dataset=dataset)
        # Generated labels: identified by the config and the generator code;
        # a dataset object without its config is not cached.
        fingerprint = None if cfg is None else _digest(common + [
            {k: v for k, v in cfg.items() if k != 'pipeline'},
            hashlib.sha256(
                inspect.getsource(inspect.getmodule(
                    type(dataset))).encode()).hexdigest()
        ])
    else:
        # A label file that the indices visit n times (repeat or resampling
        # wrappers) is read once and counted n times.
        weights = {}
        for i in range(len(dataset)):
            info = first if i == 0 else dataset.get_data_info(i)
            key = (info['seg_map_path'], bool(info.get('reduce_zero_label')),
                   tuple(sorted((info.get('label_map') or {}).items())))
            weights[key] = weights.get(key, 0) + 1
        items = [((path, rzl, dict(lm) or None), n)
                 for (path, rzl, lm), n in weights.items()]
        loader = _label_loader(dataset)
        counter = _Counter(num_classes, ignore_index, loader=loader)
        fingerprint = _digest(common + [repr(loader)] + [
            [list(key), n] + _file_state(key[0])
            for key, n in weights.items()
        ])

    cache = fingerprint and _cache_path(cache_dir, fingerprint)
    if cache:
        cached = _read_cache(cache, fingerprint)
        if cached is not None:
            return cached
    hist = _count_pixels(counter, items, num_workers, progress)
    stats = ClassStats(
        hist[:num_classes],
        classes,
        'pixel',
        ignore_index=ignore_index,
        num_images=len(dataset),
        fingerprint=fingerprint or '')
    if cache:
        _write_cache(cache, stats)
    return stats
