"""CRAG (colorectal adenocarcinoma gland dataset, Graham et al., MILD-Net,
Medical Image Analysis 2019) as a binary gland segmentation task: the
dataset class and the conversion from the public release."""
import os.path as osp
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from .conversion import (ConversionError, Sample, Skip, Task, assign_splits,
                         check_same_size, pair_files, read_image,
                         read_label_image, run_conversion)


@DATASETS.register_module()
class CRAGDataset(BaseSegDataset):
    """CRAG images written by ``tools/dataset_converters/crag.py``.

    Layout: ``img_dir/{train,val,test}/*.png`` and
    ``ann_dir/{train,val,test}/*.png`` with labels 0 (background) and 1
    (gland: every nonzero instance id of the source annotation).

    Args:
        img_suffix: Suffix of the image files.
        seg_map_suffix: Suffix of the label files.
        **kwargs: Other :class:`mmseg.datasets.BaseSegDataset` arguments.
    """

    METAINFO = dict(
        classes=('background', 'gland'), palette=[[0, 0, 0], [255, 64, 64]])

    def __init__(self,
                 img_suffix: str = '.png',
                 seg_map_suffix: str = '.png',
                 **kwargs) -> None:
        super().__init__(
            img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)


# --- Conversion from the public release (tools/dataset_converters/crag.py).

# CRAG v2 (warwick.ac.uk/fac/cross_fac/tia/data/mildnet): CRAG/train and
# CRAG/valid (the 40 test images), each with Images/ and Annotation/ holding
# train_<n>.png / test_<n>.png.
SOURCE_SPLITS = {'train': ('train', ), 'test': ('valid', 'test')}
IMAGE_FOLDERS = ('Images', 'images')
ANNOTATION_FOLDERS = ('Annotation', 'Annotations', 'annotation')
EXPECTED_COUNTS = {'train': 173, 'test': 40}


def _subfolder(folder: str, names: Sequence[str]) -> Optional[str]:
    for name in names:
        if osp.isdir(osp.join(folder, name)):
            return osp.join(folder, name)
    return None


def find_release_folders(source: str) -> Dict[str, Tuple[str, str]]:
    """Source split -> (image folder, annotation folder) under ``source``
    (the ``CRAG`` folder, or a folder such as ``CRAG_v2`` holding it)."""
    for root in (source, osp.join(source, 'CRAG')):
        found = {}
        for split, names in SOURCE_SPLITS.items():
            folder = _subfolder(root, names)
            if folder is None:
                continue
            images = _subfolder(folder, IMAGE_FOLDERS)
            annotations = _subfolder(folder, ANNOTATION_FOLDERS)
            if images is None or annotations is None:
                raise ConversionError(
                    f'{folder!r} lacks Images/ or Annotation/; expected the '
                    'CRAG release layout')
            found[split] = (images, annotations)
        if len(found) == len(SOURCE_SPLITS):
            return found
    raise ConversionError(
        f'{source!r} is not a CRAG release folder: expected train/ and '
        'valid/ (each with Images/ and Annotation/) in it or in CRAG/')


def gland_label(annotation: np.ndarray) -> np.ndarray:
    """Binary label from an instance annotation: 1 wherever any channel of
    the instance id is nonzero."""
    nonzero = annotation != 0
    if nonzero.ndim == 3:
        nonzero = nonzero.any(axis=2)
    return nonzero.astype(np.uint8)


def convert_image(task: Task) -> Iterator[Sample]:
    """One CRAG image and its binary label (the worker of
    :func:`convert_crag`)."""
    image_path, annotation_path = task.source
    image = read_image(image_path)
    annotation = read_label_image(annotation_path)
    check_same_size(image, annotation, image_path, annotation_path)
    yield Sample(task.key, image, gland_label(annotation))


def crag_tasks(source: str, val_count: int,
               seed: int) -> Tuple[List[Task], List[Skip], dict]:
    """Pair images with annotations; the source train images go to train
    (``val_count`` of them, chosen with ``seed``, to val), the source test
    images to test."""
    tasks, skipped, found_counts = [], [], {}
    for split, (image_dir, annotation_dir) in find_release_folders(
            source).items():
        pairs, unpaired = pair_files(image_dir, annotation_dir,
                                     'annotation')
        skipped += unpaired
        paired = list(pairs)
        found_counts[split] = len(paired)
        assigned = {key: split for key in paired}
        if split == 'train' and val_count:
            if val_count >= len(paired):
                raise ConversionError(
                    f'--val-count {val_count} leaves no training image '
                    f'({len(paired)} in {image_dir!r})')
            assigned = assign_splits(
                paired,
                dict(train=len(paired) - val_count, val=val_count), seed)
        tasks += [
            Task(key, assigned[key], pairs[key])
            for key in paired
        ]
    extra = dict(
        split_rule=dict(val_count=val_count, seed=seed),
        source_counts=found_counts,
        expected_counts=EXPECTED_COUNTS)
    return tasks, skipped, extra


def convert_crag(source: str,
                 out_dir: str,
                 val_count: int = 0,
                 seed: int = 0,
                 workers: int = 0,
                 progress: bool = True) -> dict:
    """Convert the CRAG release to binary gland labels in the mmseg layout.

    Args:
        source: The release folder (see :func:`find_release_folders`).
        out_dir: Output folder.
        val_count: Training images moved to a validation split (CRAG has
            none; DFA validates on the test images).
        seed: Seed of that choice.
        workers: Worker processes.
        progress: Show a progress bar.

    Returns:
        dict: The summary written to ``out_dir/summary.json``.
    """
    tasks, skipped, extra = crag_tasks(source, val_count, seed)
    return run_conversion(
        'crag',
        tasks,
        convert_image,
        out_dir,
        CRAGDataset.METAINFO['classes'],
        options=dict(val_count=val_count, seed=seed),
        skipped=skipped,
        extra=extra,
        workers=workers,
        progress=progress)
