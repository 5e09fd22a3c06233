"""Whole-slide inference (mmimb.apis, tools/infer_wsi.py) on small pyramidal
TIFFs written here with tifffile, with a translation-equivariant toy model
(tests/data/toy_wsi_model.py)."""
import itertools
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tifffile
import torch
from toolrun import ROOT, TEST_DATA, check_ok, run_tool

from mmimb.apis import (SlideError, SlideView, Stitcher, TileGrid,
                        WSISegmenter, detect_tissue, open_slide)
from mmimb.apis.inference import init_segmentor, predict_logits, \
    tiles_to_inputs
from mmimb.apis.slide import openslide_available
from mmimb.datasets import synthetic_slide, write_pyramidal_tiff
from mmimb.engine import ConfigError

# custom_imports of the toy config import tests/data/toy_wsi_model.py.
sys.path.insert(0, str(TEST_DATA))
TOY_CONFIG = str(ROOT / 'tests' / 'data' / 'configs' / 'toy_wsi_seg.py')
CLASSES = ('stroma', 'tumor', 'fat', 'lymphocytes')
needs_openslide = pytest.mark.skipif(
    not openslide_available(),
    reason='openslide-python / openslide-bin not installed')


@pytest.fixture(scope='module')
def toy_checkpoint(tmp_path_factory):
    """Random toy weights with class names, saved as an mmengine checkpoint
    would be."""
    torch.manual_seed(0)
    model, _ = init_segmentor(TOY_CONFIG)
    path = tmp_path_factory.mktemp('ckpt') / 'toy.pth'
    torch.save(
        dict(
            state_dict=model.state_dict(),
            meta=dict(dataset_meta=dict(classes=CLASSES))), path)
    return str(path)


@pytest.fixture(scope='module')
def slide(tmp_path_factory):
    """A 512 x 1152 generated slide at 0.25 um/px, two levels, with its
    labels (255 on glass)."""
    image, labels = synthetic_slide(512, 1152, seed=1, tissue_fraction=0.45)
    path = tmp_path_factory.mktemp('slide') / 'slide.tif'
    write_pyramidal_tiff(str(path), image, mpp=0.25, levels=2)
    return str(path), image, labels


def segmenter(checkpoint, **kwargs):
    options = dict(device='cpu', tile=128, overlap=32, batch_size=3,
                   progress=False)
    options.update(kwargs)
    return WSISegmenter(TOY_CONFIG, checkpoint, **options)


def read_labels(path, level=0):
    with tifffile.TiffFile(path) as tif:
        return tif.series[0].levels[level].asarray()


def whole_image_labels(model, image):
    logits = predict_logits(model, tiles_to_inputs([image]))[0]
    if logits.shape[0] == 1:  # sigmoid probability of class 1
        return (logits[0] > model.decode_head.threshold).numpy().astype(
            np.uint8)
    return logits.argmax(0).numpy().astype(np.uint8)


@pytest.mark.parametrize('mpp,level,resampled,size', [
    (0.25, 0, False, (1152, 512)),
    (0.5, 1, False, (576, 256)),
    (0.4, 0, True, (720, 320)),
])
def test_label_map_has_slide_size_at_inference_mpp(slide, toy_checkpoint,
                                                   tmp_path, mpp, level,
                                                   resampled, size):
    path, _, _ = slide
    result = segmenter(toy_checkpoint, mpp=mpp)(path, str(tmp_path))
    report = result.report
    assert report['label_map_size'] == list(size)
    assert (report['level'], report['resampled']) == (level, resampled)
    with tifffile.TiffFile(result.label_map) as tif:
        levels = tif.series[0].levels
        assert levels[0].shape == size[::-1]
        num, den = levels[0].keyframe.tags['XResolution'].value
        assert 1e4 / (num / den) == pytest.approx(mpp)
        # Pyramid: halved levels down to one 512 px tile, nearest labels.
        assert [lv.shape[1] for lv in levels] == \
            [-(-size[0] // 2**k) for k in range(len(levels))]
        assert max(levels[-1].shape) <= 512
        full = levels[0].asarray()
        for k, lv in enumerate(levels[1:], 1):
            np.testing.assert_array_equal(lv.asarray(),
                                          full[::2**k, ::2**k])
    assert os.path.isfile(result.overlay)
    assert not any(name.endswith('.partial') or '.partial.' in name
                   for name in os.listdir(tmp_path))


BINARY = {
    'model.decode_head.num_classes': 2,
    'model.decode_head.out_channels': 1,
    'model.decode_head.threshold': 0.5,
    'model.decode_head.loss_decode.use_sigmoid': True
}


@pytest.mark.parametrize('tile,overlap,blend,num_convs,mpp,binary', [
    (64, 16, 'linear', 2, 0.5, False),
    (48, 24, 'linear', 2, 0.5, False),  # three tiles overlap in places
    (64, 16, 'linear', 2, 0.7, False),  # read resampled
    (64, 16, 'gaussian', 0, 0.5, False),  # pointwise: any weights are exact
    (64, 16, 'linear', 0, 0.5, True),  # one sigmoid output, thresholded
])
def test_stitched_equals_whole_image_inference(tmp_path, toy_checkpoint,
                                               tile, overlap, blend,
                                               num_convs, mpp, binary):
    """A model that sees ``num_convs`` pixels around each pixel, tiled with
    linear weights whose zero margin (overlap // 4) covers that, stitches
    to exactly its output on the whole image at the inference mpp; a
    pointwise one with any weights."""
    image, _ = synthetic_slide(150, 230, seed=2, tissue_fraction=0.9)
    path = str(tmp_path / 'small.tif')
    write_pyramidal_tiff(path, image, mpp=0.5, levels=1, tile=64)
    options = dict(cfg_options={'model.backbone.num_convs': num_convs,
                                **(BINARY if binary else {})})
    if num_convs == 2:
        options = dict(checkpoint=toy_checkpoint)
    torch.manual_seed(0)
    seg = WSISegmenter(TOY_CONFIG, device='cpu', mpp=mpp, tile=tile,
                       overlap=overlap, blend=blend, batch_size=4,
                       tissue='none', progress=False, **options)
    with open_slide(path) as wsi:
        view = SlideView(wsi, mpp)
        image = view.read(0, 0, view.width, view.height)
    if binary:  # a threshold that random weights cross
        probs = predict_logits(seg.model, tiles_to_inputs([image]))[0]
        seg.threshold = seg.model.decode_head.threshold = float(
            probs.median())
    result = seg(path, str(tmp_path / 'out'))
    labels = read_labels(result.label_map)
    np.testing.assert_array_equal(labels, whole_image_labels(seg.model, image))
    assert len(np.unique(labels)) > 1
    if num_convs == 2 and blend == 'linear':
        # Without overlap the tiles' borders see zero padding instead of
        # their neighbours, and the result differs: the test has teeth.
        seg.overlap = 0
        plain = seg(path, str(tmp_path / 'plain'))
        assert (read_labels(plain.label_map) !=
                whole_image_labels(seg.model, image)).any()


def test_background_is_skipped(slide, toy_checkpoint, tmp_path):
    from toy_wsi_model import ToyConvBackbone
    path, _, truth = slide
    seg = segmenter(toy_checkpoint, mpp=0.5, tile=64, overlap=16,
                    tissue_mpp=2.0)
    calls = ToyConvBackbone.calls
    report = seg(path, str(tmp_path)).report
    tiles = report['tiles']
    assert tiles['skipped'] >= 0.15 * tiles['total']
    assert tiles['tissue'] + tiles['skipped'] == tiles['total']
    assert ToyConvBackbone.calls - calls == tiles['tissue']
    labels = read_labels(report['label_map'])
    truth = truth[::2, ::2]
    glass, tissue = truth == 255, labels != 255
    # Glass is left out and tissue kept, up to the thumbnail's 2 um pixels,
    # but for the palest class (fat, class 4), which looks like glass.
    assert (tissue & glass).sum() < 0.01 * glass.sum()
    stained = ~glass & (truth != 4)
    assert (tissue & stained).sum() > 0.97 * stained.sum()
    assert report['tissue_area_mm2'] == pytest.approx(
        tissue.sum() * 0.25e-6)


def test_tissue_detection_on_a_thumbnail():
    image, labels = synthetic_slide(256, 384, seed=3, tissue_fraction=0.4)
    found = detect_tissue(image, mpp=2.0).mask
    glass, stained = labels == 255, (labels != 255) & (labels != 4)
    assert (found & glass).sum() < 0.01 * glass.sum()
    assert (found & stained).sum() > 0.97 * stained.sum()
    glass = np.full((128, 128, 3), 242, np.uint8)
    glass += np.random.default_rng(0).integers(0, 6, glass.shape,
                                               dtype=np.uint8)
    assert not detect_tissue(glass, mpp=8.0).mask.any()
    # Holes in the tissue: a 12 x 12 px one (0.009 mm^2 at 8 um/px, past
    # what the closing fills) is filled, a 40 x 40 px one (0.1 mm^2) stays.
    section = glass.copy()
    section[10:118, 10:118] = (200, 120, 180)
    section[20:32, 20:32] = 242
    section[60:100, 60:100] = 242
    found = detect_tissue(section, mpp=8.0).mask
    assert found[20:32, 20:32].all() and not found[65:95, 65:95].any()
    assert found[12:116, 12:50].all() and not found[:8].any()


def test_report_and_slide_level_evaluation(slide, toy_checkpoint, tmp_path):
    """Areas and per-class Dice / IoU against an independent count on the
    written label map, for a TIFF and an .npy annotation mask."""
    path, _, truth = slide
    mask = truth.copy()
    mask[mask == 4] = 3  # the toy model has 4 classes
    mask[::7, ::5] = 255  # some unannotated pixels
    tif_mask, npy_mask = tmp_path / 'mask.tif', tmp_path / 'mask.npy'
    write_pyramidal_tiff(str(tif_mask), mask, mpp=0.25, levels=2)
    np.save(npy_mask, mask)
    seg = segmenter(toy_checkpoint, mpp=0.5)
    reports = [
        seg(path, str(tmp_path / name), annotation=str(m)).report
        for name, m in (('tif', tif_mask), ('npy', npy_mask))
    ]
    assert reports[0]['evaluation']['classes'] == \
        reports[1]['evaluation']['classes']
    report = reports[0]
    labels = read_labels(report['label_map'])
    # The mask stretched over the half-size label map: pixel centres.
    gt = mask[1::2, 1::2]
    valid = gt != 255
    scores = report['evaluation']['classes']
    for c, name in enumerate(CLASSES):
        pixels = int((labels == c).sum())
        row = report['classes'][c]
        assert (row['class'], row['pixels']) == (name, pixels)
        assert row['area_mm2'] == pytest.approx(pixels * 0.5 * 0.5 * 1e-6)
        assert row['fraction'] == pytest.approx(pixels / (labels != 255).sum())
        p, g = (labels == c) & valid, (gt == c) & valid
        inter = (p & g).sum()
        assert scores[c]['dice'] == pytest.approx(2 * inter /
                                                  (p.sum() + g.sum()))
        assert scores[c]['iou'] == pytest.approx(inter / (p | g).sum())
    assert report['evaluation']['mean_dice'] == pytest.approx(
        np.mean([s['dice'] for s in scores]))
    with open(report['label_map'].replace('labels.tif', 'report.csv')) as f:
        rows = f.read().splitlines()
    assert rows[0] == 'class,index,pixels,area_mm2,fraction,dice,iou'
    assert rows[-1].startswith('tissue,,')


def test_interrupted_run_resumes_to_the_same_output(slide, toy_checkpoint,
                                                    tmp_path, monkeypatch):
    """In process: a run stopped part-way leaves its state; another
    setting is refused; the same settings resume from the unfinished bands
    and give the uninterrupted run's output."""
    import mmimb.apis.wsi_segmenter as module
    path, _, _ = slide
    seg = segmenter(toy_checkpoint, mpp=0.5, batch_size=2)
    reference = seg(path, str(tmp_path / 'ref'))
    calls = []

    def stop_part_way(*args, **kwargs):
        if len(calls) == 7:  # into the last of three tile rows
            raise KeyboardInterrupt
        calls.append(1)
        return predict_logits(*args, **kwargs)

    monkeypatch.setattr(module, 'predict_logits', stop_part_way)
    out = str(tmp_path / 'run')
    with pytest.raises(KeyboardInterrupt):
        seg(path, out)
    monkeypatch.undo()
    assert os.path.isfile(os.path.join(out, '.slide.partial', 'run.json'))
    with pytest.raises(SlideError, match='other settings.*tile: 128 -> 96'):
        segmenter(toy_checkpoint, mpp=0.5, batch_size=2, tile=96)(path, out)
    resumed = seg(path, out)
    np.testing.assert_array_equal(
        read_labels(resumed.label_map), read_labels(reference.label_map))
    assert 0 < resumed.report['tiles']['inferred'] < \
        reference.report['tiles']['inferred']
    assert not os.path.exists(os.path.join(out, '.slide.partial'))


@pytest.mark.slow
def test_killed_cli_run_resumes_identically(slide, toy_checkpoint, tmp_path):
    """tools/infer_wsi.py killed with SIGKILL part-way, then run again,
    writes the label map and report of an uninterrupted run."""
    path, _, _ = slide
    args = [
        'tools/infer_wsi.py', TOY_CONFIG, toy_checkpoint, path, '--mpp',
        '0.5', '--tile', '64', '--overlap', '16', '--batch-size', '2',
        '--device', 'cpu', '--no-progress'
    ]
    env = dict(os.environ, OMP_NUM_THREADS='1', TOY_WSI_DELAY='0.15')
    env['PYTHONPATH'] = os.pathsep.join([str(ROOT), str(TEST_DATA)])
    out = tmp_path / 'killed'
    proc = subprocess.Popen([sys.executable, *args, '--out', str(out)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    bands = out / '.slide.partial' / 'bands'
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and \
            len(list(bands.glob('band_*.zlib'))) < 2:
        time.sleep(0.02)
    assert proc.poll() is None, 'the run ended before it could be killed'
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / 'slide_labels.tif').exists()
    resumed = run_tool(*args, '--out', str(out))
    check_ok(resumed)
    # The same run uninterrupted, in this process on one thread like the
    # command's (OMP_NUM_THREADS=1).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        whole = segmenter(toy_checkpoint, mpp=0.5, tile=64, overlap=16,
                          batch_size=2)(path, str(tmp_path / 'whole'))
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_array_equal(
        read_labels(out / 'slide_labels.tif'), read_labels(whole.label_map))
    reports = [json.loads((out / 'slide_report.json').read_text()),
               whole.report]
    inferred = [r['tiles'].pop('inferred') for r in reports]
    assert inferred[0] < inferred[1]
    for r in reports:
        for key in ('time_s', 'label_map', 'peak_state_bytes'):
            r.pop(key)
    assert reports[0] == reports[1]


def test_bad_inputs_fail_with_one_line(tmp_path, toy_checkpoint):
    image, _ = synthetic_slide(64, 96, seed=4)
    not_slide = tmp_path / 'notes.tif'
    not_slide.write_text('not an image')
    no_mpp = tmp_path / 'no_mpp.tif'
    write_pyramidal_tiff(str(no_mpp), image, mpp=None, levels=1)
    dpi72 = tmp_path / 'dpi72.tif'
    tifffile.imwrite(dpi72, image, photometric='rgb', resolution=(72, 72),
                     resolutionunit='INCH')
    good = tmp_path / 'good.tif'
    write_pyramidal_tiff(str(good), image, mpp=0.5, levels=1)
    cases = [
        (dict(path=not_slide), 'not a whole-slide image'),
        (dict(path=tmp_path / 'absent.svs'), 'does not exist'),
        (dict(path=no_mpp), 'does not record its microns per pixel; pass '
         'the level-0 resolution with --mpp-slide'),
        (dict(path=dpi72), r'352.778 x 352.778 um/px at level 0 \(from its '
         r'TIFF resolution tags\).*--mpp-slide'),
        (dict(path=good, mpp=0.25), r'--mpp 0.25 is finer than the finest '
         r'level .* \(0.5 x 0.5 um/px\)'),
    ]
    from mmimb.apis.wsi_segmenter import check_slide
    for kwargs, message in cases:
        with pytest.raises(SlideError, match=message):
            check_slide(str(kwargs['path']), kwargs.get('mpp', 0.5))
    check_slide(str(no_mpp), 0.5, mpp_slide=0.5)
    with pytest.raises(SlideError, match='annotation mask .* is 10 x 10, '
                       'not the aspect ratio'):
        np.save(tmp_path / 'square.npy', np.zeros((10, 10), np.uint8))
        segmenter(toy_checkpoint, mpp=0.5)(
            str(good), str(tmp_path / 'o'),
            annotation=str(tmp_path / 'square.npy'))
    wrong = tmp_path / 'wrong.pth'
    model, _ = init_segmentor(TOY_CONFIG,
                              cfg_options={'model.decode_head.num_classes': 3})
    torch.save(dict(state_dict=model.state_dict()), wrong)
    with pytest.raises(ConfigError, match='does not fit the model of the '
                       'config: size mismatch for decode_head.conv_seg'):
        segmenter(str(wrong))
    with pytest.raises(ConfigError, match='cannot read checkpoint'):
        segmenter(str(not_slide))
    # From the command line: exit status 2 and one line, no traceback.
    result = run_tool('tools/infer_wsi.py', TOY_CONFIG, toy_checkpoint,
                      no_mpp, '--out', tmp_path / 'cli')
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), lines
    assert str(no_mpp) in lines[0] and '--mpp-slide' in lines[0]


def test_resampled_reads_agree_with_one_whole_read(slide):
    path, _, _ = slide
    with open_slide(path) as wsi:
        view = SlideView(wsi, mpp=0.4)
        assert view.resampled and view.level == 0
        whole = view.read(0, 0, view.width, view.height)
        rng = np.random.default_rng(0)
        for _ in range(20):
            w, h = rng.integers(1, 200, 2)
            x, y = rng.integers(0, view.width - w), rng.integers(
                0, view.height - h)
            np.testing.assert_array_equal(view.read(x, y, w, h),
                                          whole[y:y + h, x:x + w])
        # The same triangle filter as Pillow's antialiased bilinear, up to
        # Pillow's 8-bit intermediate rounding; at the border the view
        # takes white glass beyond the slide where Pillow narrows the filter.
        from PIL import Image
        level0 = wsi.read(0, 0, 0, 1152, 512)
        pil = np.asarray(Image.fromarray(level0).resize(
            (view.width, view.height), Image.BILINEAR)).astype(int)
        assert np.abs(pil - whole)[2:-2, 2:-2].max() <= 1
        exact = SlideView(wsi, mpp=0.5)
        assert not exact.resampled and exact.level == 1
        thumb = exact.coarser(16)
        assert (thumb.width, thumb.height) == (36, 16)
        # Within the tolerance a level is used as it is, with its own mpp.
        near = SlideView(wsi, mpp=0.26)
        assert not near.resampled
        assert (near.mpp_x, near.width) == (0.25, 1152)
        assert SlideView(wsi, mpp=0.27).resampled


def test_ome_tiff_pyramid_with_physical_size(tmp_path):
    image, _ = synthetic_slide(128, 192, seed=5)
    path = tmp_path / 'slide.ome.tif'
    with tifffile.TiffWriter(path) as tif:
        options = dict(tile=(64, 64), photometric='rgb', compression='zlib')
        tif.write(image, subifds=1, metadata={
            'axes': 'YXS', 'PhysicalSizeX': 0.3, 'PhysicalSizeY': 0.3,
            'PhysicalSizeXUnit': '\u00b5m', 'PhysicalSizeYUnit': '\u00b5m'},
            **options)
        tif.write(image[::2, ::2], subfiletype=1, **options)
    with open_slide(str(path)) as wsi:
        assert wsi.backend == 'tifffile'
        assert [(lv.width, lv.mpp_x) for lv in wsi.levels] == [(192, 0.3),
                                                               (96, 0.6)]
        np.testing.assert_array_equal(wsi.read(1, 10, 5, 40, 30),
                                      image[::2, ::2][5:30, 10:40])


@needs_openslide
def test_openslide_reader_reads_what_tifffile_reads(slide, toy_checkpoint,
                                                    tmp_path):
    path, _, _ = slide
    with open_slide(path, 'openslide') as a, open_slide(path, 'tifffile') as b:
        assert a.levels == b.levels
        for level, box in itertools.product((0, 1), ((0, 0, 100, 60),
                                                     (37, 11, 200, 250))):
            np.testing.assert_array_equal(a.read(level, *box),
                                          b.read(level, *box))
    reports = [
        segmenter(toy_checkpoint, mpp=0.5)(path, str(tmp_path / r),
                                           reader=r).report
        for r in ('openslide', 'tifffile')
    ]
    assert reports[0]['reader'] == 'openslide'
    np.testing.assert_array_equal(read_labels(reports[0]['label_map']),
                                  read_labels(reports[1]['label_map']))


def test_bfloat16_autocast_on_cpu(tmp_path, toy_checkpoint):
    image, _ = synthetic_slide(96, 128, seed=6, tissue_fraction=0.9)
    path = str(tmp_path / 'amp.tif')
    write_pyramidal_tiff(path, image, mpp=0.5, levels=1)
    runs = [
        segmenter(toy_checkpoint, mpp=0.5, amp=amp, tile=64, overlap=16,
                  tissue='none')(path, str(tmp_path / str(amp)))
        for amp in (False, True)
    ]
    fp32, bf16 = (read_labels(r.label_map) for r in runs)
    assert runs[1].report['amp'] is True
    # bfloat16 keeps 8 bits of mantissa: near-ties flip, the rest agrees.
    assert 0 < (fp32 != bf16).mean() < 0.1


def test_channel_argmax_is_argmax_with_its_ties():
    from mmimb.apis.tiling import channel_argmax
    x = torch.randint(0, 3, (5, 40, 30)).float()  # many ties
    np.testing.assert_array_equal(channel_argmax(x).numpy(),
                                  x.argmax(0).numpy())


def test_stitcher_blends_exactly_and_bounds_its_state():
    """Random layouts, tile sizes, overlaps and skipped tiles against the
    whole map: tiles carry the map's logits plus garbage within the margin
    of every inner edge; linear blending must discard it exactly."""
    rng = np.random.default_rng(0)
    for trial in range(40):
        height, width = (int(v) for v in rng.integers(5, 200, 2))
        tile = int(rng.integers(4, 70))
        overlap = int(rng.integers(0, tile // 2 + 1))
        classes = int(rng.integers(1, 5))
        grid = TileGrid(height, width, tile, overlap)
        truth = torch.from_numpy(
            rng.standard_normal((classes, height, width)).astype(np.float32))
        every = trial % 2 == 0
        processed = np.ones(grid.shape, bool) if every else \
            rng.random(grid.shape) < 0.6
        out = np.full((height, width), 255, np.uint8)

        def on_band(j, a, b, labels):
            out[a:b] = labels

        stitcher = Stitcher(grid, processed, on_band, threshold=0.0)
        m = stitcher.margin
        for r, c in zip(*np.nonzero(processed)):
            y0, x0 = grid.ys[r], grid.xs[c]
            t = truth[:, y0:y0 + grid.tile_h, x0:x0 + grid.tile_w].clone()
            if m:
                if y0 > 0:
                    t[:, :m] = 100 * torch.randn_like(t[:, :m])
                if x0 > 0:
                    t[:, :, :m] = 100 * torch.randn_like(t[:, :, :m])
                if y0 + grid.tile_h < height:
                    t[:, -m:] = 100 * torch.randn_like(t[:, -m:])
                if x0 + grid.tile_w < width:
                    t[:, :, -m:] = 100 * torch.randn_like(t[:, :, -m:])
            stitcher.add(int(r), int(c), t)
        assert stitcher.done == set(range(len(stitcher.bands)))
        covered = np.zeros((height, width), bool)
        for r, c in zip(*np.nonzero(processed)):
            covered[grid.ys[r]:grid.ys[r] + grid.tile_h,
                    grid.xs[c]:grid.xs[c] + grid.tile_w] = True
        assert (out[~covered] == 255).all() and (out[covered] != 255).all()
        if every:
            ref = truth[0] > 0 if classes == 1 else truth.argmax(0)
            np.testing.assert_array_equal(out, ref.numpy().astype(np.uint8))
        assert stitcher.peak_state_bytes <= stitcher.state_bound(classes)
    # A wide map holds the overlap strips, not the map.
    grid = TileGrid(500, 5000, 100, 20)
    stitcher = Stitcher(grid, np.ones(grid.shape, bool), lambda *a: None)
    for r, c in itertools.product(*map(range, grid.shape)):
        stitcher.add(r, c, torch.zeros(3, 100, 100))
    assert stitcher.peak_state_bytes <= stitcher.state_bound(3) < \
        4 * 3 * 500 * 5000 / 4
