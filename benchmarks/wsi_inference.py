"""Overhead of the whole-slide pipeline over the model's plain batched
inference on the same tiles, measured side by side.

    python benchmarks/wsi_inference.py [--config CONFIG] [--size 2048 3072]
        [--mpp 0.5] [--tile 512] [--overlap 64]
        [--batch-size 4] [--repeat 3] [--device cpu|cuda] [--amp]

CONFIG defaults to
configs/dfa/dfa_mit-b0_1xb8-300it_synthetic-tissue-crossed-128x128.py. A
generated slide (tissue pieces on glass, ``--size`` pixels at ``--mpp``,
two levels, deflate-compressed pyramidal TIFF) is segmented by the model of
``--config`` with random weights:

* pipeline: ``WSISegmenter`` end to end: thumbnail and tissue detection,
  reading and decoding the tiles, batched inference, blending, the band
  files, the label TIFF, the overlay and the report;
* plain: the same tissue tiles, already read into memory as model inputs,
  through ``model.test_step`` in the same batches, nothing else.

The two alternate ``--repeat`` times after a warm-up round of each; the
median seconds give tiles per second and the overhead
``pipeline / plain - 1`` (target: at most 10%). On the CPU the process's
CPU time is shown too (the pipeline's reading thread counts in it). On CUDA
the clock is synchronised.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mmimb.apis import SlideView, WSISegmenter, open_slide  # noqa: E402
from mmimb.apis.inference import (autocast, init_segmentor,  # noqa: E402
                                  tiles_to_inputs)
from mmimb.apis.wsi_segmenter import _tissue_tiles, read_whole  # noqa: E402
from mmimb.apis.tiling import TileGrid  # noqa: E402
from mmimb.apis.tissue import detect_tissue  # noqa: E402
from mmimb.datasets import synthetic_slide, write_pyramidal_tiff  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def plain_inputs(segmenter, path):
    """The pipeline's tissue tiles, read as it reads them, in its batches."""
    with open_slide(path) as wsi:
        view = SlideView(wsi, segmenter.mpp, segmenter.mpp_tolerance)
        factor = max(1, round(segmenter.tissue_mpp / view.mpp_x))
        thumb = view.coarser(factor)
        mask = detect_tissue(read_whole(thumb), thumb.mpp_x).mask
        grid = TileGrid(view.height, view.width, segmenter.tile,
                        segmenter.overlap)
        tiles = list(zip(*np.nonzero(_tissue_tiles(grid, mask, factor))))
        inputs = tiles_to_inputs([
            view.read(grid.xs[c], grid.ys[r], grid.tile_w, grid.tile_h)
            for r, c in tiles
        ])
    size = segmenter.batch_size
    return [inputs[i:i + size] for i in range(0, len(inputs), size)]


def plain(model, batches, amp, device):
    from mmseg.structures import SegDataSample
    with torch.no_grad(), autocast(device, amp):
        for batch in batches:
            shape = tuple(batch[0].shape[1:])
            samples = [
                SegDataSample(metainfo=dict(img_shape=shape, ori_shape=shape,
                                            pad_shape=shape)) for _ in batch
            ]
            model.test_step(dict(inputs=batch, data_samples=samples))


def timed(fn, device):
    if device.type == 'cuda':
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    if device.type == 'cuda':
        torch.cuda.synchronize()
    return time.perf_counter() - wall, time.process_time() - cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--config',
        default=str(
            ROOT / 'configs' / 'dfa' /
            'dfa_mit-b0_1xb8-300it_synthetic-tissue-crossed-128x128.py'))
    parser.add_argument('--size', type=int, nargs=2, default=[2048, 3072],
                        metavar=('HEIGHT', 'WIDTH'))
    parser.add_argument('--mpp', type=float, default=0.5)
    parser.add_argument('--tile', type=int, default=512)
    parser.add_argument('--overlap', type=int, default=64)
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--amp', action='store_true')
    args = parser.parse_args()

    torch.manual_seed(0)
    device = torch.device(args.device)
    model, _ = init_segmentor(args.config, None, device)
    segmenter = WSISegmenter(
        model, device=args.device, mpp=args.mpp, tile=args.tile,
        overlap=args.overlap, batch_size=args.batch_size, amp=args.amp,
        progress=False)
    params = sum(p.numel() for p in model.parameters())
    with tempfile.TemporaryDirectory() as tmp:
        image, _ = synthetic_slide(*args.size, seed=0)
        path = os.path.join(tmp, 'slide.tif')
        write_pyramidal_tiff(path, image, mpp=args.mpp, levels=2)
        del image
        batches = plain_inputs(segmenter, path)
        tiles = sum(len(b) for b in batches)
        runs = {'pipeline': [], 'plain': []}

        def pipeline():
            segmenter(path, os.path.join(tmp, 'out'))

        def baseline():
            plain(model, batches, args.amp, device)

        print(f'{Path(args.config).name}: {params / 1e6:.2f} M parameters, '
              f'random weights; slide {args.size[1]} x {args.size[0]} px at '
              f'{args.mpp} um/px; tile {args.tile}, overlap {args.overlap}, '
              f'batch {args.batch_size}, {tiles} tissue tiles; device '
              f'{device}, amp {args.amp}, torch threads '
              f'{torch.get_num_threads()}, OMP_NUM_THREADS='
              f"{os.environ.get('OMP_NUM_THREADS', 'unset')}")
        for k in range(args.repeat + 1):
            for name, fn in (('plain', baseline), ('pipeline', pipeline)):
                wall, cpu = timed(fn, device)
                if k:  # the first round warms up
                    runs[name].append((wall, cpu))
    print(f"{'':<10}{'wall s':>9}{'tiles/s':>9}{'cpu s':>9}")
    medians = {}
    for name in ('plain', 'pipeline'):
        wall = statistics.median(r[0] for r in runs[name])
        cpu = statistics.median(r[1] for r in runs[name])
        medians[name] = (wall, cpu)
        print(f'{name:<10}{wall:>9.2f}{tiles / wall:>9.2f}{cpu:>9.2f}')
    wall = medians['pipeline'][0] / medians['plain'][0] - 1
    cpu = medians['pipeline'][1] / medians['plain'][1] - 1
    print(f'pipeline overhead: {100 * wall:+.1f}% wall, {100 * cpu:+.1f}% CPU '
          'time (target: at most +10%); rounds (wall s): ' + ', '.join(
              f'{a:.2f}/{b:.2f}'
              for (a, _), (b, _) in zip(runs['plain'], runs['pipeline'])) +
          ' (plain/pipeline)')


if __name__ == '__main__':
    main()
