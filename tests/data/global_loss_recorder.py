"""Test-only hook: records the loss averaged over all processes per
iteration, so a distributed run can be compared with a single-process one.
Imported by tests through ``custom_imports`` with tests/data on PYTHONPATH.
"""
import json
import os.path as osp

import torch
import torch.distributed as dist
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class GlobalLossRecorder(Hook):

    def __init__(self):
        self.losses = []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        loss = torch.as_tensor(
            float(outputs['loss'].detach()), dtype=torch.float64)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(loss)
            loss /= dist.get_world_size()
        self.losses.append(loss.item())

    def after_run(self, runner):
        if runner.rank == 0:
            with open(osp.join(runner.work_dir, 'global_losses.json'),
                      'w') as f:
                json.dump(self.losses, f)
