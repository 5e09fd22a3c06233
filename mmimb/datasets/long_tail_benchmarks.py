"""The large long-tailed benchmarks from their annotation files.

- ImageNet-LT and Places-LT (Liu et al., "Large-Scale Long-Tailed
  Recognition in an Open World", CVPR 2019): list files
  ``ImageNet_LT_{train,val,test}.txt`` and ``Places_LT_{train,val,test}.txt``
  of the OLTR release, one ``<path> <label>`` line per image, the path
  relative to the image root (``train/n01440764/n01440764_190.JPEG 0``).
  :class:`ImageListDataset` reads them.
- iNaturalist 2018 (Van Horn et al., CVPR 2018): the COCO-style JSON files
  ``train2018.json`` and ``val2018.json`` (``images``, ``annotations`` with
  ``image_id`` and ``category_id``, ``categories``); the label is the
  ``category_id`` (0 to 8141), as in the list files the decoupling code
  generates from them (classifier-balancing
  ``data/iNaturalist18/gen_lists.py``). :class:`INat2018Dataset` reads
  them. The long-tail literature tests on ``val2018`` (3 images per
  class).

Both parse the whole file up front and name the file, line or entry of any
malformed annotation.
"""
import json
import os.path as osp
from typing import List, Optional

from mmengine.fileio import get_text, list_from_file
from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS


def _check_labels(labels: List[int], classes: Optional[tuple],
                  source: str) -> None:
    if classes and labels and max(labels) >= len(classes):
        raise ValueError(
            f'{source}: label {max(labels)} but the dataset metainfo has '
            f'{len(classes)} classes')


def _folder_names(data_list: List[dict], labels: List[int]) -> tuple:
    """Class names from the image folders (``train/airfield/x.jpg`` names
    its label ``airfield``) where every image of a label sits in one
    folder; the label number otherwise."""
    folders = {}
    for info, label in zip(data_list, labels):
        folders.setdefault(label, set()).add(
            osp.basename(osp.dirname(info['img_path'])))
    return tuple(
        next(iter(folders[c])) if len(folders.get(c, ())) == 1 else str(c)
        for c in range(max(labels) + 1))


@DATASETS.register_module()
class ImageListDataset(BaseDataset):
    """Images and labels from a list file of ``<path> <label>`` lines (the
    ImageNet-LT and Places-LT files of Liu et al. 2019).

    Paths are relative to ``data_root`` joined with ``data_prefix``; they
    may contain spaces (the label is the last field). Blank lines are
    skipped.

    Args:
        ann_file (str): The list file, relative to ``data_root`` or
            absolute.
        data_root (str): Root of the images.
        data_prefix (str): Folder of the images under ``data_root``.
            Defaults to ``''``.
        metainfo (dict, optional): ``classes``: names of the classes,
            indexed by label. By default each label is named after the
            folder its images are in (Places-LT: ``airfield``, ...), or its
            number where they are in several; the number of classes is then
            the largest label + 1.
        **kwargs: Other arguments of mmpretrain's ``BaseDataset``
            (``pipeline``, ``test_mode``, ``lazy_init``, ...).

    Raises:
        ValueError: Naming the file and line of a line without an integer
            label >= 0, or a label beyond ``metainfo['classes']``.
    """

    def load_data_list(self) -> List[dict]:
        data_list, labels = [], []
        prefix = self.img_prefix
        for number, line in enumerate(list_from_file(self.ann_file), 1):
            line = line.strip()
            if not line:
                continue
            parts = line.rsplit(maxsplit=1)
            if len(parts) != 2 or not parts[1].isdigit():
                raise ValueError(
                    f'{self.ann_file}, line {number}: expected "<image path> '
                    f'<label>" with an integer label >= 0, got {line!r}')
            labels.append(int(parts[1]))
            data_list.append(
                dict(img_path=osp.join(prefix, parts[0]),
                     gt_label=labels[-1]))
        if not self._metainfo.get('classes') and labels:
            self._metainfo['classes'] = _folder_names(data_list, labels)
        _check_labels(labels, self._metainfo.get('classes'), self.ann_file)
        return data_list


@DATASETS.register_module()
class INat2018Dataset(BaseDataset):
    """iNaturalist 2018 from its JSON annotations (``train2018.json``,
    ``val2018.json``), label = ``category_id``.

    Args:
        ann_file (str): The JSON file, relative to ``data_root`` or absolute.
        data_root (str): Root of the images (the ``file_name`` entries are
            relative to it, e.g. ``train_val2018/Plantae/7477/....jpg``).
        data_prefix (str): Folder of the images under ``data_root``.
            Defaults to ``''``.
        metainfo (dict, optional): ``classes``; by default the ``name`` of
            each category, ordered by id.
        **kwargs: Other arguments of mmpretrain's ``BaseDataset``.

    Raises:
        ValueError: Naming the file and entry for category ids that are not
            ``0 .. C-1``, an image with no or several annotations, or an
            annotation of an unknown image or category.
    """

    def load_data_list(self) -> List[dict]:
        source = self.ann_file
        try:
            data = json.loads(get_text(self.ann_file))
        except json.JSONDecodeError as e:
            raise ValueError(f'{source} is not valid JSON: {e}') from None
        missing = {'images', 'annotations', 'categories'} - set(data)
        if missing:
            raise ValueError(f'{source}: no {sorted(missing)} in the '
                             'annotation file (expected the iNaturalist 2018 '
                             'train2018.json / val2018.json format)')
        ids = sorted(c['id'] for c in data['categories'])
        if ids != list(range(len(ids))):
            raise ValueError(
                f'{source}: category ids must be 0 .. {len(ids) - 1} (they '
                f'are the labels), got {ids[:5]} ...')
        if not self._metainfo.get('classes'):
            names = {c['id']: c.get('name', str(c['id']))
                     for c in data['categories']}
            self._metainfo['classes'] = tuple(names[i] for i in ids)
        label_of = {}
        for ann in data['annotations']:
            image, category = ann.get('image_id'), ann.get('category_id')
            if category not in range(len(ids)):
                raise ValueError(f'{source}: annotation {ann.get("id")} has '
                                 f'category_id {category!r}, not a category')
            if image in label_of:
                raise ValueError(f'{source}: image {image} has several '
                                 'annotations; iNaturalist has one label per '
                                 'image')
            label_of[image] = category
        data_list = []
        for image in data['images']:
            if image['id'] not in label_of:
                raise ValueError(f'{source}: image {image["id"]} '
                                 f'({image.get("file_name")}) has no '
                                 'annotation')
            data_list.append(
                dict(img_path=osp.join(self.img_prefix, image['file_name']),
                     gt_label=label_of.pop(image['id'])))
        if label_of:
            raise ValueError(f'{source}: annotations of unknown images '
                             f'{sorted(label_of)[:5]}')
        _check_labels([d['gt_label'] for d in data_list],
                      self._metainfo.get('classes'), source)
        return data_list
