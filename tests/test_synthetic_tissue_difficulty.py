"""The measured difficulty of generated tissue classes: the linear overlap
against closed forms, monotone in the difficulty setting, calibration to a
target, and the calibrated crossed benchmark's documented numbers."""
import numpy as np
import pytest
from mmengine.config import Config
from scipy.stats import norm

from mmimb.datasets import (TissueGenerator, appearance_overlap,
                            calibrate_difficulty, measured_difficulty)
from mmimb.datasets.synthetic_tissue_difficulty import linear_overlap

ROOT = __import__('pathlib').Path(__file__).resolve().parents[1]
PAIR = [dict(name='a', freq=0.5, difficulty=0.0, color=(200, 120, 160),
             dots=0.0),
        dict(name='b', freq=0.5, difficulty=0.0, color=(120, 60, 150),
             dots=0.2, confuser='a')]


def test_linear_overlap_equals_the_gaussian_bayes_error():
    # Two Gaussians with identity covariance whose means are delta apart:
    # the best linear rule errs with probability Phi(-delta / 2).
    rng = np.random.default_rng(0)
    for delta in (0.5, 1.0, 2.0):
        a = rng.standard_normal((40000, 3))
        b = rng.standard_normal((40000, 3)) + [delta, 0, 0]
        assert linear_overlap(a[:20000], b[:20000], a[20000:],
                              b[20000:]) == pytest.approx(
                                  norm.cdf(-delta / 2), abs=0.01)
    same = rng.standard_normal((20000, 2))
    assert linear_overlap(*np.split(same, 4)) == pytest.approx(0.5,
                                                               abs=0.02)


def test_overlap_grows_with_difficulty_and_patch_averaging_helps():
    overlaps = []
    for d in (0.0, 0.6, 0.9, 1.0):
        specs = [PAIR[0], dict(PAIR[1], difficulty=d)]
        generator = TissueGenerator(specs, img_size=64)
        overlap = appearance_overlap(generator, patch=8)
        assert np.isnan(overlap[0, 0]) and overlap[0, 1] == overlap[1, 0]
        overlaps.append(overlap[0, 1])
        if d == 0.9:
            pixel = appearance_overlap(generator, patch=1)[0, 1]
            assert pixel > overlap[0, 1]
    assert overlaps[0] < 0.01
    assert overlaps == sorted(overlaps)
    assert overlaps[-1] == pytest.approx(0.5, abs=0.05)


def test_calibration_reaches_the_target():
    specs = calibrate_difficulty(PAIR, {'b': 0.15}, img_size=64)
    assert specs[0] == PAIR[0] and 0 < specs[1]['difficulty'] < 1
    generator = TissueGenerator(specs, img_size=64)
    assert appearance_overlap(generator)[1, 0] == pytest.approx(0.15,
                                                                abs=0.01)
    with pytest.raises(ValueError, match="unknown class 'c'"):
        calibrate_difficulty(PAIR, {'c': 0.1})
    with pytest.raises(ValueError, match='expected a value in'):
        calibrate_difficulty(PAIR, {'b': 0.7})


def test_calibration_refuses_a_target_it_does_not_meet():
    # The overlap is a test error: it moves in steps (here about 0.001),
    # so a tolerance below a step is not met; the returned setting is
    # checked, not the bisection's last point.
    with pytest.raises(ValueError, match=r"'b' gets overlap 0\.1.* outside "
                       r'the tolerance 1e-06'):
        calibrate_difficulty(PAIR, {'b': 0.15}, tolerance=1e-6, img_size=64)
    # Looks that overlap already at difficulty 0: no setting lowers it.
    close = [PAIR[0], dict(PAIR[1], color=PAIR[0]['color'], dots=0.02)]
    with pytest.raises(ValueError, match="'b' has overlap 0.* already at "
                       'difficulty 0, above the target 0.01'):
        calibrate_difficulty(close, {'b': 0.01}, img_size=64)


@pytest.mark.parametrize('name', ['synthetic_tissue_crossed.py',
                                  'synthetic_tissue_crossed_balanced.py',
                                  'synthetic_tissue_crossed_rare.py'])
def test_crossed_benchmark_has_its_documented_difficulties(name):
    """Three pairs: hard (overlap 0.20), medium (0.08) and easy (0), each a
    common and a rare class in the imbalanced set; no other pair overlaps.
    docs/dfa.md and the config's comment give these numbers."""
    dataset = Config.fromfile(
        str(ROOT / 'configs/_base_/datasets' / name)).train_dataloader.dataset
    generator = TissueGenerator(dataset.class_specs,
                                img_size=dataset.img_size)
    names = generator.class_names
    overlap = appearance_overlap(generator, patch=8)
    pairs = {('tumor', 'necrosis'): 0.20, ('fat', 'mucin'): 0.08}
    for (a, b), expected in pairs.items():
        assert overlap[names.index(a), names.index(b)] == pytest.approx(
            expected, abs=0.01)
    others = overlap.copy()
    for a, b in pairs:
        others[names.index(a), names.index(b)] = np.nan
        others[names.index(b), names.index(a)] = np.nan
    assert np.nanmax(others) < 0.01
    difficulty = dict(zip(names, measured_difficulty(overlap)))
    assert difficulty['stroma'] < 0.01 and difficulty['lymphocytes'] < 0.01
    freq = dict(zip(names, generator.freq))
    if 'balanced' in name:
        assert len(set(np.round(generator.freq, 6))) == 1
    else:
        for common, rare in (('stroma', 'lymphocytes'), ('tumor', 'necrosis'),
                             ('fat', 'mucin')):
            assert freq[common] >= 0.2 and freq[rare] <= 0.06
    if 'rare' in name:
        assert [freq[c] for c in ('lymphocytes', 'necrosis', 'mucin')] == \
            pytest.approx([0.015] * 3)


CROSSED = str(ROOT / 'configs/_base_/datasets/synthetic_tissue_crossed.py')


@pytest.mark.parametrize('argv, message', [
    (['nope.py'], "config file 'nope.py' does not exist"),
    ([CROSSED, '--patches', '0'], 'patch=0; expected a square side of'),
    ([CROSSED, '--patches', '20'], 'cannot hold a whole 20 px square'),
    ([CROSSED, '--split', 'val', '--cfg-options', 'val_dataloader=None'],
     'val_dataloader.dataset is None, not a SyntheticTissueDataset'),
])
def test_difficulty_tool_refuses_bad_input_in_one_line(capsys, argv, message):
    import importlib.util
    path = ROOT / 'tools/analysis_tools/synthetic_tissue_difficulty.py'
    spec = importlib.util.spec_from_file_location('difficulty_tool', path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    with pytest.raises(SystemExit) as exit_:
        tool.run_cli(lambda: tool.main(argv))
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message in err
    assert err.count('\n') == 1 and 'Traceback' not in err
