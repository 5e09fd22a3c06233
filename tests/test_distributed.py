"""Two processes on the CPU (gloo, through tools/dist_train.sh run as README.md
shows it, from a shell whose PATH lacks the environment) train to the same
weights and losses as one process on the same global batch."""
import json
import socket

import torch

import mmimb  # noqa: F401  (lets torch.load read mmengine checkpoints safely)
from toolrun import check_ok, derived_config, run_tool

RECORD = """
custom_imports = dict(
    imports=['mmimb', 'global_loss_recorder'], allow_failed_imports=False)
custom_hooks = [dict(type='GlobalLossRecorder')]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_two_processes_match_one(tmp_path, tiny_seg_config):
    config = derived_config(tmp_path, tiny_seg_config, RECORD)
    single, dist = tmp_path / 'single', tmp_path / 'dist'
    check_ok(
        run_tool('tools/train.py', config, '--work-dir', single,
                 '--cfg-options', 'train_dataloader.batch_size=4'))
    check_ok(
        run_tool(
            'tools/dist_train.sh',
            config,
            2,
            '--work-dir',
            dist,
            '--cfg-options',
            'train_dataloader.batch_size=2',
            env=dict(PORT=str(free_port()))))

    losses = [
        json.loads((d / 'global_losses.json').read_text())
        for d in (single, dist)
    ]
    assert len(losses[0]) == 4
    torch.testing.assert_close(losses[1], losses[0], rtol=1e-5, atol=1e-6)
    weights = [
        torch.load(d / 'iter_4.pth', map_location='cpu')['state_dict']
        for d in (single, dist)
    ]
    assert weights[0].keys() == weights[1].keys()
    for name in weights[0]:
        torch.testing.assert_close(
            weights[1][name], weights[0][name], rtol=1e-5, atol=1e-6,
            msg=lambda m, name=name: f'{name}: {m}')
    log = next(dist.glob('*/*.log')).read_text()
    assert 'Distributed training: True' in log
