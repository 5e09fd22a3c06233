"""The GPU reproduction pack (tools/repro/gpu_pack.py) on the CPU: its
config swap against a config written on the device-side base, its process
runner's budget, its projection, its errors, and smoke runs: every part in
the default suite (the CIFAR part with one method), all five CIFAR methods
in a slow test."""
import json
import math
import sys
import time
from pathlib import Path

import pytest
from mmengine.config import Config

ROOT = Path(__file__).resolve().parents[1]
BASES = ROOT / 'configs' / '_base_'


@pytest.fixture(scope='module')
def pack(load_script):
    return load_script('tools/repro/gpu_pack.py')


def written_on(tmp_path: Path, dataset_base: str, extra: str = '') -> Config:
    """The CE config of configs/ccar/ with ``dataset_base`` among its bases
    (the same bases otherwise), as a file in ``tmp_path``."""
    path = tmp_path / f'ce_{Path(dataset_base).stem}.py'
    path.write_text(
        '_base_ = [\n'
        f"    '{BASES / 'models' / 'cifar_resnet32.py'}',\n"
        f"    '{BASES / 'datasets' / dataset_base}',\n"
        f"    '{BASES / 'schedules' / 'cifar_lt_200e.py'}',\n"
        f"    '{BASES / 'default_runtime_cifar_lt.py'}',\n"
        ']\n' + extra)
    return Config.fromfile(path)


def test_swapped_config_equals_one_written_on_the_bank_base(pack, tmp_path):
    swapped = Config.fromfile(ROOT / pack.METHOD_CONFIG.format('ce'))
    pack.swap_dataset_base(swapped, pack.PLAIN_BASE, pack.BANK_BASE)
    expected = written_on(tmp_path, 'cifar10_lt_if100_bank.py')
    assert swapped.to_dict() == expected.to_dict()
    assert swapped.train_dataloader.dataset.type == 'ImageBankDataset'
    assert [h['type'] for h in swapped.custom_hooks] == ['ImageBankHook']


def test_swap_refuses_to_drop_a_change_of_the_dataset_base(pack, tmp_path):
    cfg = written_on(tmp_path, 'cifar10_lt_if100.py',
                     'train_dataloader = dict(batch_size=64)\n')
    with pytest.raises(ValueError, match='train_dataloader differs'):
        pack.swap_dataset_base(cfg, pack.PLAIN_BASE, pack.BANK_BASE)


def test_every_cifar_method_config_takes_the_swap(pack):
    for method in pack.CIFAR_METHODS:
        cfg = Config.fromfile(ROOT / pack.METHOD_CONFIG.format(method))
        pack.swap_dataset_base(cfg, pack.PLAIN_BASE, pack.BANK_BASE)
        assert cfg.data_preprocessor.type == 'ImageBankClsDataPreprocessor'


def test_run_jobs_stops_what_runs_past_the_deadline(pack, tmp_path):
    def job(label, code):
        return pack.Job(label, [sys.executable, '-c', code],
                        str(tmp_path / f'{label}.log'))

    jobs = [job('ok', 'print(1)'), job('fails', 'raise SystemExit(3)'),
            job('sleeps', 'import time; time.sleep(60)'),
            job('waits', 'print(2)')]
    start = time.monotonic()
    status = pack.run_jobs(jobs, 3, start + 5)
    assert time.monotonic() - start < 30
    assert status['ok']['status'] == 'ok'
    assert status['fails']['status'] == 'failed'
    assert status['fails']['returncode'] == 3
    assert status['sleeps']['status'] == 'stopped at the budget'
    # The fourth waited for a free slot, which came when 'ok' ended.
    assert status['waits']['status'] == 'ok'
    assert (tmp_path / 'ok.log').read_text().strip() == '1'
    status = pack.run_jobs(jobs[2:], 1, time.monotonic() + 2)
    assert status['waits']['status'] == 'not started'


def test_projection_is_bound_by_the_hosts_or_the_gpu(pack):
    # One run alone: 4 ms per iteration, of which 1 ms GPU kernels.
    profile = dict(iteration_ms=4.0, gpu_kernel_ms=1.0)
    # 2 runs: each bound by its host, side by side as fast as one alone.
    host = pack.fit_projection(profile, 2, 1000, 100.0)
    assert math.isclose(host['projected_seconds'], 1000 * 0.004)
    assert not host['gpu_bound']
    # 8 runs: the GPU's 1 ms per iteration serialises them.
    gpu = pack.fit_projection(profile, 8, 1000, 100.0)
    assert math.isclose(gpu['projected_seconds'], 8 * 1000 * 0.001)
    assert gpu['gpu_bound']
    assert gpu['runs_that_fit'] == 100
    # Not even one run alone fits 3 s.
    assert pack.fit_projection(profile, 1, 1000, 3.0)['runs_that_fit'] == 0
    cpu = pack.fit_projection(dict(iteration_ms=4.0, gpu_kernel_ms=None), 3,
                              1000, 100.0)
    assert math.isclose(cpu['projected_seconds'], 1000 * 0.004)
    assert cpu['runs_that_fit'] is None


def test_cifar_starts_only_the_runs_that_fit(pack, tmp_path, monkeypatch):
    for split in ('train', 'test'):
        (tmp_path / 'data' / split).mkdir(parents=True)
    # 10 epochs of 100 iterations: 4 s alone, 1 s of GPU kernels a run.
    profile = dict(iteration_ms=4.0, gpu_kernel_ms=1.0, epoch_iterations=100)
    started = []

    def run_jobs(jobs, parallel, deadline, env=None):
        started.append([job.label for job in jobs])
        return {job.label: dict(status='ok', seconds=1.0, returncode=0)
                for job in jobs}

    monkeypatch.setattr(pack, 'run_jobs', run_jobs)
    monkeypatch.setattr(pack, 'read_json', lambda path: profile
                        if path.endswith('profile.json') else None)
    args = pack.parse_args([
        '--out', 'x', '--cifar-data', str(tmp_path / 'data'), '--cifar-seeds',
        '2', '--cifar-epochs', '10'])
    # 6.9 s left after start-up: 6 runs' GPU time.
    out = pack.part_cifar(args, pack.sizes_for(args), str(tmp_path / 'work'),
                          time.monotonic() + pack.CIFAR_START_SECONDS + 6.9)
    assert out['projected_fit'] == 6
    assert started[1] == [f'{m} seed 0' for m in pack.CIFAR_METHODS] + [
        'ce seed 1']
    assert out['status']['la seed 1']['status'] == \
        'not started: projected not to fit the budget'


def test_a_stopped_run_reports_its_last_validation(pack, tmp_path):
    scalars = tmp_path / 'ce_seed0' / '20261201_000000' / 'vis_data'
    scalars.mkdir(parents=True)
    (scalars / 'scalars.json').write_text('\n'.join(json.dumps(x) for x in [
        dict(loss=2.0, step=50), {'lt/top1': 31.5, 'step': 10},
        dict(loss=1.0, step=100), {'lt/top1': 44.25, 'step': 20,
                                   'lt/many_shot_acc': float('nan')}]))
    assert pack.last_validation(str(tmp_path / 'ce_seed0')) == dict(
        epoch=20, top1=44.25)
    assert pack.last_validation(str(tmp_path / 'la_seed0')) is None
    part = dict(profile=None, runs=[], side_by_side=1, runs_wall_seconds=9.0,
                unfinished={'ce seed 0': dict(
                    status='stopped at the budget', seconds=9.0,
                    last_log='Epoch(train) [21][3/97]', last_validation=dict(
                        epoch=20, top1=44.25))})
    text = '\n'.join(pack.cifar_markdown(part))
    assert ('ce seed 0: stopped at the budget after 9 s; top-1 44.25 at '
            'epoch 20; last log lines: `Epoch(train) [21][3/97]`') in text


@pytest.mark.parametrize('argv, message', [
    (['--budget', 'cifar=soon'], "--budget 'cifar=soon': expected PART="),
    (['--dfa-iters', '2', '--dfa-curve-every', '4'],
     '--dfa-curve-every 4 exceeds --dfa-iters 2'),
    (['--cifar-seeds', '0'], '--cifar-seeds 0: expected a positive number'),
    (['--paper-configs', 'configs/no_such.py'],
     '--paper-configs configs/no_such.py: no such file'),
])
def test_bad_input_is_refused_in_one_line(pack, argv, message, capsys,
                                          tmp_path):
    with pytest.raises(SystemExit) as error:
        pack.main(['--out', str(tmp_path / 'out'), '--smoke', '--work-dir',
                   str(tmp_path / 'work')] + argv)
    assert message in str(error.value) + capsys.readouterr().err
    assert not (tmp_path / 'out').exists()


def test_the_pack_refuses_a_machine_without_a_gpu(pack, tmp_path,
                                                  monkeypatch):
    import torch
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    with pytest.raises(SystemExit, match='no GPU: the pack runs on a GPU'):
        pack.main(['--out', str(tmp_path)])


def test_paper_configs_default_to_those_the_checkout_has(pack):
    args = pack.parse_args(['--out', 'x'])
    assert args.paper_configs == [
        c for c in pack.PAPER_CONFIGS if (ROOT / c).is_file()]
    assert args.paper_configs[0] == 'configs/dfa_bcss.py'


def check_report(out: Path, parts) -> dict:
    results = json.loads((out / 'pack.json').read_text())
    assert list(results['parts']) == list(parts)
    for name in parts:
        assert results['parts'][name]['state'] == 'complete', \
            results['parts'][name]
    table = (out / 'pack.md').read_text()
    env = results['environment']
    assert f'torch {env["torch"]}, CUDA {env["cuda"]}' in table
    assert 'Hardware: CPU' in table
    for name in parts:
        wall = results['parts'][name]['wall_seconds']
        assert f'| {name} | complete | {wall:.0f} |' in table
    assert (out / 'logs.tar.gz').stat().st_size > 0
    return results


PARTS_AFTER_CIFAR = ('dfa-synthetic', 'dfa-paper', 'micro')


def check_parts_after_cifar(pack, parts: dict) -> None:
    assert set(parts['dfa-synthetic']['modes']) == set(pack.DFA_MODES)
    for variant in parts['dfa-paper']['variants'].values():
        assert variant['loss_finite'] and variant['iterations'] > 0
    for name, bench in parts['micro'].items():
        assert bench['status']['status'] == 'ok', (name, bench['output'])


def test_smoke_cifar_part(pack, tmp_path):
    out = tmp_path / 'out'
    pack.main(['--out', str(out), '--smoke', '--parts', 'cifar',
               '--cifar-methods', 'ccar-la', '--work-dir',
               str(tmp_path / 'work')])
    results = check_report(out, ['cifar'])
    cifar = results['parts']['cifar']['result']
    (run, ) = cifar['runs']
    assert run['method'] == 'ccar-la' and run['epochs'] == 1
    assert 0 <= run['metrics']['lt/top1'] <= 100
    assert cifar['profile']['train_step_ms'] > 0


def test_smoke_parts_after_cifar(pack, tmp_path):
    parts = PARTS_AFTER_CIFAR
    assert ('cifar', *parts) == tuple(pack.PARTS)
    out = tmp_path / 'out'
    pack.main(['--out', str(out), '--smoke', '--parts', *parts,
               '--work-dir', str(tmp_path / 'work')])
    results = check_report(out, parts)
    check_parts_after_cifar(
        pack, {k: v['result'] for k, v in results['parts'].items()})


@pytest.mark.slow
def test_smoke_all_parts(pack, tmp_path):
    out = tmp_path / 'out'
    pack.main(['--out', str(out), '--smoke', '--work-dir',
               str(tmp_path / 'work')])
    results = check_report(out, pack.PARTS)
    parts = {k: v['result'] for k, v in results['parts'].items()}
    assert len(parts['cifar']['runs']) == len(pack.CIFAR_METHODS)
    check_parts_after_cifar(pack, parts)
