"""One process of the 2-process gradient conflict test: class gradients on
this rank's shard of a global batch, all-reduced, saved by rank 0.

    RANK=r WORLD_SIZE=2 python gradient_conflict_ddp.py INIT_FILE OUT_DIR
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class Classifier(nn.Module):

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.depthwise = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8)
        self.head = nn.Linear(8, 5)

    def forward(self, x):
        x = F.relu(self.bn(self.conv(x)))
        return self.head(F.relu(self.depthwise(x)).mean((2, 3)))


class Segmenter(nn.Module):

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.conv_seg = nn.Conv2d(8, 4, 1)

    def forward(self, x):
        return self.conv_seg(F.relu(self.stem(x)))


def cases():
    """(name, model, inputs, targets, kwargs) of the global batches."""
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    x = torch.randn(12, 3, 8, 8, generator=gen)
    # Class 4 only in the second half (rank 1's shard), class 3 nowhere.
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 4, 4, 2, 0])
    yield 'cls', Classifier(), x, y, {}
    xs = torch.randn(4, 3, 12, 12, generator=gen)
    ys = torch.randint(0, 3, (4, 12, 12), generator=gen)
    ys[0, :3] = 255
    yield 'seg', Segmenter(), xs, ys, dict(ignore_index=255)


def shard(tensor, rank, world):
    n = tensor.shape[0] // world
    return tensor[rank * n:(rank + 1) * n]


def main():
    import torch.distributed as dist

    from mmimb.analysis import class_gradients, conflict_matrix
    init_file, out_dir = sys.argv[1:3]
    rank, world = int(os.environ['RANK']), int(os.environ['WORLD_SIZE'])
    dist.init_process_group(
        'gloo', init_method=f'file://{init_file}', rank=rank,
        world_size=world)
    for name, model, x, y, kwargs in cases():
        grads = class_gradients(model, (shard(x, rank, world),
                                        shard(y, rank, world)),
                                **kwargs).all_reduce()
        result = conflict_matrix(grads)
        if rank == 0:
            result.to_npz(os.path.join(out_dir, f'{name}.npz'))
            np.savez(
                os.path.join(out_dir, f'{name}_grads.npz'),
                **{k: v.numpy() for k, v in grads.grads.items()})
    dist.destroy_process_group()


if __name__ == '__main__':
    main()
