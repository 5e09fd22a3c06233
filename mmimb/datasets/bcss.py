"""BCSS (Breast Cancer Semantic Segmentation, Amgad et al., Bioinformatics
2019) as used by the DFA experiments: 5 tissue groups.

The source masks carry the 22 ground-truth codes of the BCSS repository's
``meta/gtruth_codes.tsv``; :data:`BCSS_CODES` reproduces that table. The
converter ``tools/dataset_converters/bcss.py`` groups them with
:data:`DEFAULT_GROUPING` (or a grouping of the user's) into the labels this
dataset reads; the conversion functions live here too.
"""
import json
import os
import os.path as osp
import re
from functools import partial
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from .conversion import (IGNORE_INDEX, SPLITS, ConversionError, Sample, Skip,
                         Task, assign_splits, check_same_size, pair_files,
                         read_image, read_label_image, run_conversion)

# meta/gtruth_codes.tsv of github.com/PathologyDataScience/BCSS.
BCSS_CODES = {
    'outside_roi': 0,
    'tumor': 1,
    'stroma': 2,
    'lymphocytic_infiltrate': 3,
    'necrosis_or_debris': 4,
    'glandular_secretions': 5,
    'blood': 6,
    'exclude': 7,
    'metaplasia_NOS': 8,
    'fat': 9,
    'plasma_cells': 10,
    'other_immune_infiltrate': 11,
    'mucoid_material': 12,
    'normal_acinus_or_duct': 13,
    'lymphatics': 14,
    'undetermined': 15,
    'nerve': 16,
    'skin_adnexa': 17,
    'blood_vessel': 18,
    'angioinvasion': 19,
    'dcis': 20,
    'other': 21,
}

# Class name -> BCSS codes; 'ignore' codes become 255 (don't care). Codes 0
# (outside the ROI) and 7 (exclude) are don't-care by the dataset's own
# instructions; the tissue grouping is the one common in the literature.
DEFAULT_GROUPING = {
    'tumor': [1, 19, 20],
    'stroma': [2],
    'inflammatory': [3, 10, 11, 14],
    'necrosis': [4],
    'other': [5, 6, 8, 9, 12, 13, 15, 16, 17, 18, 21],
    'ignore': [0, 7],
}


@DATASETS.register_module()
class BCSSDataset(BaseSegDataset):
    """BCSS tiles written by ``tools/dataset_converters/bcss.py``.

    Layout: ``img_dir/{train,val,test}/*.png`` (RGB tiles) and
    ``ann_dir/{train,val,test}/*.png`` (uint8 labels 0-4, 255 = don't
    care), with the same file names.

    Args:
        img_suffix: Suffix of the image files.
        seg_map_suffix: Suffix of the label files.
        **kwargs: Other :class:`mmseg.datasets.BaseSegDataset` arguments.
    """

    METAINFO = dict(
        classes=('tumor', 'stroma', 'inflammatory', 'necrosis', 'other'),
        palette=[[200, 0, 0], [240, 160, 200], [40, 60, 220], [120, 120, 40],
                 [0, 160, 160]])

    def __init__(self,
                 img_suffix: str = '.png',
                 seg_map_suffix: str = '.png',
                 **kwargs) -> None:
        super().__init__(
            img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)


# --- Conversion from the public release (tools/dataset_converters/bcss.py).

# The six institutions (TCGA tissue source sites) of the official BCSS test
# set, also used by DFA.
TEST_SITES = ('OL', 'LL', 'E2', 'EW', 'GM', 'S3')
# ROI file names of the 0.25 MPP release, e.g.
# TCGA-A1-A0SK-DX1_xmin45749_ymin25055_MPP-0.2500.png; the repository's
# download script writes ..._xmin45749_ymin25055_.png.
BCSS_NAME = re.compile(
    r'^(?P<slide>TCGA-(?P<site>[A-Z0-9]{2})-(?P<patient>[A-Z0-9]{4})[^_]*)'
    r'_xmin(?P<xmin>\d+)_ymin(?P<ymin>\d+)(?:_MPP-(?P<mpp>[0-9.]+))?_?$')
IMAGE_FOLDERS = ('rgbs_colorNormalized', 'images')


def parse_roi_name(path: str) -> dict:
    """Slide, TCGA site (institution), patient and ROI origin of a BCSS
    file.

    Raises:
        ConversionError: If the name does not follow the BCSS pattern.
    """
    stem = osp.splitext(osp.basename(path))[0]
    match = BCSS_NAME.match(stem)
    if match is None:
        raise ConversionError(
            f'{path!r} is not named like a BCSS region '
            '(TCGA-XX-XXXX-DX1_xmin<x>_ymin<y>_MPP-<mpp>.png)')
    info = match.groupdict()
    info['case'] = f"TCGA-{info['site']}-{info['patient']}"
    info['roi'] = (info['slide'], int(info['xmin']), int(info['ymin']))
    return info


def grouping_table(grouping: Dict[str, List[int]]) -> Tuple[List[str],
                                                            np.ndarray]:
    """Check a grouping and turn it into a lookup table.

    Args:
        grouping: Class name -> BCSS codes, in label order; the key
            ``'ignore'`` lists codes that become 255.

    Returns:
        tuple: The class names and a uint16 table of 256 entries: the label
        of each code, 255 for ignored codes, 256 for codes not in the
        grouping.

    Raises:
        ConversionError: For a code listed twice or outside 0-255, or no
            class.
    """
    table = np.full(256, 256, dtype=np.uint16)
    classes = [name for name in grouping if name != 'ignore']
    if not classes or len(classes) > 255:
        raise ConversionError(f'grouping needs 1 to 255 classes, got '
                              f'{classes}')
    for name, codes in grouping.items():
        label = IGNORE_INDEX if name == 'ignore' else classes.index(name)
        for code in codes:
            if not isinstance(code, int) or not 0 <= code <= 255:
                raise ConversionError(f'grouping {name!r} lists code '
                                      f'{code!r}; expected integers 0-255')
            if table[code] != 256:
                raise ConversionError(f'grouping lists code {code} twice')
            table[code] = label
    return classes, table


def load_grouping(path: str) -> Dict[str, List[int]]:
    """Read a grouping JSON file: ``{"class": [codes], ..., "ignore":
    [codes]}``, classes in label order."""
    try:
        with open(path) as f:
            grouping = json.load(f)
    except (OSError, ValueError) as e:
        raise ConversionError(f'cannot read grouping {path!r}: {e}') from None
    if not isinstance(grouping, dict) or not all(
            isinstance(v, list) for v in grouping.values()):
        raise ConversionError(f'grouping {path!r} must map class names to '
                              'lists of BCSS codes')
    return grouping


def find_release_folders(source: str) -> Tuple[str, str]:
    """The image and mask folders of a BCSS release under ``source``.

    ``source`` is the release folder (``0_Public-data-Amgad2019_0.25MPP``,
    holding ``rgbs_colorNormalized/`` and ``masks/``) or a folder with
    exactly one such folder inside.
    """
    candidates = [source] + sorted(
        osp.join(source, d) for d in os.listdir(source)
        if osp.isdir(osp.join(source, d))) if osp.isdir(source) else []
    for folder in candidates:
        images = [osp.join(folder, d) for d in IMAGE_FOLDERS
                  if osp.isdir(osp.join(folder, d))]
        if images and osp.isdir(osp.join(folder, 'masks')):
            return images[0], osp.join(folder, 'masks')
    raise ConversionError(
        f'{source!r} is not a BCSS release folder: expected '
        f'{IMAGE_FOLDERS[0]}/ (or images/) and masks/ in it or in one '
        'folder below it')


def tile_starts(length: int, size: int, stride: int) -> List[int]:
    """Tile origins covering ``length``: every ``stride``, plus one flush
    with the end when the last regular tile stops short of it."""
    if length <= size:
        return [0]
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] != length - size:
        starts.append(length - size)
    return starts


def bcss_tasks(source: str,
               test_sites: Sequence[str],
               val_fraction: float,
               seed: int,
               check_sites: bool = True) -> Tuple[List[Task], List[Skip],
                                                  dict]:
    """Pair images with masks and assign each region to a split.

    Test: regions of the ``test_sites`` institutions. Validation: all
    regions of a seeded ``val_fraction`` of the cases (patients) of the
    other institutions. Train: the rest. No slide or case is in two splits.
    With ``check_sites``, a test site without regions in the release is an
    error (a misspelt site would leave the test split silently short).
    """
    image_dir, mask_dir = find_release_folders(source)
    if not any(n.lower().endswith('.png') for n in os.listdir(mask_dir)):
        raise ConversionError(f'no BCSS masks (*.png) in {mask_dir!r}')
    pairs, skipped = pair_files(
        image_dir, mask_dir, key=lambda path: parse_roi_name(path)['roi'])
    info = {roi: parse_roi_name(mask) for roi, (_, mask) in pairs.items()}
    test_sites = set(test_sites)
    sites = sorted({i['site'] for i in info.values()})
    missing = sorted(test_sites.difference(sites))
    if check_sites and missing:
        raise ConversionError(
            f'test sites {missing} do not occur in {mask_dir!r}; its sites '
            f'are {sites} (TCGA site codes, upper case)')
    train_cases = sorted({
        i['case']
        for i in info.values() if i['site'] not in test_sites
    })
    case_split = assign_splits(
        train_cases, dict(train=1 - val_fraction, val=val_fraction), seed)
    tasks, cases = [], {split: set() for split in SPLITS}
    for roi, (image_path, mask_path) in pairs.items():
        case = info[roi]['case']
        split = 'test' if info[roi]['site'] in test_sites else case_split[case]
        cases[split].add(case)
        key = osp.splitext(osp.basename(mask_path))[0]
        tasks.append(Task(key, split, (image_path, mask_path)))
    extra = dict(split_rule=dict(
        test_sites=sorted(test_sites),
        val_fraction_of_training_cases=val_fraction,
        seed=seed,
        cases={split: sorted(found)
               for split, found in cases.items()}))
    return tasks, skipped, extra


def convert_roi(task: Task, tile_size: int, stride: int, table: np.ndarray,
                min_labelled: float) -> Iterator[Union[Sample, Skip]]:
    """Cut one region into labelled tiles (the worker of
    :func:`convert_bcss`)."""
    image_path, mask_path = task.source
    image = read_image(image_path)
    mask = read_label_image(mask_path)
    if mask.ndim != 2 or mask.dtype != np.uint8:
        raise ConversionError(
            f'mask {mask_path!r} has shape {mask.shape} and dtype '
            f'{mask.dtype}; expected a single-channel 8-bit BCSS mask')
    check_same_size(image, mask, image_path, mask_path)
    mapped = table[mask]
    unknown = np.unique(mask[mapped == 256])
    if unknown.size:
        raise ConversionError(
            f'mask {mask_path!r} holds codes {unknown.tolist()} that the '
            'grouping does not list (BCSS codes are 0-21)')
    label = mapped.astype(np.uint8)
    height, width = label.shape
    for y in tile_starts(height, tile_size, stride):
        for x in tile_starts(width, tile_size, stride):
            name = f'{task.key}_x{x}_y{y}'
            tile_label = np.full((tile_size, tile_size), IGNORE_INDEX,
                                 np.uint8)
            tile_image = np.zeros((tile_size, tile_size, 3), np.uint8)
            part = label[y:y + tile_size, x:x + tile_size]
            tile_label[:part.shape[0], :part.shape[1]] = part
            tile_image[:part.shape[0], :part.shape[1]] = image[
                y:y + tile_size, x:x + tile_size]
            labelled = float(np.mean(tile_label != IGNORE_INDEX))
            if labelled == 0 or labelled < min_labelled:
                yield Skip(name, 'tile without enough labelled pixels')
                continue
            yield Sample(name, tile_image, tile_label)


def convert_bcss(source: str,
                 out_dir: str,
                 tile_size: int = 1024,
                 stride: Optional[int] = None,
                 grouping: Optional[Dict[str, List[int]]] = None,
                 test_sites: Optional[Sequence[str]] = None,
                 val_fraction: float = 0.1,
                 seed: int = 0,
                 min_labelled: float = 0.0,
                 workers: int = 0,
                 progress: bool = True) -> dict:
    """Convert the BCSS release to tiles in the mmseg layout.

    Args:
        source: The release folder (see :func:`find_release_folders`).
        out_dir: Output folder.
        tile_size: Side of the square tiles; regions smaller than a tile are
            padded (image 0, label 255).
        stride: Distance between tiles; defaults to ``tile_size``.
        grouping: Class name -> BCSS codes (see :func:`grouping_table`);
            defaults to :data:`DEFAULT_GROUPING`.
        test_sites: TCGA site codes of the test institutions; each must
            occur in the release. Defaults to :data:`TEST_SITES`, of which
            a partial copy of the release may lack some.
        val_fraction: Fraction of the training institutions' cases whose
            regions form the validation split.
        seed: Seed of the validation choice.
        min_labelled: Tiles with a smaller fraction of labelled (not 255)
            pixels are skipped; tiles with none always are.
        workers: Worker processes.
        progress: Show a progress bar.

    Returns:
        dict: The summary written to ``out_dir/summary.json``.
    """
    stride = stride or tile_size
    if tile_size < 1 or stride < 1:
        raise ConversionError(f'tile size {tile_size} and stride {stride} '
                              'must be positive')
    if not 0 <= val_fraction < 1:
        raise ConversionError(f'val fraction {val_fraction} must be in '
                              '[0, 1)')
    grouping = dict(grouping or DEFAULT_GROUPING)
    classes, table = grouping_table(grouping)
    check_sites = test_sites is not None
    test_sites = TEST_SITES if test_sites is None else test_sites
    tasks, skipped, extra = bcss_tasks(source, test_sites, val_fraction, seed,
                                       check_sites)
    options = dict(
        tile_size=tile_size,
        stride=stride,
        # Pairs, not a mapping: the order gives the label numbers and a
        # comparison of mappings would ignore it.
        grouping=[[name, list(codes)] for name, codes in grouping.items()],
        test_sites=sorted(test_sites),
        val_fraction=val_fraction,
        seed=seed,
        min_labelled=min_labelled)
    process = partial(
        convert_roi,
        tile_size=tile_size,
        stride=stride,
        table=table,
        min_labelled=min_labelled)
    return run_conversion(
        'bcss',
        tasks,
        process,
        out_dir,
        classes,
        options=options,
        skipped=skipped,
        extra=extra,
        workers=workers,
        progress=progress)
