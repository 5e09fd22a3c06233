"""Small copies of the public dataset releases, written to a folder.

Each writer reproduces its release's layout, file names, label codes and
image formats (8-bit RGB images, single-channel masks), at sizes small
enough for tests. Tests reach this module through the ``dataset_fixtures``
fixture of ``tests/conftest.py`` (the tests folder is not a package);
``converted_bcss`` there gives a converted BCSS folder ready for training.
"""
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

from mmimb.datasets.bcss import BCSS_CODES
from mmimb.datasets.ebhi_seg import EBHI_CATEGORIES

# (slide, xmin, ymin, height, width) of each BCSS region. Sites A1, A2, AR,
# BH, C8 train; OL, LL, E2 are test institutions. Case TCGA-AR-A1AR has two
# regions, so a split that divided a case would show. One region is smaller
# than a 64 px tile, one is not a multiple of it.
BCSS_ROIS = (
    ('TCGA-A1-A0SK-DX1', 45749, 25055, 150, 130),
    ('TCGA-A2-A0CM-DX1', 31226, 14302, 128, 128),
    ('TCGA-AR-A1AR-DX1', 30013, 19204, 96, 140),
    ('TCGA-AR-A1AR-DX1', 52400, 20011, 70, 70),
    ('TCGA-BH-A0BG-DX1', 12808, 40016, 50, 90),
    ('TCGA-C8-A12V-DX1', 60210, 11100, 100, 100),
    ('TCGA-A2-A0D2-DX1', 22451, 31876, 80, 120),
    ('TCGA-OL-A66I-DX1', 40122, 22133, 110, 90),
    ('TCGA-LL-A5YP-DX1', 28650, 17321, 80, 100),
    ('TCGA-E2-A1B6-DX1', 35001, 26000, 90, 90),
)
BCSS_RELEASE = '0_Public-data-Amgad2019_0.25MPP'


def bcss_file_name(slide: str, xmin: int, ymin: int) -> str:
    return f'{slide}_xmin{xmin}_ymin{ymin}_MPP-0.2500.png'


def _bcss_mask(rng: np.random.Generator, height: int, width: int):
    """Blocks of random BCSS tissue codes (1-21, 7 = exclude among them), an
    irregular outside-the-ROI (code 0) border as in the release."""
    coarse = rng.integers(1, 22, (6, 6)).astype(np.uint8)
    mask = cv2.resize(coarse, (width, height),
                      interpolation=cv2.INTER_NEAREST)
    border = rng.integers(3, 12)
    mask[:border, :width // 2] = 0
    mask[height - border // 2:, :] = 0
    return mask


def write_bcss_release(root: Path,
                       rois: Sequence[Tuple] = BCSS_ROIS,
                       seed: int = 0) -> Path:
    """Write ``root/0_Public-data-Amgad2019_0.25MPP`` with
    ``rgbs_colorNormalized/``, ``masks/`` and ``meta/gtruth_codes.tsv``.

    Returns:
        Path: The release folder.
    """
    rng = np.random.default_rng(seed)
    release = Path(root) / BCSS_RELEASE
    for sub in ('rgbs_colorNormalized', 'masks', 'meta'):
        (release / sub).mkdir(parents=True, exist_ok=True)
    (release / 'meta' / 'gtruth_codes.tsv').write_text(
        'label\tGT_code\n' + ''.join(f'{name}\t{code}\n'
                                     for name, code in BCSS_CODES.items()))
    for slide, xmin, ymin, height, width in rois:
        name = bcss_file_name(slide, xmin, ymin)
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        cv2.imwrite(str(release / 'rgbs_colorNormalized' / name), image)
        cv2.imwrite(str(release / 'masks' / name),
                    _bcss_mask(rng, height, width))
    return release


CRAG_COUNTS = {'train': 4, 'valid': 2}


def write_crag_release(root: Path,
                       counts: Dict[str, int] = CRAG_COUNTS,
                       size: Tuple[int, int] = (60, 52),
                       annotation_dtype=np.uint8,
                       seed: int = 0) -> Path:
    """Write ``root/CRAG_v2/CRAG/{train,valid}/{Images,Annotation,Overlay}``
    with ``train_<n>.png`` / ``test_<n>.png``: RGB images and single-channel
    instance annotations (0 background, 1..N gland instances).

    Returns:
        Path: The ``CRAG_v2`` folder.
    """
    rng = np.random.default_rng(seed)
    release = Path(root) / 'CRAG_v2'
    height, width = size
    for split, count in counts.items():
        prefix = 'train' if split == 'train' else 'test'
        folders = {
            sub: release / 'CRAG' / split / sub
            for sub in ('Images', 'Annotation', 'Overlay')
        }
        for folder in folders.values():
            folder.mkdir(parents=True, exist_ok=True)
        for n in range(1, count + 1):
            image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            annotation = np.zeros((height, width), annotation_dtype)
            for instance in range(1, int(rng.integers(2, 5))):
                cy, cx = rng.integers(5, height - 5), rng.integers(5, width - 5)
                cv2.circle(annotation, (int(cx), int(cy)),
                           int(rng.integers(3, 9)),
                           int(instance * (300 if annotation_dtype == np.uint16
                                           else 1)), -1)
            name = f'{prefix}_{n}.png'
            cv2.imwrite(str(folders['Images'] / name), image)
            cv2.imwrite(str(folders['Annotation'] / name), annotation)
            cv2.imwrite(str(folders['Overlay'] / name), image)
    return release


# Images per category of the EBHI-Seg fixture; 'Low-grade IN' also gets the
# two images without a mask of the real release.
EBHI_COUNTS = {category: 5 for category in EBHI_CATEGORIES}
EBHI_UNMASKED = ('GT2012149-2-400-001', 'GTGT2012149-2-400-001')


# Category index of the folder whose first image belongs to a case of
# another folder, as case GT1815555 of the release sits in 'Low-grade IN'
# and 'Serrated adenoma'.
EBHI_SHARED_CASE = (list(EBHI_CATEGORIES).index('Serrated adenoma'),
                    list(EBHI_CATEGORIES).index('Low-grade IN'))


def ebhi_stem(category_index: int, n: int) -> str:
    # Two images per case, as in the release (case-slide-400-index).
    if (category_index, n) == (EBHI_SHARED_CASE[0], 0):
        return f'GT20{EBHI_SHARED_CASE[1]:02d}000-3-400-001'
    return f'GT20{category_index:02d}{n // 2:03d}-{n % 2 + 1}-400-001'


def write_ebhi_release(root: Path,
                       counts: Dict[str, int] = EBHI_COUNTS,
                       size: int = 40,
                       seed: int = 0) -> Path:
    """Write ``root/EBHI-SEG/<category>/{image,label}/<name>.png`` and
    ``readme.md``: RGB images, 8-bit grayscale masks with anti-aliased edges
    (gland bright), one all-255 mask, and the two unmasked images.

    Returns:
        Path: The ``EBHI-SEG`` folder.
    """
    rng = np.random.default_rng(seed)
    release = Path(root) / 'EBHI-SEG'
    release.mkdir(parents=True, exist_ok=True)
    (release / 'readme.md').write_text('EBHI-Seg fixture\n')
    for c, (category, count) in enumerate(counts.items()):
        image_dir = release / category / 'image'
        label_dir = release / category / 'label'
        image_dir.mkdir(parents=True, exist_ok=True)
        label_dir.mkdir(parents=True, exist_ok=True)
        for n in range(count):
            stem = ebhi_stem(c, n)
            image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            mask = np.zeros((size, size), np.uint8)
            cv2.ellipse(mask, (int(rng.integers(10, size - 10)),
                               int(rng.integers(10, size - 10))),
                        (int(rng.integers(5, 15)), int(rng.integers(5, 15))),
                        0, 0, 360, 255, -1)
            mask = cv2.GaussianBlur(mask, (5, 5), 1.5)
            if c == 0 and n == 0:
                mask[:] = 255
            cv2.imwrite(str(image_dir / f'{stem}.png'), image)
            cv2.imwrite(str(label_dir / f'{stem}.png'), mask)
        if category == 'Low-grade IN':
            for stem in EBHI_UNMASKED:
                cv2.imwrite(str(image_dir / f'{stem}.png'),
                            rng.integers(0, 256, (size, size, 3),
                                         dtype=np.uint8))
    return release


BDSA_CODES_USED = (0, 31, 63, 95, 127, 191)


def write_bdsa_folder(root: Path,
                      counts: Dict[str, int] = None,
                      size: int = 48,
                      seed: int = 0) -> Path:
    """Write a BDSA-coded folder ``root/bdsa/{img_dir,ann_dir}/<split>``:
    label images holding the published grey values.

    Returns:
        Path: The data root.
    """
    rng = np.random.default_rng(seed)
    counts = counts or {'train': 3, 'val': 2, 'test': 2}
    data_root = Path(root) / 'bdsa'
    for split, count in counts.items():
        for sub in ('img_dir', 'ann_dir'):
            (data_root / sub / split).mkdir(parents=True, exist_ok=True)
        for n in range(count):
            coarse = rng.choice(BDSA_CODES_USED, (4, 4)).astype(np.uint8)
            label = cv2.resize(coarse, (size, size),
                               interpolation=cv2.INTER_NEAREST)
            image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            cv2.imwrite(str(data_root / 'img_dir' / split / f'{n}.png'),
                        image)
            cv2.imwrite(str(data_root / 'ann_dir' / split / f'{n}.png'),
                        label)
    return data_root


def list_outputs(out_dir: Path) -> Dict[str, List[str]]:
    """Split -> sorted output stems of a converted folder."""
    return {
        split: sorted(p.stem for p in (Path(out_dir) / 'ann_dir' /
                                       split).glob('*.png'))
        for split in ('train', 'val', 'test')
    }
