"""EBHI-Seg (Shi et al., Frontiers in Medicine 10:1114673, 2023): colorectal
biopsy images, one gland mask each, in six diagnostic categories.

The segmentation task built from it (ours, as described in
../shared/data/README.md and docs/datasets.md): background plus one gland
class per category, a mask's gland pixels taking the image's category. The
conversion functions live here too.
"""
import os
import os.path as osp
from functools import partial
from typing import Dict, Iterator, List, Optional, Tuple

import cv2
import numpy as np
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from .conversion import (IGNORE_INDEX, SPLITS, ConversionError, Sample, Skip,
                         Task, assign_splits, check_same_size, pair_files,
                         read_image, read_label_image, run_conversion)

# Source folder name -> class name, in the order of the dataset's readme.
# The label of a category is its position here plus 1 (0 is background).
EBHI_CATEGORIES = {
    'Normal': 'normal',
    'Polyp': 'polyp',
    'Low-grade IN': 'low_grade_IN',
    'High-grade IN': 'high_grade_IN',
    'Serrated adenoma': 'serrated_adenoma',
    'Adenocarcinoma': 'adenocarcinoma',
}


@DATASETS.register_module()
class EBHISegDataset(BaseSegDataset):
    """EBHI-Seg images written by ``tools/dataset_converters/ebhi_seg.py``.

    Layout: ``img_dir/{train,val,test}/*.png`` (224x224 RGB) and
    ``ann_dir/{train,val,test}/*.png`` with labels 0 (background), 1-6 (gland
    of the image's category, see :data:`EBHI_CATEGORIES`) and 255 (the
    optional band around gland edges).

    Args:
        img_suffix: Suffix of the image files.
        seg_map_suffix: Suffix of the label files.
        **kwargs: Other :class:`mmseg.datasets.BaseSegDataset` arguments.
    """

    METAINFO = dict(
        classes=('background', ) + tuple(EBHI_CATEGORIES.values()),
        palette=[[0, 0, 0], [60, 180, 75], [255, 225, 25], [0, 130, 200],
                 [245, 130, 48], [145, 30, 180], [230, 25, 75]])

    def __init__(self,
                 img_suffix: str = '.png',
                 seg_map_suffix: str = '.png',
                 **kwargs) -> None:
        super().__init__(
            img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)


# --- Conversion from the public release
# (tools/dataset_converters/ebhi_seg.py).

# The split the dataset authors describe (readme.md of the release): 40 %
# train, 40 % validation, 20 % test, drawn at random by image.
DEFAULT_FRACTIONS = dict(train=0.4, val=0.4, test=0.2)


def case_of(stem: str) -> str:
    """The case (patient) part of an EBHI-Seg file name: ``GT2001837`` of
    ``GT2001837-1-400-001``."""
    return stem.split('-')[0]


def ebhi_label(mask: np.ndarray, label: int, threshold: int,
               edge_band: int) -> np.ndarray:
    """Class map of one image: ``label`` where the mask is at least
    ``threshold``, 0 elsewhere, and 255 for pixels within ``edge_band``
    pixels (Chebyshev distance) of a pixel on the other side of the
    threshold."""
    gland = mask >= threshold
    out = np.where(gland, label, 0).astype(np.uint8)
    if edge_band > 0:
        kernel = np.ones((2 * edge_band + 1, ) * 2, np.uint8)
        fg = gland.astype(np.uint8)
        # A pixel is near the other side iff the window around it holds
        # both values: the dilation sees a gland pixel, the erosion a
        # background one. Outside the image counts as neither.
        near_gland = cv2.dilate(fg, kernel, borderType=cv2.BORDER_REPLICATE)
        near_background = cv2.erode(
            fg, kernel, borderType=cv2.BORDER_REPLICATE) == 0
        out[(near_gland == 1) & near_background] = IGNORE_INDEX
    return out


def find_categories(source: str) -> Dict[str, Tuple[str, str]]:
    """Category folder name -> (image folder, label folder)."""
    if not osp.isdir(source):
        raise ConversionError(f'EBHI-Seg folder {source!r} does not exist')
    folders = sorted(d for d in os.listdir(source)
                     if osp.isdir(osp.join(source, d)))
    unknown = [d for d in folders if d not in EBHI_CATEGORIES]
    if unknown:
        raise ConversionError(
            f'{source!r} holds folders {unknown} that are not EBHI-Seg '
            f'categories {list(EBHI_CATEGORIES)}; pass the EBHI-SEG folder')
    if not folders:
        raise ConversionError(
            f'{source!r} has no category folders; expected the EBHI-SEG '
            f'folder with {list(EBHI_CATEGORIES)}')
    found = {}
    for category in folders:
        image_dir = osp.join(source, category, 'image')
        label_dir = osp.join(source, category, 'label')
        for folder in (image_dir, label_dir):
            if not osp.isdir(folder):
                raise ConversionError(f'{folder!r} does not exist; each '
                                      'category holds image/ and label/')
        found[category] = (image_dir, label_dir)
    return found


def ebhi_tasks(source: str, fractions: Dict[str, float], seed: int,
               group_by: str) -> Tuple[List[Task], List[Skip], dict]:
    """Pair images with masks and split each category at random.

    ``group_by='image'`` (the authors' rule) draws images; ``'case'`` keeps
    all images of a case (file-name prefix) in one split. A case with images
    in several category folders is drawn once, with the cases of the first
    of them in :data:`EBHI_CATEGORIES` order.
    """
    if group_by not in ('image', 'case'):
        raise ConversionError(f"group_by={group_by!r}: expected 'image' or "
                              "'case'")
    order = list(EBHI_CATEGORIES)
    images, skipped = [], []
    for category, (image_dir, label_dir) in sorted(
            find_categories(source).items(),
            key=lambda item: order.index(item[0])):
        pairs, unpaired = pair_files(image_dir, label_dir)
        skipped += unpaired
        images += [(category, stem, pair) for stem, pair in pairs.items()]

    home = {}

    def unit(category: str, stem: str) -> Tuple[str, str]:
        """(stratum, name) of the unit drawn for an image."""
        if group_by == 'image':
            return category, stem
        case = case_of(stem)
        return home.setdefault(case, category), case

    strata = {}
    for category, stem, _ in images:
        stratum, name = unit(category, stem)
        strata.setdefault(stratum, set()).add(name)
    split_of = {
        stratum: assign_splits(names, fractions, seed, stratum)
        for stratum, names in strata.items()
    }
    tasks, per_split, categories_of = [], {}, {}
    for category, stem, pair in images:
        stratum, name = unit(category, stem)
        split = split_of[stratum][name]
        categories_of.setdefault(name, set()).add(category)
        per_split.setdefault(category, dict.fromkeys(fractions, 0))
        per_split[category][split] += 1
        tasks.append(
            Task(f'{EBHI_CATEGORIES[category]}_{stem}', split,
                 pair + (order.index(category) + 1, )))
    split_rule = dict(
        fractions=fractions, seed=seed, group_by=group_by,
        stratified_by='category')
    if group_by == 'case':
        split_rule['cases_in_several_categories'] = {
            case: [c for c in order if c in found]
            for case, found in sorted(categories_of.items())
            if len(found) > 1
        }
    extra = dict(split_rule=split_rule, images_per_category=per_split)
    return tasks, skipped, extra


def convert_image(task: Task, threshold: int,
                  edge_band: int) -> Iterator[Sample]:
    """One EBHI-Seg image and its label (the worker of
    :func:`convert_ebhi_seg`)."""
    image_path, mask_path, label = task.source
    image = read_image(image_path)
    mask = read_label_image(mask_path)
    if mask.dtype != np.uint8 or mask.ndim != 2:
        raise ConversionError(
            f'mask {mask_path!r} has shape {mask.shape} and dtype '
            f'{mask.dtype}; expected an 8-bit grayscale EBHI-Seg mask')
    check_same_size(image, mask, image_path, mask_path)
    yield Sample(task.key, image, ebhi_label(mask, label, threshold,
                                             edge_band))


def convert_ebhi_seg(source: str,
                     out_dir: str,
                     fractions: Optional[Dict[str, float]] = None,
                     seed: int = 0,
                     group_by: str = 'image',
                     threshold: int = 128,
                     edge_band: int = 0,
                     workers: int = 0,
                     progress: bool = True) -> dict:
    """Convert EBHI-Seg to 7-class labels in the mmseg layout.

    Args:
        source: The ``EBHI-SEG`` folder (category folders with ``image/``
            and ``label/``).
        out_dir: Output folder.
        fractions: Split -> fraction, default 4:4:2 as the authors.
        seed: Seed of the split, drawn per category.
        group_by: ``'image'`` (authors) or ``'case'`` (no case in two
            splits; our option).
        threshold: Mask values at or above it are gland.
        edge_band: Width in pixels of the band around gland edges marked
            255 (0: none).
        workers: Worker processes.
        progress: Show a progress bar.

    Returns:
        dict: The summary written to ``out_dir/summary.json``; images
        without a mask are listed under ``skipped``.
    """
    fractions = dict(fractions or DEFAULT_FRACTIONS)
    if set(fractions) - set(SPLITS):
        raise ConversionError(f'fractions {fractions} name splits other '
                              f'than {SPLITS}')
    if not 0 < threshold <= 255 or edge_band < 0:
        raise ConversionError(f'threshold {threshold} must be in 1-255 and '
                              f'edge band {edge_band} >= 0')
    tasks, skipped, extra = ebhi_tasks(source, fractions, seed, group_by)
    return run_conversion(
        'ebhi_seg',
        tasks,
        partial(convert_image, threshold=threshold, edge_band=edge_band),
        out_dir,
        EBHISegDataset.METAINFO['classes'],
        options=dict(
            fractions=fractions,
            seed=seed,
            group_by=group_by,
            threshold=threshold,
            edge_band=edge_band),
        skipped=skipped,
        extra=extra,
        workers=workers,
        progress=progress)
