"""Two gloo processes on the CPU, each with half of a global batch, give
after the all-reduce the class gradients and matrix of one process on the
whole batch: the library alone, and GradientConflictHook in a distributed
training run (slow)."""
import importlib.util
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

from mmimb.analysis import class_gradients, conflict_matrix

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
WORKER = osp.join(ROOT, 'tests', 'data', 'scripts', 'gradient_conflict_ddp.py')


def load_worker():
    spec = importlib.util.spec_from_file_location('gcm_ddp_worker', WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_two_processes_equal_one(tmp_path):
    env = dict(os.environ, WORLD_SIZE='2', OMP_NUM_THREADS='1',
               PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    init = tmp_path / 'init'
    procs = [
        subprocess.Popen(
            [sys.executable, WORKER, str(init), str(tmp_path)],
            env=dict(env, RANK=str(rank)), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT) for rank in range(2)
    ]
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out.decode()[-3000:]
    for name, model, x, y, kwargs in load_worker().cases():
        grads = class_gradients(model, (x, y), **kwargs)
        single = conflict_matrix(grads)
        with np.load(tmp_path / f'{name}.npz') as data:
            np.testing.assert_array_equal(data['counts'],
                                          single.counts.numpy())
            np.testing.assert_allclose(
                data['matrix'], single.matrix.numpy(), rtol=1e-5, atol=1e-6)
            assert np.isnan(data['matrix'][3]).all()
        with np.load(tmp_path / f'{name}_grads.npz') as data:
            for layer, g in grads.grads.items():
                present = grads.present
                ref = g[present]
                got = torch.from_numpy(data[layer])[present]
                err = (got - ref).norm(dim=1) / ref.norm(dim=1)
                assert err.max().item() <= 1e-5, (name, layer)


HOOK = """
custom_hooks = [dict(type='GradientConflictHook', interval=2,
                     save_heatmaps=False)]
"""


@pytest.mark.slow
def test_hook_under_ddp_equals_one_process(tmp_path, tiny_seg_config):
    """GradientConflictHook in a 2-process training run (tools/dist_train.sh,
    batch 2 per process) saves the matrices of a 1-process run with batch 4:
    the same samples, since the sampler deals indices to ranks in turn."""
    from test_distributed import free_port
    from toolrun import check_ok, derived_config, run_tool
    config = derived_config(tmp_path, tiny_seg_config, HOOK)
    single, dist = tmp_path / 'single', tmp_path / 'dist'
    check_ok(
        run_tool('tools/train.py', config, '--work-dir', single,
                 '--cfg-options', 'train_dataloader.batch_size=4'))
    check_ok(
        run_tool('tools/dist_train.sh', config, 2, '--work-dir', dist,
                 '--cfg-options', 'train_dataloader.batch_size=2',
                 env=dict(PORT=str(free_port()))))
    for iteration in (0, 2):
        found = [
            np.load(next(d.glob(f'*/gradient_conflict/iter_{iteration}.npz')))
            for d in (single, dist)
        ]
        np.testing.assert_array_equal(found[1]['counts'], found[0]['counts'])
        np.testing.assert_allclose(
            found[1]['matrix'], found[0]['matrix'], rtol=1e-4, atol=1e-5)
