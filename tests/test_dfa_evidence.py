"""The DFA evidence sweep: its options, and its tables (final per-class
IoU, paired differences to bias none, the learning curve, the bias
correlations) from known runs."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from mmengine.config import ConfigDict
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / 'tools' / 'evidence' / 'dfa_synthetic.py'
CLASSES = ['common', 'rare_hard', 'rare_easy']
FREQ = [0.8, 0.12, 0.08]


@pytest.fixture(scope='module')
def script():
    spec = importlib.util.spec_from_file_location('dfa_evidence', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_run(mode, seed, rare_hard_curve, delta=None):
    curve = [dict(iter=it, iou=[0.9, v, 0.7], dice=[0.95, v, 0.8],
                  delta=delta, bias=delta)
             for it, v in zip((150, 300), rare_hard_curve)]
    return dict(mode=mode, seed=seed, classes=CLASSES, curve=curve)


def test_curve_points_and_run_options(script):
    assert script.curve_points(1200, 150) == [150 * k for k in range(1, 9)]
    assert script.curve_points(1000, 300) == [300, 600, 900, 1000]
    options = dict(o.split('=', 1) for o in script.run_options(
        'learned', 3, 1200, 150))
    assert options['model.decode_head.bias_mode'] == 'learned'
    assert options['randomness.seed'] == '3'
    assert options['param_scheduler.1.end'] == '1200'
    assert options['default_hooks.checkpoint.interval'] == '150'
    assert options['default_hooks.checkpoint.max_keep_ckpts'] == '-1'


def test_tables_from_known_runs(script):
    none = [fake_run('none', s, c) for s, c in
            ((0, (0.0, 0.40)), (1, (0.1, 0.50)), (2, (0.0, 0.45)))]
    learned_curves = ((0.2, 0.42), (0.3, 0.55), (0.1, 0.47))
    deltas = ([-0.2, 0.1, 0.1], [-0.3, 0.2, 0.1], [-0.1, 0.0, 0.1])
    learned = [fake_run('learned', s, c, d) for s, (c, d) in
               enumerate(zip(learned_curves, deltas))]
    head = ConfigDict(prior='focal', gamma=2.0, init_scale=0.5)
    stats_ = dict(freq=FREQ, difficulty=[0.0, 0.2, 0.0], head=head)
    text = script.summarise(dict(none=none, learned=learned), stats_)
    lines = text.splitlines()

    def row(start, after=None):
        begin = 0 if after is None else next(
            i for i, line in enumerate(lines) if line.startswith(after))
        return next(line for line in lines[begin:]
                    if line.startswith(start)).split(' | ')

    # Final IoU of the rare-hard class: mean and sample sd over seeds.
    final = row('| none |')
    assert final[2] == f'45.00 ± {np.std([40, 50, 45], ddof=1):.2f}'
    # Paired difference learned - none at the end, with scipy's interval.
    diff = [42 - 40, 55 - 50, 47 - 45]
    ci = stats.ttest_rel([42, 55, 47], [40, 50, 45]).confidence_interval()
    paired = row('| learned |', 'Paired difference')[2]
    assert paired == f'{np.mean(diff):+.2f} [{ci.low:+.2f}, {ci.high:+.2f}]'
    # Learning curve of the rare classes (freq < 0.1): only rare_easy here
    # (rare_hard has 0.12), and mIoU at both checkpoints.
    assert any('Learning curve, rare_easy IoU' in line for line in lines)
    assert not any('Learning curve, rare_hard IoU' in line for line in lines)
    early = row('| 150 |', 'Learning curve, mIoU')
    miou = [100 * (0.9 + v + 0.7) / 3 for v in (0.0, 0.1, 0.0)]
    assert early[1] == f'{np.mean(miou):.2f} ± {np.std(miou, ddof=1):.2f}'
    # Spearman of the final delta with the frequency, per seed, averaged.
    rho = [stats.spearmanr(d, FREQ).statistic for d in deltas]
    spearman = row('| learned | final delta |')
    assert spearman[2] == f'{np.mean(rho):.2f} ± {np.std(rho, ddof=1):.2f}'
    assert 'measured difficulty (largest 8x8 overlap): common 0.00' in text


def test_paired_difference_uses_matching_seeds(script):
    base = [fake_run('none', s, (0.0, v)) for s, v in ((0, 0.4), (1, 0.5))]
    runs = [fake_run('learned', s, (0.0, v)) for s, v in ((1, 0.6), (2, 0.9))]
    # Only seed 1 is in both: one pair, no interval.
    assert script.paired(runs, base, lambda r: script.at(r)['iou'][1]) == \
        '+10.00 (one pair, no interval)'
