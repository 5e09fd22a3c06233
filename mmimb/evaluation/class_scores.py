"""Per-class Dice and IoU of a segmentation model over a whole split."""
from typing import Dict, Sequence

import torch
from mmseg.evaluation import IoUMetric

from mmimb.engine.config_check import ConfigError


def class_scores(areas: torch.Tensor,
                 classes: Sequence[str]) -> Dict[str, list]:
    """Dice and IoU per class from summed (intersection, union, prediction,
    label) areas, shape (4, C).

    Raises:
        ConfigError: If a class is neither labelled nor predicted (its Dice
            is undefined).
    """
    inter, union, pred, label = areas.double()
    undefined = [c for c, n in zip(classes, pred + label) if n == 0]
    if undefined:
        raise ConfigError(
            f'classes {undefined} occur neither in the labels nor in the '
            'predictions of this split: their Dice is undefined; evaluate on '
            'a split that contains them')
    return dict(
        dice=(2 * inter / (pred + label)).tolist(),
        iou=(inter / union.clamp(min=1)).tolist())


def label_ignore_index(model, dataset, default: int = 255) -> int:
    """The label that evaluation leaves out: the decode head's
    ``ignore_index`` (the one training used), else the dataset's (mmseg
    keeps it as an attribute of ``BaseSegDataset``, not in its metainfo),
    else ``default``."""
    for owner in (getattr(model, 'decode_head', None), dataset):
        value = getattr(owner, 'ignore_index', None)
        if value is not None:
            return int(value)
    return default


def evaluate_class_scores(model, loader) -> Dict[str, list]:
    """Dice and IoU per class of ``model`` on ``loader``'s dataset, from
    areas summed over the whole split (the labels' ignore index left out).

    Returns:
        dict: ``classes``, ``dice`` and ``iou`` (values in [0, 1]).
    """
    classes = list(loader.dataset.metainfo['classes'])
    ignore_index = label_ignore_index(model, loader.dataset)
    areas = torch.zeros(4, len(classes), dtype=torch.float64)
    model.eval()
    with torch.no_grad():
        for batch in loader:
            for sample in model.test_step(batch):
                areas += torch.stack(
                    IoUMetric.intersect_and_union(
                        sample.pred_sem_seg.data.squeeze(0).cpu(),
                        sample.gt_sem_seg.data.squeeze(0).cpu(),
                        len(classes), ignore_index)).double()
    return dict(classes=classes, **class_scores(areas, classes))
