"""What the dataset converters in ``tools/dataset_converters`` share.

A converter lists its source as :class:`Task` objects (one per source image
or region, with the split it goes to) and gives a function that turns one
task into :class:`Sample` outputs (an image and its label map) or
:class:`Skip` notes. :func:`run_conversion` does the rest, the same way for
every dataset:

* writes ``OUT/img_dir/<split>/<name>.png`` and
  ``OUT/ann_dir/<split>/<name>.png`` atomically (a temporary
  ``.<name>.part`` file renamed on success), so an interrupted run never
  leaves a half-written file;
* records each finished task in ``OUT/.convert_state/<key>.json`` and, when
  run again, skips the tasks whose outputs are all there (resumption); a
  run with other options than the first refuses to mix them into ``OUT``;
* shows a progress bar, optionally over worker processes;
* writes ``OUT/summary.json``: images per split (written now or by an
  earlier run), skipped sources with their reasons, and pixels per class
  per split.

Reading errors name the file (:class:`ConversionError`).
"""
import json
import os
import os.path as osp
import sys
import zlib
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from multiprocessing import Pool
from typing import (Any, Callable, Dict, Hashable, Iterable, List, Optional,
                    Sequence, Tuple, Union)

import cv2
import numpy as np
from tqdm import tqdm

SPLITS = ('train', 'val', 'test')
IGNORE_INDEX = 255
STATE_DIR = '.convert_state'
TEMP_SUFFIX = '.part'


class ConversionError(ValueError):
    """A source file or option the converter cannot use; the message names
    it and says what was expected."""


@dataclass
class Task:
    """One unit of source data (an image, a region of interest).

    Args:
        key: Unique name of the unit, usable as a file name; it names the
            unit's state record.
        split: ``'train'``, ``'val'`` or ``'test'``.
        source: Whatever the converter's function needs (paths, labels).
    """
    key: str
    split: str
    source: Any = None


@dataclass
class Sample:
    """One output pair.

    Args:
        name: Output file stem, unique within the dataset.
        image: BGR uint8 array (H, W, 3), as OpenCV reads and writes it.
        label: uint8 array (H, W): class indices, 255 = ignore.
    """
    name: str
    image: np.ndarray
    label: np.ndarray


@dataclass
class Skip:
    """A source, or part of one, deliberately left out, with the reason."""
    name: str
    reason: str


@dataclass
class TaskRecord:
    key: str
    split: str
    outputs: List[str] = field(default_factory=list)
    counts: List[int] = field(default_factory=list)
    ignored: int = 0
    skipped: List[dict] = field(default_factory=list)


def _imread(path: str, kind: str) -> np.ndarray:
    if not osp.isfile(path):
        raise ConversionError(f'{kind} file {path!r} does not exist')
    array = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if array is None:
        raise ConversionError(f'cannot read {kind} {path!r}: not a readable '
                              'image file (truncated or another format?)')
    return array


def read_image(path: str) -> np.ndarray:
    """Read an RGB(A) image file as a BGR uint8 array (H, W, 3).

    Raises:
        ConversionError: If the file is missing, unreadable or not a
            3-channel 8-bit image.
    """
    img = _imread(path, 'image')
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] not in (3, 4):
        raise ConversionError(
            f'image {path!r} has shape {img.shape} and dtype {img.dtype}; '
            'expected an 8-bit RGB image')
    return np.ascontiguousarray(img[..., :3])


def read_label_image(path: str) -> np.ndarray:
    """Read a mask or annotation file unchanged (8 or 16 bit, any channels).

    Raises:
        ConversionError: If the file is missing or unreadable.
    """
    return _imread(path, 'mask')


def pair_files(image_dir: str,
               label_dir: str,
               label_kind: str = 'mask',
               key: Callable[[str], Hashable] = None
               ) -> Tuple[Dict[Hashable, Tuple[str, str]], List[Skip]]:
    """Pair the PNG files of an image folder with those of a label folder.

    Args:
        image_dir: Folder of images.
        label_dir: Folder of masks or annotations.
        label_kind: What a label file is called in skip reasons.
        key: File path -> pairing key; defaults to the file stem.

    Returns:
        tuple: Key -> (image path, label path) for the files found in both,
        and a :class:`Skip` for each file without a partner.
    """
    key = key or (lambda path: osp.splitext(osp.basename(path))[0])

    def by_key(folder):
        return {
            key(osp.join(folder, name)): osp.join(folder, name)
            for name in sorted(os.listdir(folder))
            if name.lower().endswith('.png')
        }

    images, labels = by_key(image_dir), by_key(label_dir)
    skipped = [
        Skip(images[k], f'image without {label_kind}')
        for k in sorted(set(images) - set(labels))
    ] + [
        Skip(labels[k], f'{label_kind} without image')
        for k in sorted(set(labels) - set(images))
    ]
    paired = {k: (images[k], labels[k])
              for k in sorted(set(images) & set(labels))}
    return paired, skipped


def check_same_size(image: np.ndarray, label: np.ndarray, image_path: str,
                    label_path: str) -> None:
    """Raise :class:`ConversionError` unless the image and the label map
    have the same height and width."""
    if image.shape[:2] != label.shape[:2]:
        raise ConversionError(
            f'mask {label_path!r} is {label.shape[1]}x{label.shape[0]} but '
            f'its image {image_path!r} is {image.shape[1]}x{image.shape[0]}; '
            'expected the same size')


def write_png_atomic(path: str, array: np.ndarray) -> None:
    """Write a PNG under a temporary name and rename it into place."""
    ok, data = cv2.imencode('.png', array)
    if not ok:
        raise ConversionError(f'cannot encode {path!r} as PNG')
    temp = osp.join(osp.dirname(path), f'.{osp.basename(path)}{TEMP_SUFFIX}')
    try:
        with open(temp, 'wb') as f:
            f.write(data.tobytes())
        os.replace(temp, path)
    finally:
        if osp.exists(temp):
            os.remove(temp)


def write_json_atomic(path: str, obj: Any) -> None:
    """Write JSON under a temporary name and rename it into place."""
    temp = osp.join(osp.dirname(path), f'.{osp.basename(path)}{TEMP_SUFFIX}')
    try:
        with open(temp, 'w') as f:
            json.dump(obj, f, indent=1)
        os.replace(temp, path)
    finally:
        if osp.exists(temp):
            os.remove(temp)


def remove_temp_files(out_dir: str) -> int:
    """Delete temporary files an interrupted run left under ``out_dir``."""
    removed = 0
    for folder, _, files in os.walk(out_dir):
        for name in files:
            if name.startswith('.') and name.endswith(TEMP_SUFFIX):
                os.remove(osp.join(folder, name))
                removed += 1
    return removed


def seeded_rng(seed: int, stratum: str = '') -> np.random.Generator:
    """A generator that depends only on the seed and a stratum name."""
    return np.random.default_rng([seed, zlib.crc32(stratum.encode())])


def split_counts(total: int, fractions: Sequence[float]) -> List[int]:
    """Split ``total`` units by ``fractions`` (largest-remainder rounding,
    ties to the earlier split), so the counts sum to ``total``."""
    fractions = np.asarray(fractions, dtype=np.float64)
    if (fractions < 0).any() or fractions.sum() <= 0:
        raise ConversionError(f'split fractions {fractions.tolist()} must be '
                              'non-negative with a positive sum')
    exact = total * fractions / fractions.sum()
    counts = np.floor(exact).astype(int)
    order = sorted(range(len(exact)), key=lambda i: (counts[i] - exact[i], i))
    for i in order[:total - counts.sum()]:
        counts[i] += 1
    return counts.tolist()


def assign_splits(units: Iterable[str], fractions: Dict[str, float],
                  seed: int, stratum: str = '') -> Dict[str, str]:
    """Assign units (images, slides, patients) to splits at random.

    Args:
        units: Unit names; their order does not matter.
        fractions: Split name -> fraction of the units.
        seed: Seed; the result depends only on it, the stratum and the set
            of units.
        stratum: Name of the group being split (e.g. a category), so that
            strata are shuffled independently.

    Returns:
        dict: Unit -> split name.
    """
    units = sorted(set(units))
    order = seeded_rng(seed, stratum).permutation(len(units))
    counts = split_counts(len(units), list(fractions.values()))
    result, start = {}, 0
    for split, count in zip(fractions, counts):
        for i in order[start:start + count]:
            result[units[i]] = split
        start += count
    return result


def _record_path(out_dir: str, key: str) -> str:
    return osp.join(out_dir, STATE_DIR, f'{key}.json')


def _output_paths(out_dir: str, split: str, name: str) -> List[str]:
    return [
        osp.join(out_dir, sub, split, f'{name}.png')
        for sub in ('img_dir', 'ann_dir')
    ]


def _run_task(task: Task, process: Callable, out_dir: str,
              num_classes: int) -> TaskRecord:
    record = TaskRecord(task.key, task.split, counts=[0] * num_classes)
    for out in process(task):
        if isinstance(out, Skip):
            record.skipped.append(dict(source=out.name, reason=out.reason))
            continue
        hist = np.bincount(out.label.ravel(), minlength=256)
        bad = [int(v) for v in np.flatnonzero(hist)
               if v >= num_classes and v != IGNORE_INDEX]
        if bad:
            raise ConversionError(
                f'output {out.name!r} of {task.key!r} has label values '
                f'{bad}; expected 0-{num_classes - 1} or {IGNORE_INDEX}')
        img_path, ann_path = _output_paths(out_dir, task.split, out.name)
        write_png_atomic(img_path, out.image)
        write_png_atomic(ann_path, out.label)
        record.outputs.append(out.name)
        record.counts = [
            int(c + h) for c, h in zip(record.counts, hist[:num_classes])
        ]
        record.ignored += int(hist[IGNORE_INDEX])
    write_json_atomic(_record_path(out_dir, task.key), record.__dict__)
    return record


def _finished_record(out_dir: str, task: Task,
                     num_classes: int) -> Optional[TaskRecord]:
    path = _record_path(out_dir, task.key)
    if not osp.isfile(path):
        return None
    try:
        with open(path) as f:
            record = TaskRecord(**json.load(f))
    except (ValueError, TypeError):
        return None
    if record.split != task.split:
        # The split rule moved the source (the set of sources changed):
        # its outputs in the old split would put one image in two splits.
        for name in record.outputs:
            for old in _output_paths(out_dir, record.split, name):
                if osp.isfile(old):
                    os.remove(old)
        os.remove(path)
        return None
    if len(record.counts) != num_classes:
        return None
    for name in record.outputs:
        if not all(map(osp.isfile, _output_paths(out_dir, task.split,
                                                 name))):
            return None
    return record


def _check_options(out_dir: str, dataset: str, options: dict) -> None:
    path = osp.join(out_dir, STATE_DIR, 'options.json')
    current = json.loads(json.dumps(dict(dataset=dataset, **options)))
    if osp.isfile(path):
        with open(path) as f:
            previous = json.load(f)
        if previous != current:
            changed = sorted(k for k in set(previous) | set(current)
                             if previous.get(k) != current.get(k))
            raise ConversionError(
                f'{out_dir!r} holds a conversion with other options '
                f'(differing: {changed}; before: '
                f'{ {k: previous.get(k) for k in changed} }); write to an '
                'empty folder or delete this one')
    else:
        write_json_atomic(path, current)


def run_conversion(dataset: str,
                   tasks: Sequence[Task],
                   process: Callable[[Task], Iterable[Union[Sample, Skip]]],
                   out_dir: str,
                   classes: Sequence[str],
                   options: Optional[dict] = None,
                   skipped: Sequence[Skip] = (),
                   extra: Optional[dict] = None,
                   workers: int = 0,
                   progress: bool = True) -> dict:
    """Convert every task, resuming an earlier interrupted run.

    Args:
        dataset: Dataset name recorded in the summary.
        tasks: The source units; keys must be unique.
        process: Turns a task into samples and skip notes; must be a
            module-level function (or ``functools.partial`` of one) when
            ``workers > 0``.
        out_dir: Output folder.
        classes: Class names; label values must be below ``len(classes)``
            or 255.
        options: The conversion options, recorded and compared with those
            of an earlier run into the same ``out_dir``.
        skipped: Sources left out before conversion (e.g. an image without
            a mask), reported in the summary.
        extra: More entries for ``summary.json`` (e.g. the split rule).
        workers: Worker processes; 0 converts in this process.
        progress: Show a progress bar.

    Returns:
        dict: The summary, also written to ``out_dir/summary.json``.
    """
    options = dict(options or {})
    if not tasks:
        raise ConversionError(
            f'no {dataset} image with its label was found'
            + (f'; {len(skipped)} files without a partner, e.g. '
               f'{skipped[0].name!r} ({skipped[0].reason})' if skipped else
               '; is SOURCE the folder the dataset authors distribute?'))
    dup = sorted(k for k, n in Counter(t.key for t in tasks).items()
                 if n > 1)
    if dup:
        raise ConversionError(f'two source units share the names {dup[:5]}')
    for task in tasks:
        if task.split not in SPLITS or os.sep in task.key:
            raise ConversionError(f'bad task {task.key!r} -> {task.split!r}')
    os.makedirs(osp.join(out_dir, STATE_DIR), exist_ok=True)
    _check_options(out_dir, dataset, options)
    remove_temp_files(out_dir)
    for sub in ('img_dir', 'ann_dir'):
        for split in SPLITS:
            os.makedirs(osp.join(out_dir, sub, split), exist_ok=True)

    num_classes = len(classes)
    resumed, pending = [], []
    for task in tasks:
        record = _finished_record(out_dir, task, num_classes)
        (pending if record is None else resumed).append(record or task)

    run = partial(
        _run_task, process=process, out_dir=out_dir, num_classes=num_classes)
    bar = tqdm(
        total=len(tasks),
        initial=len(resumed),
        desc=f'converting {dataset}',
        unit='src',
        disable=not progress)
    done = []
    if workers > 0 and len(pending) > 1:
        with Pool(workers) as pool:
            for record in pool.imap_unordered(run, pending):
                done.append(record)
                bar.update()
    else:
        for task in pending:
            done.append(run(task))
            bar.update()
    bar.close()

    summary = _summarise(dataset, classes, options, done, resumed, skipped)
    summary.update(extra or {})
    write_json_atomic(osp.join(out_dir, 'summary.json'), summary)
    return summary


def _summarise(dataset: str, classes: Sequence[str], options: dict,
               done: List[TaskRecord], resumed: List[TaskRecord],
               skipped: Sequence[Skip]) -> dict:
    splits = {
        split: dict(
            images=0,
            sources=0,
            pixels_per_class={c: 0
                              for c in classes},
            ignored_pixels=0)
        for split in SPLITS
    }
    all_skipped = [dict(source=s.name, reason=s.reason) for s in skipped]
    for record in sorted(done + resumed, key=lambda r: r.key):
        entry = splits[record.split]
        entry['images'] += len(record.outputs)
        entry['sources'] += 1
        for name, count in zip(classes, record.counts):
            entry['pixels_per_class'][name] += count
        entry['ignored_pixels'] += record.ignored
        all_skipped.extend(record.skipped)
    by_reason: Dict[str, int] = {}
    for item in all_skipped:
        by_reason[item['reason']] = by_reason.get(item['reason'], 0) + 1
    return dict(
        dataset=dataset,
        classes=list(classes),
        ignore_index=IGNORE_INDEX,
        options=options,
        images_written=sum(len(r.outputs) for r in done),
        images_resumed=sum(len(r.outputs) for r in resumed),
        images_total=sum(s['images'] for s in splits.values()),
        splits=splits,
        skipped_by_reason=by_reason,
        skipped=all_skipped)


def format_summary(summary: dict) -> str:
    """A few lines for the console: images and class pixels per split."""
    lines = [
        f"{summary['dataset']}: {summary['images_total']} images "
        f"({summary['images_written']} written now, "
        f"{summary['images_resumed']} from an earlier run)"
    ]
    classes = summary['classes']
    width = max(map(len, classes + ['split'])) + 2
    lines.append('split'.ljust(8) + 'images'.rjust(8) +
                 ''.join(c.rjust(width) for c in classes))
    for split, entry in summary['splits'].items():
        total = sum(entry['pixels_per_class'].values()) or 1
        lines.append(split.ljust(8) + str(entry['images']).rjust(8) + ''.join(
            f"{entry['pixels_per_class'][c] / total:.3f}".rjust(width)
            for c in classes))
    for reason, count in summary['skipped_by_reason'].items():
        lines.append(f'skipped {count}: {reason}')
    return '\n'.join(lines)


def run_converter_cli(main: Callable[[], None]) -> None:
    """Run a converter's ``main``; a :class:`ConversionError` becomes one
    line on stderr and exit status 2."""
    try:
        main()
    except ConversionError as e:
        print(f'error: {e}', file=sys.stderr)
        sys.exit(2)
