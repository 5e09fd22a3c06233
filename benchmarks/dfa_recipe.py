"""Cost of a training step of the DFA authors' recipe (frozen SAM encoder,
``configs/dfa_bcss.py``) against full fine-tuning
(``configs/dfa/dfa_sam-vit-b_1xb2-20k_bcss-1024x1024.py``), side by side
in one run, at 1024 px with a reduced ViT.

    python benchmarks/dfa_recipe.py [--rounds 3] [--batch 1] [--device cpu]
        [--embed-dims 192] [--depth 4] [--heads 3] [--threads N]

Variants, each built from its config with the same reduced SAM ViT (width
``--embed-dims``, ``--depth`` blocks, global attention in every second one,
window 14, patch 16, 1024 px) and random weights:

- ``recipe``: configs/dfa_bcss.py, encoder frozen (no gradients, under
  no_grad), SAM-Path's decoder layout and loss;
- ``recipe, encoder trained``: the same model as a plain EncoderDecoder
  (only the freezing differs);
- ``full fine-tuning``: configs/dfa/dfa_sam-vit-b_1xb2-20k_bcss-1024x1024.py
  (encoder trained, one token per class, focal + Dice).

Each step is ``model.train_step`` (preprocessing, forward, loss, backward,
AdamW step, no gradient accumulation) on one random batch. Time: median of
``--rounds`` interleaved rounds after a warm-up step; on the CPU the
process's CPU time (robust to other jobs on a shared machine), on CUDA the
synchronised wall clock. Memory: on CUDA the peak allocated during a step;
on the CPU, which keeps no allocator statistics, the training memory that
freezing the encoder changes, counted exactly: the bytes autograd saves for
the backward pass, plus the gradients and AdamW's two moments of the trained
parameters (the weights themselves are the same in every variant). Ratios
are to full fine-tuning.
"""
import argparse
import copy
import os
import os.path as osp
import statistics
import sys
import time

import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

from mmengine.config import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

from mmimb.utils import autograd_footprint  # noqa: E402

VARIANTS = {
    'recipe': ('configs/dfa_bcss.py', None),
    'recipe, encoder trained': ('configs/dfa_bcss.py', 'EncoderDecoder'),
    'full fine-tuning':
    ('configs/dfa/dfa_sam-vit-b_1xb2-20k_bcss-1024x1024.py', None),
}
REFERENCE = 'full fine-tuning'
FREQ = [0.40, 0.35, 0.08, 0.08, 0.09]


def build(name: str, args):
    """Model, optimizer wrapper and a batch of ``name``'s config."""
    from mmengine.optim import build_optim_wrapper
    from mmseg.registry import MODELS
    path, segmentor = VARIANTS[name]
    cfg = Config.fromfile(osp.join(ROOT, path))
    init_default_scope('mmseg')
    model_cfg = cfg.model
    model_cfg.backbone.arch = dict(
        embed_dims=args.embed_dims,
        num_layers=args.depth,
        num_heads=args.heads,
        feedforward_channels=4 * args.embed_dims,
        global_attn_indexes=list(range(1, args.depth, 2)))
    model_cfg.backbone.init_cfg = None
    model_cfg.decode_head.update(init_cfg=None, class_freq=FREQ)
    if segmentor:
        model_cfg.type = segmentor
    torch.manual_seed(0)
    model = MODELS.build(model_cfg).to(args.device).train()
    optim_cfg = copy.deepcopy(cfg.optim_wrapper)
    optim_cfg.pop('accumulative_counts', None)
    wrapper = build_optim_wrapper(model, optim_cfg)
    return model, wrapper, batch(args.batch)


def batch(size: int) -> dict:
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    g = torch.Generator().manual_seed(0)
    samples = []
    for _ in range(size):
        sample = SegDataSample()
        label = torch.randint(0, 5, (1, 1024, 1024), generator=g)
        label[:, :64] = 255
        sample.gt_sem_seg = PixelData(data=label)
        sample.set_metainfo(dict(img_shape=(1024, 1024),
                                 ori_shape=(1024, 1024)))
        samples.append(sample)
    inputs = [torch.randint(0, 256, (3, 1024, 1024), dtype=torch.uint8,
                            generator=g) for _ in range(size)]
    return dict(inputs=inputs, data_samples=samples)


def trained_bytes(model) -> int:
    """Gradients and AdamW's two moments of the trained parameters."""
    return 3 * sum(p.numel() * p.element_size() for p in model.parameters()
                   if p.requires_grad)


def saved_bytes(model, wrapper, data) -> int:

    def step():
        prepared = model.data_preprocessor(copy.copy(data), True)
        return model.parse_losses(model(**prepared, mode='loss'))[0]

    footprint = autograd_footprint(step)
    wrapper.zero_grad()
    return footprint.saved_bytes


def cuda_peak(model, wrapper, data) -> int:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    model.train_step(copy.copy(data), wrapper)
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - before


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--embed-dims', type=int, default=192)
    parser.add_argument('--depth', type=int, default=4)
    parser.add_argument('--heads', type=int, default=3)
    parser.add_argument('--threads', type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    cuda = args.device == 'cuda'
    clock = time.perf_counter if cuda else time.process_time
    runs = {name: build(name, args) for name in VARIANTS}
    for model, wrapper, data in runs.values():
        model.train_step(copy.copy(data), wrapper)  # warm-up
    times = {name: [] for name in VARIANTS}
    names = list(VARIANTS)
    for r in range(args.rounds):
        for name in names[r % 3:] + names[:r % 3]:
            model, wrapper, data = runs[name]
            if cuda:
                torch.cuda.synchronize()
            start = clock()
            model.train_step(copy.copy(data), wrapper)
            if cuda:
                torch.cuda.synchronize()
            times[name].append(clock() - start)
    memory = {}
    for name, (model, wrapper, data) in runs.items():
        if cuda:
            memory[name] = dict(peak=cuda_peak(model, wrapper, data))
        else:
            memory[name] = dict(
                training=saved_bytes(model, wrapper, data) +
                trained_bytes(model))

    print(f'torch {torch.__version__}, device {args.device}, '
          f'{torch.get_num_threads()} threads, load average '
          f'{os.getloadavg()[0]:.1f}; reduced SAM ViT: width '
          f'{args.embed_dims}, {args.depth} blocks, {args.heads} heads, '
          f'1024 px, batch {args.batch}; median of {args.rounds} rounds '
          f'({"wall clock" if cuda else "process CPU time"})')
    kinds = list(memory[REFERENCE])
    labels = dict(peak='peak allocated', training='training memory')
    print('\n| variant | step (s) | x full FT | ' + ' | '.join(
        f'{labels[k]} (MiB) | x full FT' for k in kinds) + ' |')
    print('| --- ' * (3 + 2 * len(kinds)) + '|')
    ref_time = statistics.median(times[REFERENCE])
    for name in VARIANTS:
        t = statistics.median(times[name])
        cells = [f'{t:.2f}', f'{t / ref_time:.3f}']
        for k in kinds:
            cells += [f'{memory[name][k] / 2**20:.0f}',
                      f'{memory[name][k] / memory[REFERENCE][k]:.3f}']
        print(f'| {name} | ' + ' | '.join(cells) + ' |')


if __name__ == '__main__':
    main()
