"""GradientConflictHook in real mmpretrain and mmseg training runs: training
is bit-identical with and without it, it logs and saves what it computed,
and its matrix is the library's on the same batch."""
import json
import math
import os
import os.path as osp
import random

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmimb.analysis import gradient_conflict
from mmimb.engine.gradient_probe import (module_loss, preserved_rng,
                                         probe_batch)
from mmimb.engine.hooks import GradientConflictHook
from mmimb.engine.launch import build_runner

CONFIGS = osp.join(osp.dirname(__file__), 'data', 'configs')


@pytest.fixture(scope='module')
def image_folder(tmp_path_factory):
    """Four classes of 16 px images, one folder per class."""
    root = tmp_path_factory.mktemp('images')
    rng = np.random.default_rng(0)
    for c in range(4):
        os.makedirs(root / f'class{c}')
        for i in range(5):
            img = (rng.random((16, 16, 3)) * 60 + c * 50).astype(np.uint8)
            cv2.imwrite(str(root / f'class{c}' / f'{i}.png'), img)
    return str(root)


def cls_config(image_folder):
    cfg = Config.fromfile(osp.join(CONFIGS, 'tiny_cls_folder.py'))
    cfg.train_dataloader.dataset.data_root = image_folder
    return cfg


def seg_config(tiny_seg_config):
    cfg = Config.fromfile(str(tiny_seg_config))
    # Random flips make the run depend on the NumPy random stream.
    cfg.train_dataloader.dataset.pipeline = [
        dict(type='RandomFlip', prob=0.5, direction='horizontal'),
        dict(type='PackSegInputs')
    ]
    cfg.default_hooks.visualization = dict(type='SegVisualizationHook')
    return cfg


def train(cfg, work_dir, hook=None):
    cfg.work_dir = str(work_dir)
    cfg.launcher = 'none'
    if hook is not None:
        cfg.custom_hooks = [hook]
    runner = build_runner(cfg, 'train')
    runner.train()
    return runner


def assert_same_weights(a, b):
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


@pytest.fixture(scope='module')
def cls_baseline(image_folder, tmp_path_factory):
    return train(cls_config(image_folder), tmp_path_factory.mktemp('base'))


def saved(runner, iteration):
    path = osp.join(runner.log_dir, 'gradient_conflict',
                    f'iter_{iteration}.npz')
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def test_classification_training_bit_identical(cls_baseline, image_folder,
                                               tmp_path):
    runner = train(
        cls_config(image_folder), tmp_path,
        dict(type='GradientConflictHook', interval=2, norm_stats='running'))
    assert_same_weights(cls_baseline, runner)
    folder = osp.join(runner.log_dir, 'gradient_conflict')
    assert sorted(os.listdir(folder)) == [
        'iter_0.npz', 'iter_0.png', 'iter_2.npz', 'iter_2.png'
    ]
    last = saved(runner, 2)
    assert last['matrix'].shape == (4, 4)
    assert list(last['class_names']) == [f'class{c}' for c in range(4)]
    hub = runner.message_hub
    for key in ('mean_cosine', 'mean_negative_cosine', 'conflict_fraction'):
        assert hub.get_scalar(f'train/gcm/{key}').current() == \
            pytest.approx(float(last[key]))
    with open(osp.join(runner.log_dir, 'vis_data', 'scalars.json')) as f:
        logged = [json.loads(line) for line in f]
    assert any('gcm/conflict_fraction' in line for line in logged)


def test_fixed_probe_bit_identical_and_reused(cls_baseline, image_folder,
                                              tmp_path):
    """The fixed probe draws batches through the augmenting pipeline (NumPy
    random stream) once; the training must not notice."""
    runner = train(
        cls_config(image_folder), tmp_path,
        dict(type='GradientConflictHook', interval=3, probe='fixed',
             num_probe_batches=2, save_heatmaps=False, norm_stats='batch'))
    assert_same_weights(cls_baseline, runner)
    first, second = saved(runner, 0), saved(runner, 3)
    assert first['counts'].sum() == 12
    np.testing.assert_array_equal(first['counts'], second['counts'])


def test_balanced_probe_holds_every_class(cls_baseline, image_folder,
                                          tmp_path):
    runner = train(
        cls_config(image_folder), tmp_path,
        dict(type='GradientConflictHook',
             interval=3,
             probe='balanced',
             samples_per_class=3,
             save_heatmaps=False,
             norm_stats='running'))
    assert_same_weights(cls_baseline, runner)
    for iteration in (0, 3):
        np.testing.assert_array_equal(saved(runner, iteration)['counts'],
                                      [3, 3, 3, 3])


def test_balanced_probe_refuses_segmentation(tiny_seg_config, tmp_path):
    cfg = seg_config(tiny_seg_config)
    with pytest.raises(ValueError, match='classification dataset'):
        train(cfg, tmp_path, dict(type='GradientConflictHook',
                                  probe='balanced'))


def test_hook_matrix_is_the_library_matrix(image_folder, tmp_path):
    cfg = cls_config(image_folder)
    cfg.work_dir = str(tmp_path)
    cfg.launcher = 'none'
    runner = build_runner(cfg, 'train')
    hook = GradientConflictHook(interval=1, norm_stats='running')
    hook.before_train(runner)
    loader = iter(runner.train_dataloader)
    batch = next(loader)
    hook.before_train_iter(runner, 0, batch)
    model = runner.model
    probe = probe_batch(model, batch)
    expected = gradient_conflict(model, probe.inputs, probe.targets,
                                 mode='loop', num_classes=4)
    np.testing.assert_allclose(
        saved(runner, 0)['matrix'], expected.matrix.numpy(), rtol=1e-5,
        atol=1e-6)


def test_segmentation_training_bit_identical(tiny_seg_config, tmp_path):
    baseline = train(seg_config(tiny_seg_config), tmp_path / 'base')
    runner = train(
        seg_config(tiny_seg_config), tmp_path / 'hook',
        dict(type='GradientConflictHook', interval=2, num_probe_batches=2))
    assert_same_weights(baseline, runner)
    result = saved(runner, 2)
    assert result['matrix'].shape == (5, 5)
    assert 'decode_head.conv_seg' in list(result['layer_names'])
    # Iteration 0 has one batch of 4 images of 32 x 32 pixels to look at,
    # iteration 2 the batches of iterations 1 and 2.
    assert saved(runner, 0)['counts'].sum() == 4 * 32 * 32
    assert result['counts'].sum() == 2 * 4 * 32 * 32


@pytest.mark.parametrize('kwargs, message', [
    (dict(interval=0), 'interval'),
    (dict(probe='random'), 'probe'),
    (dict(num_probe_batches=0), 'num_probe_batches'),
    (dict(samples_per_class=0), 'samples_per_class'),
    (dict(mode='exact'), 'mode'),
    (dict(begin=-1), 'begin'),
    (dict(norm_stats='eval'), 'norm_stats'),
    (dict(stage_depth=0), 'stage_depth'),
    (dict(loss_fn='focal'), 'loss_fn'),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GradientConflictHook(**kwargs)


class _TwoClassSet(torch.utils.data.Dataset):
    """Samples 0, 1 of class 0 and 2, 3 of class 1; no images to load."""

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return i

    def get_gt_labels(self):
        return np.array([0, 0, 1, 1])


@pytest.mark.parametrize('rank', [0, 1, 2, 3, 4])
def test_balanced_probe_too_small_for_the_world_fails_on_every_rank(
        rank, monkeypatch):
    """2 samples for 5 processes: ranks 0 and 1 would get a batch and block
    in all_reduce while ranks 2-4 fail; every rank must refuse up front."""
    from mmimb.engine.hooks import gradient_conflict_hook as module
    monkeypatch.setattr(module, 'get_dist_info', lambda: (rank, 5))
    loader = torch.utils.data.DataLoader(
        _TwoClassSet(), batch_size=2, collate_fn=list)
    hook = GradientConflictHook(probe='balanced', samples_per_class=1)
    with pytest.raises(ValueError, match='2 samples.*5 processes'):
        hook._draw_balanced(loader)


def test_balanced_probe_splits_the_samples_over_ranks(monkeypatch):
    from mmimb.engine.hooks import gradient_conflict_hook as module
    loader = torch.utils.data.DataLoader(
        _TwoClassSet(), batch_size=2, collate_fn=list)
    hook = GradientConflictHook(probe='balanced', samples_per_class=2)
    seen = []
    for rank in range(2):
        monkeypatch.setattr(module, 'get_dist_info', lambda: (rank, 2))
        batches = hook._draw_balanced(loader)
        assert len(batches) == 1
        seen.extend(batches[0])
    assert sorted(seen) == [0, 1, 2, 3]


def log_text(runner):
    with open(osp.join(runner.log_dir, f'{runner.timestamp}.log')) as f:
        return f.read()


def test_hook_options_scalars_visualizer_and_coverage(cls_baseline,
                                                      image_folder, tmp_path):
    runner = train(
        cls_config(image_folder), tmp_path,
        dict(type='GradientConflictHook', interval=2, begin=1,
             classes=[3, 0, 1, 2], norm_stats='running', log_per_class=True,
             log_per_layer=True))
    assert_same_weights(cls_baseline, runner)
    folder = osp.join(runner.log_dir, 'gradient_conflict')
    assert sorted(os.listdir(folder)) == [
        'iter_1.npz', 'iter_1.png', 'iter_3.npz', 'iter_3.png'
    ]
    last = saved(runner, 3)
    assert last['classes'].tolist() == [3, 0, 1, 2]
    assert list(last['class_names']) == ['class3', 'class0', 'class1',
                                         'class2']
    assert str(last['loss']) == 'CrossEntropyLoss'
    assert float(last['coverage']) == 1.0 and len(last['skipped_names']) == 0
    present = last['present']
    assert np.isfinite(last['weighted_class_conflict'][present]).all()
    images = os.listdir(osp.join(runner.log_dir, 'vis_data', 'vis_image'))
    assert sorted(images) == ['gcm_heatmap_1.png', 'gcm_heatmap_3.png']
    with open(osp.join(runner.log_dir, 'vis_data', 'scalars.json')) as f:
        logged = [json.loads(line) for line in f]
    keys = {k for line in logged for k in line}
    assert 'gcm/stage/backbone.layer1/conflict_fraction' in keys
    assert 'gcm/layer/head.fc/mean_cosine' in keys
    assert 'gcm/weighted_conflict_0' in keys
    assert all(math.isfinite(v) for line in logged for v in line.values()
               if isinstance(v, float))
    assert log_text(runner).count('trainable parameters analysed') == 1


def test_batchnorm_guard_waits_for_warm_statistics(image_folder, tmp_path):
    cfg = cls_config(image_folder)
    # Momentum 0.9: the initial statistics weigh 0.1 ** t, below 1% after
    # 2 batches.
    cfg.model.backbone.norm_cfg = dict(type='BN', momentum=0.9)
    runner = train(cfg, tmp_path,
                   dict(type='GradientConflictHook', interval=1,
                        save_heatmaps=False))
    folder = osp.join(runner.log_dir, 'gradient_conflict')
    assert sorted(os.listdir(folder)) == ['iter_2.npz', 'iter_3.npz']
    text = log_text(runner)
    assert text.count('not analysing at iteration 0') == 1
    assert 'not analysing at iteration 1' not in text


def test_refusals_warn_once_and_training_goes_on(cls_baseline, image_folder,
                                                 tmp_path):
    runner = train(
        cls_config(image_folder), tmp_path,
        dict(type='GradientConflictHook', interval=1, classes=[0, 99],
             norm_stats='running'))
    assert_same_weights(cls_baseline, runner)
    assert not osp.exists(osp.join(runner.log_dir, 'gradient_conflict'))
    assert log_text(runner).count('skipping the analysis') == 1


def analyse_once(runner, batch, **kwargs):
    hook = GradientConflictHook(norm_stats='running', save_heatmaps=False,
                                **kwargs)
    hook.before_train(runner)
    hook._recent.append(batch)
    return hook.analyse(runner)


def test_hook_uses_the_model_loss(image_folder, tmp_path):
    """Label smoothing changes the gradients' directions: the hook's matrix
    is that of the model's loss by default, of cross-entropy on request."""
    cfg = cls_config(image_folder)
    cfg.model.head.loss = dict(type='LabelSmoothLoss', label_smooth_val=0.5,
                               mode='original')
    cfg.work_dir = str(tmp_path)
    cfg.launcher = 'none'
    runner = build_runner(cfg, 'train')
    batch = next(iter(runner.train_dataloader))
    model = runner.model
    probe = probe_batch(model, batch)
    smooth = gradient_conflict(model, probe.inputs, probe.targets,
                               mode='loop',
                               loss_fn=module_loss(model.head.loss_module)[0])
    plain = gradient_conflict(model, probe.inputs, probe.targets,
                              mode='loop')
    assert (smooth.matrix - plain.matrix).abs().nan_to_num().max() > 1e-3
    for loss_fn, expected in ((None, smooth), ('cross_entropy', plain),
                              (dict(type='mmpretrain.CrossEntropyLoss'),
                               plain)):
        result = analyse_once(runner, batch, loss_fn=loss_fn)
        torch.testing.assert_close(result.matrix, expected.matrix,
                                   rtol=1e-5, atol=1e-6, equal_nan=True)


def test_a_loss_that_is_not_per_pixel_falls_back_to_cross_entropy(
        tiny_seg_config, tmp_path):
    cfg = seg_config(tiny_seg_config)
    cfg.model.decode_head.loss_decode = dict(type='SegDiceLoss')
    cfg.work_dir = str(tmp_path)
    cfg.launcher = 'none'
    runner = build_runner(cfg, 'train')
    batch = next(iter(runner.train_dataloader))
    result = analyse_once(runner, batch)
    probe = probe_batch(runner.model, batch)
    expected = gradient_conflict(runner.model, probe.inputs, probe.targets,
                                 **probe.kwargs())
    torch.testing.assert_close(result.matrix, expected.matrix, rtol=1e-5,
                               atol=1e-6, equal_nan=True)
    # Every layer of the MiT (attention and norms included) is analysed.
    assert result.coverage.fraction == 1.0


def test_preserved_rng_restores_python_numpy_and_torch():

    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()

    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    expected = draw()
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    with preserved_rng():
        draw()
    assert draw() == expected


def test_analysis_leaves_the_random_streams_as_they_were(
        image_folder, tmp_path, monkeypatch):
    """Whatever the analysis draws (a pipeline, dropout, a sampler), the
    training's Python, NumPy and torch streams continue unchanged."""
    from mmimb.engine import gradient_probe as module
    cfg = cls_config(image_folder)
    cfg.work_dir = str(tmp_path)
    cfg.launcher = 'none'
    runner = build_runner(cfg, 'train')
    batch = next(iter(runner.train_dataloader))
    real = module.probe_class_gradients

    def drawing(*args, **kwargs):
        random.random(), np.random.rand(), torch.rand(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, 'probe_class_gradients', drawing)
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    expected = random.random(), np.random.rand(), torch.rand(1).item()
    random.setstate(states[0])
    np.random.set_state(states[1])
    torch.set_rng_state(states[2])
    assert analyse_once(runner, batch) is not None
    assert (random.random(), np.random.rand(),
            torch.rand(1).item()) == expected


def test_no_nan_reaches_the_logs(image_folder, tmp_path):
    """A probe with one class has no pair to summarise and no other class
    to conflict with: nothing is logged rather than NaN."""
    cfg = cls_config(image_folder)
    cfg.work_dir = str(tmp_path)
    cfg.launcher = 'none'
    runner = build_runner(cfg, 'train')
    batch = next(iter(runner.train_dataloader))
    for sample in batch['data_samples']:
        sample.set_gt_label(0)
    result = analyse_once(runner, batch, log_per_class=True,
                          log_per_layer=True)
    assert math.isnan(result.summary()['mean_cosine'])
    logged = {k: v for k, v in runner.message_hub.log_scalars.items()
              if k.startswith('train/gcm/')}
    assert all(math.isfinite(v.current()) for v in logged.values())
    path = osp.join(runner.log_dir, 'vis_data', 'scalars.json')
    if osp.exists(path):
        with open(path) as f:
            assert 'NaN' not in f.read()
