"""Two gloo processes on the CPU, each with half of a global batch, give
after the all-reduce the class gradients and matrix of one process on the
whole batch."""
import importlib.util
import os
import os.path as osp
import subprocess
import sys

import numpy as np
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
