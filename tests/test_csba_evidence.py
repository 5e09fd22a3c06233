"""The CSBA evidence script: its table from known runs, and (slow) the whole
pipeline at tiny size on the real CIFAR-10 JPEG release."""
import importlib.util
import json
import math
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / 'tools' / 'evidence' / 'csba_cifar10_lt.py'


def load_script():
    spec = importlib.util.spec_from_file_location('csba_evidence', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_run(method, seed, macro_f1, rare, params, branches=None):
    record = dict(backbone=dict(mean_negative_cosine=-0.2, rare_vs_rest=rare,
                                conflict_fraction=0.5, mean_cosine=0.0))
    if branches is not None:
        record['branches'] = dict(mean_negative_cosine=branches,
                                  rare_vs_rest=0.0, conflict_fraction=0.1,
                                  mean_cosine=0.1)
    history = [dict(iteration=0, **record), dict(iteration=10, **record)]
    metrics = dict(top1=50.0, balanced_accuracy=40.0, macro_f1=macro_f1,
                   many_shot_acc=60.0, medium_shot_acc=30.0,
                   few_shot_acc=float('nan') if seed else 10.0,
                   attention_from_uniform=None if branches is None else 0.1,
                   attention_class_spread=None if branches is None else 0.05)
    return dict(method=method, seed=seed, params=params, metrics=metrics,
                conflict=history)


def test_summary_table_from_known_runs():
    script = load_script()
    runs = dict(
        plain=[fake_run('plain', s, f1, -0.1, 1000)
               for s, f1 in ((0, 50.0), (1, 60.0))],
        csba=[fake_run('csba', s, f1, 0.2, 1326, branches=-0.3)
              for s, f1 in ((0, 70.0), (1, 80.0))])
    table = script.summarise(runs).splitlines()
    plain = [c.strip() for c in table[2].split('|')[1:-1]]
    csba = [c.strip() for c in table[3].split('|')[1:-1]]
    # macro-F1 as a fraction: mean and sample std of 0.5 and 0.6.
    assert plain[2] == f'0.550 ± {np.std([0.5, 0.6], ddof=1):.3f}'
    assert csba[1] == '0.001M (+32.6%)'
    # Few-shot accuracy is NaN in one seed: the mean is over the others.
    assert plain[4] == '10.0'
    assert csba[8] == '0.200 ± 0.000'
    assert plain[10] == 'n/a' and csba[10] == '-0.300 ± 0.000'
    assert plain[11] == 'n/a / n/a'
    assert csba[11] == '0.100 ± 0.000 / 0.050 ± 0.000'
    assert table[-1].startswith('| paper: baseline -> CSBA')
    assert '0.595 -> 0.655' in table[-1]
    assert plain[12] == '60.0 ± 0.0 / 30.0 ± 0.0'


def test_paired_differences_per_seed():
    script = load_script()
    # CSBA - plain per seed: macro-F1 +20 and +15 points (seeds 0, 1; seed
    # 2 has no plain run and is left out); few-shot is NaN for seed 1, so
    # that cell has one pair only.
    runs = dict(
        plain=[fake_run('plain', s, f1, -0.1, 1000)
               for s, f1 in ((0, 50.0), (1, 60.0))],
        csba=[fake_run('csba', s, f1, 0.2, 1326, branches=-0.3)
              for s, f1 in ((0, 70.0), (1, 75.0), (2, 90.0))])
    lines = script.paired_table(runs).splitlines()
    assert len(lines) == 3  # header, rule, csba - plain only
    cells = [c.strip() for c in lines[2].split('|')[1:-1]]
    assert cells[0] == 'csba - plain (2 seeds)'
    # mean 17.5, sd 3.536, t(0.975, 1) = 12.706: half width 31.77.
    assert cells[1] == '+17.50 [-14.27, +49.27]'
    assert cells[2] == '+0.00 (one pair, no interval)'
    assert cells[5] == '+0.30 [+0.30, +0.30]'
    assert script.paired_table(dict(plain=runs['plain'])) == ''


def test_every_method_has_its_configs():
    script = load_script()
    for method in script.METHODS:
        for ccar in (False, True):
            for imbalance in (10, 100):
                assert Path(script.config_path(method, ccar,
                                               imbalance)).is_file()


@pytest.mark.slow
def test_tiny_sweep_on_real_cifar10(shared_data, tmp_path):
    with tarfile.open(shared_data / 'cifar10-jpg.tar.gz') as tar:
        tar.extractall(tmp_path / 'data', filter='data')
    work = tmp_path / 'work'
    subprocess.run([
        sys.executable,
        str(SCRIPT), '--data-root',
        str(tmp_path / 'data' / 'cifar10'), '--work-dir',
        str(work), '--seeds', '0', '--tiny'
    ], check=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    runs = json.loads((work / 'results.json').read_text())
    assert set(runs) == {'plain', 'multi-branch', 'csba'}
    for method, (run, ) in runs.items():
        assert run['rare_classes'] == [9, 8, 7]
        assert run['train_counts'][-1] == 50
        iterations = [m['iteration'] for m in run['conflict']]
        assert iterations == [0, 2, 4]
        last = run['conflict'][-1]
        assert -1 <= last['backbone']['mean_negative_cosine'] <= 0
        assert ('branches' in last) == (method != 'plain')
        assert not math.isnan(run['metrics']['macro_f1'])
        spread = run['metrics']['attention_class_spread']
        if method == 'plain':
            assert spread is None
        elif method == 'multi-branch':
            assert spread == 0
        else:
            assert spread >= 0
    assert (work / 'results.md').is_file()
    assert (work / 'conflict_curves.png').is_file()
