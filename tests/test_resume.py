"""Resuming under torch >= 2.6 with safe (weights-only) loading: N
iterations, save, resume to 2N equals an uninterrupted 2N run exactly."""
import fractions
import json
import pickle
import shutil

import pytest
import torch
from mmengine.logging import MessageHub
from toolrun import check_ok, run_tool

import mmimb  # noqa: F401  (allowlists what mmengine checkpoints hold)

UNSTABLE = ('time', 'data_time', 'eta', 'memory')


def scalars(work_dir):
    """Logged training scalars per iteration, without timings."""
    path = next(work_dir.glob('*/vis_data/scalars.json'))
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return {
        row['step']: {k: v
                      for k, v in row.items() if k not in UNSTABLE}
        for row in rows if 'loss' in row
    }


def test_resume_equals_uninterrupted(tmp_path, tiny_seg_config):
    full, resumed = tmp_path / 'full', tmp_path / 'resumed'
    check_ok(run_tool('tools/train.py', tiny_seg_config, '--work-dir', full))
    # An interrupted run: identical up to its checkpoint at iteration 2.
    resumed.mkdir()
    shutil.copy(full / 'iter_2.pth', resumed / 'iter_2.pth')
    (resumed / 'last_checkpoint').write_text(str(resumed / 'iter_2.pth'))
    result = run_tool('tools/train.py', tiny_seg_config, '--work-dir',
                      resumed, '--resume')
    check_ok(result)
    assert 'resumed' in (result.stdout + result.stderr).lower()

    a = torch.load(full / 'iter_4.pth', weights_only=True)
    b = torch.load(resumed / 'iter_4.pth', weights_only=True)
    for name, value in a['state_dict'].items():
        assert torch.equal(value, b['state_dict'][name]), name
    opt_a, opt_b = a['optimizer']['state'], b['optimizer']['state']
    assert opt_a.keys() == opt_b.keys()
    for key in opt_a:
        for field, value in opt_a[key].items():
            assert torch.equal(value, opt_b[key][field]), (key, field)
    assert a['param_schedulers'] == b['param_schedulers']
    log_a, log_b = scalars(full), scalars(resumed)
    assert set(log_b) == {3, 4}
    for step in (3, 4):
        assert log_a[step] == log_b[step]


def test_checkpoint_loading_stays_safe(tmp_path):
    hub = MessageHub.get_instance('mmimb_test_safe_load')
    hub.update_scalar('train/loss', 0.5)
    path = tmp_path / 'hub.pth'
    torch.save({'message_hub': hub.state_dict()}, path)
    loaded = torch.load(path, weights_only=True)
    assert loaded['message_hub']['log_scalars']['train/loss'].current() \
        == 0.5

    # Any other global still needs an explicit allowlist.
    torch.save({'x': fractions.Fraction(1, 3)}, tmp_path / 'unsafe.pth')
    with pytest.raises(pickle.UnpicklingError):
        torch.load(tmp_path / 'unsafe.pth', weights_only=True)
