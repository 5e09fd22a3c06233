"""The evidence sweeps reuse finished runs (so that an interrupted sweep
resumes) only when they were made with the sweep's own settings: a table
must not report another configuration's, imbalance factor's or length's
numbers under this one's heading. Records written before the settings were
stored (legacy) are checked on what they do hold, and runs recorded before
the configs were renamed (under the old file names) count as made with the
renamed config."""
import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EVIDENCE = ROOT / 'tools' / 'evidence'
sys.path.insert(0, str(EVIDENCE))
from sweep import RENAMED_CONFIGS, current_config_name  # noqa: E402

# Each config's name before the rename.
FORMER = {new: old for old, new in RENAMED_CONFIGS.items()}
SYNTHETIC = 'dfa_mit-b0_1xb8-300it_synthetic-tissue-crossed-128x128.py'
RARE = 'dfa_mit-b0_1xb8-300it_synthetic-tissue-crossed-rare-128x128.py'


def load(name):
    spec = importlib.util.spec_from_file_location(f'evidence_{name}',
                                                  EVIDENCE / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))


def ccar_record(**extra):
    """metrics.json as the CCAR sweep writes it for CE, seed 0."""
    record = dict(top1=50.0, balanced_accuracy=50.0, macro_f1=45.0,
                  many_shot_acc=80.0, medium_shot_acc=50.0,
                  few_shot_acc=10.0, method='ce', seed=0, iters=3000,
                  batch_size=64, threads=1, precision='bf16',
                  train_size=12406, train_seconds=60.0, test_seconds=5.0)
    record.update(extra)
    return record


@pytest.fixture
def ccar(tmp_path):
    (tmp_path / 'data' / 'train').mkdir(parents=True)
    script = load('ccar_cifar10_lt')

    def sweep(*options):
        args = script.parse_args([
            '--data-root', str(tmp_path / 'data'), '--work-dir',
            str(tmp_path / 'work'), '--methods', 'ce', '--seeds', '0',
            *options
        ])
        return script.sweep(args)

    return script, sweep, tmp_path / 'work' / 'ce' / 'seed0' / 'metrics.json'


def test_ccar_sweep_refuses_a_run_of_another_imbalance_factor(ccar, capsys):
    script, sweep, path = ccar
    # An IF100 run as the current script records it (no imbalance factor
    # stored, but its training-set size).
    write(path, ccar_record())
    with pytest.raises(SystemExit, match='train_size 12406'):
        sweep('--imbalance-factor', '10')
    assert 'IF10' not in capsys.readouterr().out


def test_ccar_sweep_refuses_other_iterations_and_test_subsets(ccar):
    script, sweep, path = ccar
    write(path, ccar_record(iters=6))
    with pytest.raises(SystemExit, match=r'iters 6 \(this sweep: 3000\)'):
        sweep()
    write(path, ccar_record(test_every=50, imbalance_factor=100))
    with pytest.raises(SystemExit, match='test_every 50'):
        sweep()
    write(path, ccar_record(test_every=1, imbalance_factor=100))
    sweep()  # the same settings: kept, and tabled


def test_dfa_sweep_refuses_a_run_of_another_config_or_length(tmp_path):
    script = load('dfa_synthetic')
    work = tmp_path / 'work'
    path = work / 'none_seed0' / 'result.json'
    legacy = dict(mode='none', seed=0, classes=['a', 'b'],
                  curve=[dict(iter=150, iou=[0.5, 0.5]),
                         dict(iter=300, iou=[0.6, 0.6])])
    write(path, legacy)
    argv = ['--modes', 'none', '--seeds', '0', '--work-dir', str(work)]
    with pytest.raises(SystemExit, match='curve_points'):
        script.main(argv + ['--iters', '600', '--curve-every', '150'])
    write(path, dict(legacy, config=f'configs/dfa/{SYNTHETIC}',
                     iters=300, curve_every=150, cfg_options=[]))
    with pytest.raises(SystemExit, match=f'{SYNTHETIC}.*this sweep: '
                       f"'configs/dfa/{RARE}'"):
        script.main(argv + ['--iters', '300', '--config',
                            f'configs/dfa/{RARE}'])


def test_csba_sweep_refuses_a_tiny_run(tmp_path):
    script = load('csba_cifar10_lt')
    args = script.parse_args(['--data-root', str(tmp_path), '--work-dir',
                              str(tmp_path / 'work'), '--methods', 'plain'])
    path = tmp_path / 'work' / 'plain' / 'seed0' / 'run.json'
    write(path, dict(method='plain', ccar=False, seed=0, imbalance=100,
                     tiny=True, metrics={}))
    with pytest.raises(SystemExit, match='tiny True'):
        script.train_one(args, 'plain', 0)
    write(path, dict(method='plain', ccar=False, seed=0, imbalance=100,
                     tiny=False, iters=3000, test_every=1, metrics={}))
    assert script.train_one(args, "plain", 0)["iters"] == 3000


@pytest.mark.parametrize('former', [False, True],
                         ids=['dump', 'dump named before the rename'])
def test_ccar_legacy_runs_are_checked_on_their_dumped_test_subset(
        ccar, capsys, former):
    script, sweep, path = ccar
    name = script.config_path('ce', 100).name
    dump = path.parent / (FORMER[name] if former else name)
    write(path, ccar_record())  # no test_every stored
    with pytest.raises(SystemExit, match='test_every .unknown'):
        sweep()
    dump.write_text('test_dataloader = dict(dataset=dict(indices=[0, 50, '
                    '100]))\n')
    with pytest.raises(SystemExit, match=r'test_every 50 \(this sweep: 1\)'):
        sweep()
    sweep('--test-every', '50')
    dump.write_text('test_dataloader = dict(dataset=dict(type="X"))\n')
    sweep()
    capsys.readouterr()
    # A method that reused its twin's training is checked on the twin's
    # dump.
    bs = path.parents[1].parent / 'bs' / 'seed0' / 'metrics.json'
    write(bs, ccar_record(method='bs', reused_from='ce'))
    dump.write_text('test_dataloader = dict(dataset=dict(indices=[0, 50, '
                    '100]))\n')
    with pytest.raises(SystemExit, match=r'bs/seed0.*test_every 50'):
        sweep('--methods', 'bs')
    assert 'kept' not in capsys.readouterr().out


def test_ccar_sweep_refuses_other_fp32_twins_before_training(ccar, capsys):
    script, sweep, path = ccar
    write(path, ccar_record(test_every=1))
    write(path.parents[1].parent / 'ce-fp32' / 'seed0' / 'metrics.json',
          ccar_record(test_every=1, precision='fp32', iters=6))
    with pytest.raises(SystemExit, match=r'ce-fp32/seed0.*iters 6'):
        sweep()
    assert 'kept' not in capsys.readouterr().out


@pytest.mark.parametrize('former', [False, True],
                         ids=['dump', 'dump named before the rename'])
def test_dfa_legacy_runs_are_checked_on_their_dumped_config(tmp_path,
                                                            former):
    script = load('dfa_synthetic')
    synthetic, rare = (FORMER[SYNTHETIC], FORMER[RARE]) if former else (
        SYNTHETIC, RARE)
    work = tmp_path / 'work'
    path = work / 'none_seed0' / 'result.json'
    legacy = dict(mode='none', seed=0, classes=['a'],
                  curve=[dict(iter=150, iou=[0.5]),
                         dict(iter=300, iou=[0.6])])
    write(path, legacy)
    args = script.parse_args(['--work-dir', str(work), '--iters', '300'])
    with pytest.raises(SystemExit, match='config .unknown'):
        script.finished(args, 'none', 0)
    (path.parent / rare).write_text('')
    with pytest.raises(SystemExit, match=f"config '{RARE}"):
        script.finished(args, 'none', 0)
    (path.parent / rare).unlink()
    (path.parent / synthetic).write_text('')
    assert script.finished(args, 'none', 0) == legacy


def test_dfa_runs_recorded_before_the_rename_are_kept(tmp_path):
    script = load('dfa_synthetic')
    work = tmp_path / 'work'
    path = work / 'none_seed0' / 'result.json'
    result = dict(mode='none', seed=0, classes=['a'],
                  curve=[dict(iter=150, iou=[0.5]),
                         dict(iter=300, iou=[0.6])],
                  config=f'configs/dfa/{FORMER[SYNTHETIC]}', iters=300,
                  curve_every=150, cfg_options=[])
    write(path, result)
    args = script.parse_args(['--work-dir', str(work), '--iters', '300'])
    assert script.finished(args, 'none', 0) == result
    write(path, dict(result, config=f'configs/dfa/{FORMER[RARE]}'))
    with pytest.raises(SystemExit, match=f"config 'configs/dfa/{RARE}'"):
        script.finished(args, 'none', 0)


def test_renamed_configs_name_configs_that_exist():
    configs = ROOT / 'configs'
    now = {p.name: p for p in configs.rglob('*.py')}
    assert not set(RENAMED_CONFIGS) & set(now)
    assert sorted(RENAMED_CONFIGS.values()) == sorted(
        set(RENAMED_CONFIGS.values()) & set(now))
    assert current_config_name('configs/dfa/' + FORMER[RARE]) == \
        'configs/dfa/' + RARE
    assert current_config_name('configs/dfa_bcss.py') == 'configs/dfa_bcss.py'


def test_csba_sweep_refuses_another_conflict_interval(tmp_path):
    script = load('csba_cifar10_lt')
    args = script.parse_args(['--data-root', str(tmp_path), '--work-dir',
                              str(tmp_path / 'work')])
    path = tmp_path / 'work' / 'plain' / 'seed0' / 'run.json'
    write(path, dict(script.settings(args), method='plain', seed=0,
                     conflict_interval=10))
    with pytest.raises(SystemExit, match=r'conflict_interval 10 \(this '
                       r'sweep: 50\)'):
        script.train_one(args, 'plain', 0)
    write(path, dict(script.settings(args), method='plain', seed=0))
    assert script.train_one(args, 'plain', 0)['rare'] == 3


def test_ccar_sweep_refuses_bf16_runs_on_a_cpu_without_bf16(
        ccar, monkeypatch):
    import torch

    from mmimb.engine import optimizers
    script, sweep, path = ccar
    monkeypatch.setattr(optimizers, 'cpu_bf16_support',
                        lambda: (False, 'the CPU (x86_64) lists none'))
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    with pytest.raises(SystemExit, match='lists none, so the CPU schedule '
                       'trains in fp32, not bf16; give --fp32'):
        sweep()
    write(path.parents[1].parent / 'ce-fp32' / 'seed0' / 'metrics.json',
          ccar_record(test_every=1, precision='fp32'))
    sweep('--fp32')
