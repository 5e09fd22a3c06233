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


# Review finding: the many/medium/few boundaries. CIFAR-100-LT with the
# exact LDAM counts has a class of exactly 20 (IF 50, 100, 200) and one of
# exactly 100 (IF 10, 200); both belong to the medium group.
@pytest.mark.parametrize('factor,has_100,has_20,sizes', [
    (10, True, False, [69, 31, 0]),
    (50, False, True, [41, 41, 18]),
    (100, False, True, [35, 35, 30]),
    (200, True, True, [30, 31, 39]),
])
def test_shot_group_boundaries_on_cifar100_lt(factor, has_100, has_20,
                                              sizes):
    from mmimb.datasets import long_tailed_counts
    counts = long_tailed_counts(500, factor, 100)
    assert (100 in counts) == has_100 and (20 in counts) == has_20
    groups = shot_groups(counts)
    assert [len(groups[g]) for g in ('many', 'medium', 'few')] == sizes
    for name, rule in (('many', lambda n: n > 100),
                       ('medium', lambda n: 20 <= n <= 100),
                       ('few', lambda n: n < 20)):
        assert groups[name].tolist() == [
            c for c, n in enumerate(counts) if rule(n)
        ], name
    for exact in (100, 20):
        if exact in counts:
            assert counts.index(exact) in groups['medium'].tolist()
    preds, gts = random_predictions(n=3000, num_classes=100, seed=factor)
    metric = LongTailMetric(train_class_counts=counts)
    metric.process(None, samples(preds, gts, 100))
    got = metric.evaluate(3000)
    want = naive(preds, gts, 100, counts)
    for group in ('many', 'medium', 'few'):
        assert close(got[f'lt/{group}_shot_acc'], want[group]), group


def naive_ece(conf, correct, bins=15):
    """Guo et al. 2017 Eq. 3 with bins ((m-1)/M, m/M], by explicit loops."""
    total, n = 0.0, len(conf)
    for m in range(1, bins + 1):
        lo, hi = (m - 1) / bins, m / bins
        members = [i for i in range(n)
                   if (lo < conf[i] <= hi) or (m == 1 and conf[i] == 0)]
        if members:
            acc = sum(correct[i] for i in members) / len(members)
            avg = sum(conf[i] for i in members) / len(members)
            total += len(members) / n * abs(acc - avg)
    return 100 * total


def test_ece_and_its_shot_breakdown_match_naive_binning():
    rng = np.random.default_rng(4)
    n, num_classes = 500, 10
    gts = rng.integers(0, num_classes, n)
    logits = rng.normal(size=(n, num_classes)) * 2
    logits[np.arange(n), gts] += rng.normal(1, 1, n)
    scores = torch.softmax(torch.tensor(logits), 1).float()
    # Confidences exactly on bin edges land in the lower bin.
    scores[:3] = 0.0
    scores[0, 0], scores[1, 1], scores[2, 2] = 0.2, 1 / 15 * 7, 1.0
    metric = LongTailMetric(train_class_counts=TRAIN_COUNTS,
                            thresholds=(1500, 200))
    batch = []
    for g, score in zip(gts.tolist(), scores):
        batch.append(DataSample().set_gt_label(g).set_pred_score(
            score).to_dict())
    metric.process(None, batch)
    got = metric.evaluate(n)
    conf = scores.max(1).values.double().tolist()
    pred = scores.argmax(1).tolist()
    correct = [p == g for p, g in zip(pred, gts.tolist())]
    assert got['lt/ece'] == pytest.approx(naive_ece(conf, correct), rel=1e-6)
    groups = shot_groups(TRAIN_COUNTS, (1500, 200))
    for name, members in groups.items():
        idx = [i for i in range(n) if gts[i] in members.tolist()]
        assert got[f'lt/{name}_shot_ece'] == pytest.approx(
            naive_ece([conf[i] for i in idx], [correct[i] for i in idx]),
            rel=1e-6), name
    # Always right at confidence 0.9 (the helper's scores): ECE 10 %.
    exact = LongTailMetric(ece_bins=10)
    exact.process(None, samples([0, 1, 2], [0, 1, 2], 3))
    assert exact.evaluate(3)['lt/ece'] == pytest.approx(10.0, rel=1e-6)


def test_ece_needs_scores_and_valid_bins():
    preds, gts = random_predictions(n=20, num_classes=4, seed=3)
    metric = LongTailMetric()
    metric.process(None, samples(preds, gts, 4, scores=False))
    with pytest.warns(UserWarning, match='no scores'):
        got = metric.evaluate(20)
    assert 'lt/ece' not in got
    metric = LongTailMetric(ece_bins=None)
    metric.process(None, samples(preds, gts, 4))
    assert 'lt/ece' not in metric.evaluate(20)
    with pytest.raises(ValueError, match='ece_bins'):
        LongTailMetric(ece_bins=0)


def test_ece_confidence_on_a_bin_edge_joins_the_lower_bin():
    rows = [[0.25] * 4, [0.5, 0.25, 0.25, 0.0], [0.75, 0.25, 0.0, 0.0],
            [1.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0],
            [0.3, 0.25, 0.25, 0.2]]
    gts = [1, 1, 1, 1, 1, 0]
    metric = LongTailMetric(ece_bins=4)
    metric.process(None, [
        DataSample().set_gt_label(g).set_pred_score(torch.tensor(r))
        .to_dict() for g, r in zip(gts, rows)
    ])
    conf = [max(r) for r in rows]
    correct = [r.index(max(r)) == g for r, g in zip(rows, gts)]
    assert metric.evaluate(6)['lt/ece'] == pytest.approx(
        naive_ece(conf, correct, bins=4), rel=1e-6)
