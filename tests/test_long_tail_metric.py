"""LongTailMetric against a naive per-sample computation."""
import json
import math

import numpy as np
import pytest
import torch
from mmpretrain.structures import DataSample

from mmimb.evaluation import (LongTailMetric, load_class_counts,
                              long_tail_metrics, shot_groups)

TRAIN_COUNTS = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]


def naive(preds, gts, num_classes, train_counts=None, many=100, few=20):
    """Loops over samples and classes, no confusion matrix."""
    recall, f1 = [], []
    for c in range(num_classes):
        tp = sum(1 for p, g in zip(preds, gts) if p == c and g == c)
        fp = sum(1 for p, g in zip(preds, gts) if p == c and g != c)
        fn = sum(1 for p, g in zip(preds, gts) if p != c and g == c)
        recall.append(tp / (tp + fn) if tp + fn else math.nan)
        precision = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        if tp + fp + fn == 0:
            f1.append(math.nan)
        else:
            f1.append(2 * precision * r / (precision + r)
                      if precision + r else 0.0)
    defined_recall = [r for r in recall if not math.isnan(r)]
    defined_f1 = [f for f in f1 if not math.isnan(f)]
    out = dict(
        top1=100 * sum(p == g for p, g in zip(preds, gts)) / len(gts),
        balanced_accuracy=100 * sum(defined_recall) / len(defined_recall),
        macro_f1=100 * sum(defined_f1) / len(defined_f1),
        recall=[100 * r for r in recall],
        f1=[100 * f for f in f1])
    if train_counts is not None:
        for name, test in (('many', lambda n: n > many),
                           ('medium', lambda n: few <= n <= many),
                           ('few', lambda n: n < few)):
            members = [
                recall[c] for c in range(num_classes)
                if test(train_counts[c]) and not math.isnan(recall[c])
            ]
            out[name] = 100 * sum(members) / len(members) if members \
                else math.nan
    return out


def close(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b)


def random_predictions(n=400, num_classes=10, seed=0, skip_class=None):
    rng = np.random.default_rng(seed)
    gts = rng.integers(0, num_classes, n)
    if skip_class is not None:
        gts[gts == skip_class] = (skip_class + 1) % num_classes
    # Biased towards class 0 and correct half of the time.
    preds = np.where(rng.random(n) < 0.5, gts, rng.integers(0, 3, n))
    return preds.tolist(), gts.tolist()


def samples(preds, gts, num_classes, scores=True):
    out = []
    for p, g in zip(preds, gts):
        sample = DataSample().set_gt_label(g)
        if scores:
            score = torch.full((num_classes, ), 0.01)
            score[p] = 0.9
            sample.set_pred_score(score)
        else:
            sample.set_pred_label(p)
            sample.set_field(num_classes, 'num_classes', field_type='metainfo')
        out.append(sample.to_dict())
    return out


@pytest.mark.parametrize('thresholds', [(100, 20), (1500, 200)])
@pytest.mark.parametrize('skip_class', [None, 9])
def test_metric_matches_naive_computation(thresholds, skip_class):
    preds, gts = random_predictions(skip_class=skip_class)
    metric = LongTailMetric(
        train_class_counts=TRAIN_COUNTS, thresholds=thresholds)
    metric.dataset_meta = dict(classes=[f'c{i}' for i in range(10)])
    batch = samples(preds, gts, 10)
    metric.process(None, batch[:150])
    metric.process(None, batch[150:])
    got = metric.evaluate(len(batch))
    want = naive(preds, gts, 10, TRAIN_COUNTS, *thresholds)
    for key in ('top1', 'balanced_accuracy', 'macro_f1'):
        assert close(got[f'lt/{key}'], want[key]), key
    for group in ('many', 'medium', 'few'):
        assert close(got[f'lt/{group}_shot_acc'], want[group]), group
    assert all(
        close(a, b) for a, b in zip(got['lt/recall_classwise'], want['recall']))
    assert all(close(a, b) for a, b in zip(got['lt/f1_classwise'], want['f1']))


def test_usual_thresholds_leave_cifar10_lt_without_few_shot_classes():
    groups = shot_groups(TRAIN_COUNTS)
    assert groups['many'].tolist() == list(range(8))
    assert groups['medium'].tolist() == [8, 9]
    assert groups['few'].tolist() == []
    preds, gts = random_predictions()
    cm = np.zeros((10, 10))
    for p, g in zip(preds, gts):
        cm[g, p] += 1
    metrics = long_tail_metrics(cm, TRAIN_COUNTS)
    assert math.isnan(metrics['few_shot_acc'])
    split = shot_groups(TRAIN_COUNTS, (1500, 200))
    assert [len(v) for v in split.values()] == [3, 4, 3]


def test_labels_without_scores_and_no_train_counts():
    preds, gts = random_predictions(n=50, num_classes=4, seed=2)
    metric = LongTailMetric(classwise=False, prefix='x')
    metric.process(None, samples(preds, gts, 4, scores=False))
    got = metric.evaluate(50)
    want = naive(preds, gts, 4)
    assert set(got) == {'x/top1', 'x/balanced_accuracy', 'x/macro_f1'}
    assert got['x/macro_f1'] == pytest.approx(want['macro_f1'])


def test_perfect_and_balanced_top1_equals_balanced_accuracy():
    gts = [0, 1, 2, 3] * 5
    cm = np.diag([5.0] * 4)
    metrics = long_tail_metrics(cm, [10, 10, 10, 10])
    assert metrics['top1'] == metrics['balanced_accuracy'] == 100
    assert metrics['macro_f1'] == 100 and len(gts) == 20


def test_counts_from_json_and_bad_counts(tmp_path):
    path = tmp_path / 'stats.json'
    path.write_text(json.dumps(dict(counts=TRAIN_COUNTS, classes=['a'] * 10)))
    assert load_class_counts(str(path)).tolist() == TRAIN_COUNTS
    freq_only = tmp_path / 'freq.json'
    freq_only.write_text(json.dumps([0.5, 0.5]))
    with pytest.raises(ValueError, match='no per-class "counts"'):
        load_class_counts(str(freq_only))
    with pytest.raises(ValueError, match="'auto'.*runner"):
        LongTailMetric(train_class_counts='auto')
    with pytest.raises(ValueError, match='non-negative integer'):
        LongTailMetric(train_class_counts=[10, 2.5])
    with pytest.raises(ValueError, match='thresholds'):
        LongTailMetric(thresholds=(20, 100))
    metric = LongTailMetric(train_class_counts=[5, 5, 5])
    metric.process(None, samples([0, 1], [0, 4], 5))
    with pytest.raises(ValueError, match='label or prediction 4'):
        metric.evaluate(2)
