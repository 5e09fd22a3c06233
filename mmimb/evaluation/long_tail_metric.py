"""Classification metrics that show the tail of a long-tailed training set.

Top-1 accuracy on a balanced test set already weighs classes equally; on an
imbalanced one it hides the tail. This metric adds balanced accuracy,
macro-F1, per-class recall and F1, the accuracy over the classes that
had many, a medium number or few training samples (the split of Liu et
al., "Large-Scale Long-Tailed Recognition in an Open World", CVPR 2019:
more than 100, 20 to 100, fewer than 20), and the expected calibration
error (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017),
overall and per shot group.
"""
import math
import numbers
import warnings
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmpretrain.evaluation.metrics import ConfusionMatrix
from mmpretrain.registry import METRICS

from mmimb.utils import load_class_counts

DEFAULT_THRESHOLDS = (100, 20)
GROUPS = ('many', 'medium', 'few')
DEFAULT_ECE_BINS = 15


def shot_groups(train_counts: Sequence[int],
                thresholds: Sequence[float] = DEFAULT_THRESHOLDS
                ) -> Dict[str, np.ndarray]:
    """Class indices of the many-, medium- and few-shot groups.

    many: more than ``thresholds[0]`` training samples; few: fewer than
    ``thresholds[1]``; medium: the rest.
    """
    counts = np.asarray(train_counts)
    many, few = thresholds
    return dict(
        many=np.flatnonzero(counts > many),
        medium=np.flatnonzero((counts <= many) & (counts >= few)),
        few=np.flatnonzero(counts < few))


def long_tail_metrics(confusion: Union[torch.Tensor, np.ndarray],
                      train_counts: Optional[Sequence[int]] = None,
                      thresholds: Sequence[float] = DEFAULT_THRESHOLDS
                      ) -> Dict[str, Union[float, List[float]]]:
    """Metrics from a confusion matrix, in percent.

    Args:
        confusion: (C, C) counts, rows the true class, columns the
            prediction.
        train_counts: Training samples per class; without them the shot
            groups are skipped.
        thresholds: ``(many, few)`` bounds of the shot groups.

    Returns:
        dict: ``top1``; ``balanced_accuracy``, the mean recall over the
        classes present in the test set; ``macro_f1``, the mean of
        ``F1_c = 2 TP / (2 TP + FP + FN)`` over the classes present in the
        test set or the predictions; ``recall_classwise`` and
        ``f1_classwise`` (NaN for a class with no test sample, or neither
        test sample nor prediction); and ``{many,medium,few}_shot_acc``,
        the mean recall over the group's classes with test samples (NaN
        for an empty group).
    """
    cm = np.asarray(confusion, dtype=np.float64)
    tp = np.diag(cm)
    support = cm.sum(1)
    predicted = cm.sum(0)
    with np.errstate(invalid='ignore', divide='ignore'):
        recall = tp / support
        f1 = 2 * tp / (support + predicted)
    present = support > 0
    seen = present | (predicted > 0)

    def mean(values):
        return float(values.mean()) * 100 if values.size else math.nan

    metrics = dict(
        top1=float(tp.sum() / max(cm.sum(), 1)) * 100,
        balanced_accuracy=mean(recall[present]),
        macro_f1=mean(f1[seen]),
        recall_classwise=(recall * 100).tolist(),
        f1_classwise=(f1 * 100).tolist())
    if train_counts is not None:
        if len(train_counts) != cm.shape[0]:
            raise ValueError(
                f'train_class_counts has {len(train_counts)} entries but the '
                f'predictions have {cm.shape[0]} classes')
        for group, members in shot_groups(train_counts, thresholds).items():
            members = members[present[members]]
            metrics[f'{group}_shot_acc'] = mean(recall[members])
    return metrics


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray,
                               bins: int = DEFAULT_ECE_BINS) -> float:
    """ECE in percent: ``sum_m |B_m| / n * |acc(B_m) - conf(B_m)|`` over
    ``bins`` equal-width bins ``B_m = ((m - 1) / M, m / M]`` of the
    confidence (Guo et al. 2017, Eq. 3); NaN without samples.

    Args:
        confidence: (n,) probability of the predicted class, in [0, 1].
        correct: (n,) whether the prediction was right.
        bins: ``M``.
    """
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    if confidence.size == 0:
        return math.nan
    edges = np.linspace(0, 1, bins + 1)
    # Index of the bin whose right edge is the first >= the confidence;
    # a confidence of exactly 0 joins the first bin.
    which = np.clip(np.searchsorted(edges, confidence, side='left') - 1, 0,
                    bins - 1)
    gap = 0.0
    for m in np.unique(which):
        members = which == m
        gap += abs(correct[members].mean() -
                   confidence[members].mean()) * members.sum()
    return float(gap / confidence.size) * 100


def calibration_metrics(confidence: Sequence[float], pred: Sequence[int],
                        gt: Sequence[int],
                        train_counts: Optional[Sequence[int]] = None,
                        thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
                        bins: int = DEFAULT_ECE_BINS) -> Dict[str, float]:
    """``ece`` over all test samples and, with ``train_counts``,
    ``{many,medium,few}_shot_ece`` over the test samples whose true class
    is in the group (NaN for an empty group), in percent."""
    confidence, pred, gt = map(np.asarray, (confidence, pred, gt))
    correct = pred == gt
    metrics = dict(ece=expected_calibration_error(confidence, correct, bins))
    if train_counts is not None:
        for group, members in shot_groups(train_counts, thresholds).items():
            in_group = np.isin(gt, members)
            metrics[f'{group}_shot_ece'] = expected_calibration_error(
                confidence[in_group], correct[in_group], bins)
    return metrics


@METRICS.register_module()
class LongTailMetric(BaseMetric):
    """Top-1, balanced accuracy, macro-F1, per-class recall and F1, and
    many/medium/few-shot accuracy for single-label classification.

    Values are in percent, like mmpretrain's ``Accuracy``; see
    :func:`long_tail_metrics` for the definitions.

    Args:
        train_class_counts (list | str, optional): Training samples per
            class, a class-statistics JSON path with ``counts``, or
            ``'auto'``, which mmimb's runner replaces by the counts of
            ``train_dataloader.dataset``. ``None`` skips the shot groups.
        thresholds (tuple): ``(many, few)``: many-shot classes have more
            than ``many`` training samples, few-shot ones fewer than
            ``few``. Defaults to ``(100, 20)``.
        classwise (bool): Also return ``recall_classwise`` and
            ``f1_classwise`` lists. Defaults to True.
        ece_bins (int, optional): Bins of the expected calibration error
            (``ece`` and ``{many,medium,few}_shot_ece``, see
            :func:`calibration_metrics`); ``None`` skips it. It needs the
            predicted scores: for results with labels only it is left out
            with a warning. Defaults to 15 (Guo et al.).
        collect_device (str): ``'cpu'`` or ``'gpu'``.
        prefix (str, optional): Defaults to ``'lt'``.
    """
    default_prefix = 'lt'

    def __init__(self,
                 train_class_counts: Optional[Union[str, Sequence[int]]] =
                 None,
                 thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
                 classwise: bool = True,
                 ece_bins: Optional[int] = DEFAULT_ECE_BINS,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.train_class_counts = None if train_class_counts is None else \
            load_class_counts(train_class_counts)
        thresholds = tuple(thresholds)
        if len(thresholds) != 2 or not all(
                isinstance(t, numbers.Real) for t in thresholds) or \
                thresholds[0] < thresholds[1]:
            raise ValueError(
                f'LongTailMetric: thresholds={thresholds}, expected (many, '
                'few) with many >= few, e.g. (100, 20)')
        self.thresholds = thresholds
        self.classwise = classwise
        if ece_bins is not None and (isinstance(ece_bins, bool) or
                                     not isinstance(ece_bins, numbers.Integral)
                                     or ece_bins < 1):
            raise ValueError(f'LongTailMetric: ece_bins={ece_bins!r}, '
                             'expected a positive integer or None')
        self.ece_bins = ece_bins

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            confidence = None
            if 'pred_score' in sample:
                score = sample['pred_score']
                pred = score.argmax()
                confidence = float(score[pred])
                num_classes = score.numel()
            else:
                pred = sample['pred_label']
                num_classes = sample.get('num_classes')
            self.results.append(
                dict(
                    pred=int(pred),
                    gt=int(sample['gt_label']),
                    confidence=confidence,
                    num_classes=num_classes))

    def _num_classes(self, results: list) -> int:
        for candidate in (self.train_class_counts, (self.dataset_meta or
                                                    {}).get('classes')):
            if candidate is not None:
                return len(candidate)
        known = [r['num_classes'] for r in results if r['num_classes']]
        if known:
            return int(known[0])
        return max(max(r['pred'], r['gt']) for r in results) + 1

    def compute_metrics(self, results: list) -> dict:
        num_classes = self._num_classes(results)
        top = max(max(r['pred'], r['gt']) for r in results)
        if top >= num_classes:
            raise ValueError(
                f'LongTailMetric: label or prediction {top} but the dataset '
                f'has {num_classes} classes')
        confusion = ConfusionMatrix.calculate(
            torch.tensor([r['pred'] for r in results]),
            torch.tensor([r['gt'] for r in results]),
            num_classes=num_classes)
        metrics = long_tail_metrics(confusion, self.train_class_counts,
                                    self.thresholds)
        if not self.classwise:
            metrics.pop('recall_classwise')
            metrics.pop('f1_classwise')
        if self.ece_bins is not None:
            confidence = [r['confidence'] for r in results]
            if any(c is None for c in confidence):
                warnings.warn('LongTailMetric: the predictions carry no '
                              'scores (pred_label only), so the calibration '
                              'error (ece) is not computed')
            else:
                metrics.update(
                    calibration_metrics(confidence,
                                        [r['pred'] for r in results],
                                        [r['gt'] for r in results],
                                        self.train_class_counts,
                                        self.thresholds, self.ece_bins))
        return metrics
