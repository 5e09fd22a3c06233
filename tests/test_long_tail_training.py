"""Every method of the long-tail toolbox trains (or tests) from its real
config on a CIFAR-LT-like folder fixture, shrunk to ResNet-8 and two
epochs: LDAM-DRW, CE-DRW, the class-balanced and focal losses, the three
re-balancing samplers, the BALMS protocol, and the decoupled second stage
(cRT, LWS) and test-time adjustments (tau-norm, post-hoc logit adjustment)
from a first-stage checkpoint."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmpretrain.datasets.categories import CIFAR100_CATEGORIES

from cifar_folders import write_cifar_folders
from mmimb.engine import build_runner
from mmimb.models import ClassBalancedLoss

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / 'configs'

# serialize_data=False: mmengine's serialisation runs gc.collect(), which
# costs most of a toy run inside a long pytest process.
TINY = """
model = dict(backbone=dict(depth=8))
loader = dict(num_workers=0, persistent_workers=False)
train_dataloader = dict(
    batch_size=8,
    dataset=dict(imbalance_factor=4, max_per_class=8,
                 dataset=dict(serialize_data=False)),
    **loader)
val_dataloader = dict(batch_size=16, dataset=dict(serialize_data=False),
                      **loader)
test_dataloader = val_dataloader
val_evaluator = dict(thresholds=(6, 3))
test_evaluator = val_evaluator
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True,
                        begin=0, end={epochs})]
train_cfg = dict(_delete_=True, by_epoch=True, max_epochs={epochs},
                 val_interval={epochs})
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval={epochs}))
"""
TINY_ITERS = """
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False,
                        begin=0, end=4)]
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=4,
                 val_interval=4)
default_hooks = dict(checkpoint=dict(interval=4))
"""


@pytest.fixture(scope='module')
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp('lt')
    return dict(
        cifar10=write_cifar_folders(root / 'cifar10'),
        cifar100=write_cifar_folders(
            root / 'cifar100', train_per_class=8, test_per_class=1,
            classes=CIFAR100_CATEGORIES))


def tiny_config(tmp_path, config, data_root, body='', epochs=1,
                iterations=False, options=None):
    path = tmp_path / f'tiny_{Path(config).stem}.py'
    shrink = TINY.format(epochs=epochs) + (TINY_ITERS if iterations else '')
    path.write_text(f'_base_ = [{str(CONFIGS / config)!r}]\n{shrink}\n'
                    f'{body}\n')
    cfg = Config.fromfile(str(path))
    cfg.merge_from_dict(options or {})
    cfg.train_dataloader.dataset.dataset.data_root = str(data_root)
    for key in ('val_dataloader', 'test_dataloader'):
        cfg[key].dataset.data_root = str(data_root)
    cfg.work_dir = str(tmp_path / 'work')
    cfg.launcher = 'none'
    return cfg


def train(cfg):
    runner = build_runner(cfg, 'train')
    runner.train()
    return runner


def log_text(runner):
    return Path(runner.log_dir, f'{runner.timestamp}.log').read_text()


def cb_losses(runner):
    return [m for m in runner.model.modules()
            if isinstance(m, ClassBalancedLoss)]


# Config options of the toy run, and its epochs (2 where the method
# changes between epochs).
DRW = dict(custom_hooks=[dict(type='DRWHook', start_epoch=1)])
JOINT = {
    'ldam/ldam-drw_resnet32_1xb128-200e_cifar10-lt-if100.py': (DRW, 2),
    'ldam/ce-drw_resnet32_1xb128-200e_cifar10-lt-if100.py': (DRW, 2),
    'class_balanced/cb-ce_resnet32_1xb128-200e_cifar10-lt-if100.py': ({}, 1),
    'class_balanced/cb-focal_resnet32_1xb128-200e_cifar10-lt-if100.py':
    ({}, 1),
    'focal/focal_resnet32_1xb128-200e_cifar10-lt-if100.py': ({}, 1),
    'decoupling/ce-cbs_resnet32_1xb128-200e_cifar10-lt-if100.py': ({}, 1),
    'decoupling/ce-sqrts_resnet32_1xb128-200e_cifar10-lt-if100.py': ({}, 1),
    'decoupling/ce-pbs_resnet32_1xb128-200e_cifar10-lt-if100.py':
    ({'train_dataloader.sampler.total_epochs': 2}, 2),
}


@pytest.mark.parametrize('config', list(JOINT), ids=lambda c: Path(c).stem)
def test_joint_training_methods(config, folders, tmp_path):
    options, epochs = JOINT[config]
    cfg = tiny_config(tmp_path, config, folders['cifar10'], epochs=epochs,
                      options=options)
    runner = train(cfg)
    assert Path(cfg.work_dir, f'epoch_{epochs}.pth').is_file()
    log = log_text(runner)
    assert 'lt/balanced_accuracy' in log and 'lt/ece' in log
    assert 'loss: nan' not in log
    head = runner.model.head
    if 'drw' in config:
        assert 'class-balanced weights off from epoch 0' in log
        assert 'class-balanced weights on from epoch 1' in log
        assert [m.enabled for m in cb_losses(runner)] == [True]
    if 'ldam-drw_' in config:
        assert type(head).__name__ == 'CosineLinearClsHead'
        assert type(head.loss_module.loss).__name__ == 'LDAMLoss'
    if 'cb-' in config:
        assert cb_losses(runner)[0].normalize == 'mean'
    sampler = runner.train_dataloader.sampler
    expected = {'cbs': 'ClassBalancedSampler', 'sqrts': 'SquareRootSampler',
                'pbs': 'ProgressivelyBalancedSampler'}
    for key, name in expected.items():
        if f'ce-{key}_' in config:
            assert type(sampler).__name__ == name
    if 'ce-cbs_' in config:
        assert len(sampler) == 8 * 10  # n_max x C draws per epoch
    if 'ce-pbs_' in config:
        # Class-balanced in the last of the two epochs.
        assert sampler.epoch == 1 and sampler.class_probs().tolist() == \
            pytest.approx([0.1] * 10)


def test_balms_protocol_trains_on_cifar100_lt(folders, tmp_path):
    cfg = tiny_config(
        tmp_path, 'ccar/ccar-bs_resnet32_1xb512-13k-balms_cifar100-lt-if50.py',
        folders['cifar100'], iterations=True)
    runner = train(cfg)
    assert Path(cfg.work_dir, 'iter_4.pth').is_file()
    types = [t['type'] for t in cfg.train_dataloader.dataset.dataset.pipeline]
    assert 'CIFAR10AutoAugment' in types and 'Cutout' in types
    assert 'lt/top1' in log_text(runner)


@pytest.fixture(scope='module')
def stage1(folders, tmp_path_factory):
    """The toy cross-entropy model the second-stage configs start from."""
    tmp_path = tmp_path_factory.mktemp('stage1')
    cfg = tiny_config(tmp_path,
                      'ccar/ce_resnet32_1xb128-200e_cifar10-lt-if100.py',
                      folders['cifar10'], epochs=2)
    train(cfg)
    path = Path(cfg.work_dir, 'epoch_2.pth')
    return path, torch.load(path, map_location='cpu')['state_dict']


def changed(state, reference, prefix):
    keys = [k for k in reference if k.startswith(prefix)]
    assert keys
    return [k for k in keys if not torch.equal(state[k], reference[k])]


def test_crt_retrains_a_fresh_classifier_on_frozen_features(
        stage1, folders, tmp_path):
    checkpoint, reference = stage1
    cfg = tiny_config(
        tmp_path, 'decoupling/crt_resnet32_1xb128-10e_cifar10-lt-if100.py',
        folders['cifar10'])
    cfg.model.backbone.init_cfg.checkpoint = str(checkpoint)
    runner = train(cfg)
    state = runner.model.state_dict()
    assert type(runner.train_dataloader.sampler).__name__ == \
        'ClassBalancedSampler'
    # Frozen backbone weights (batch-norm statistics follow the balanced
    # batches, as the authors' code), a re-trained classifier.
    frozen = changed(state, reference, 'backbone.')
    assert frozen and all('running_' in k or 'num_batches' in k
                          for k in frozen)
    assert changed(state, reference, 'head.') == ['head.fc.weight',
                                                  'head.fc.bias']


def test_lws_trains_only_the_scales(stage1, folders, tmp_path):
    checkpoint, reference = stage1
    cfg = tiny_config(
        tmp_path, 'decoupling/lws_resnet32_1xb128-5e_cifar10-lt-if100.py',
        folders['cifar10'], body=f'load_from = {str(checkpoint)!r}')
    runner = train(cfg)
    state = runner.model.state_dict()
    assert not changed(state, reference, 'head.fc.')
    assert not [k for k in changed(state, reference, 'backbone.')
                if 'running_' not in k and 'num_batches' not in k]
    assert not torch.equal(state['head.scales'], torch.ones(10))


@pytest.mark.parametrize('config', [
    'decoupling/tau-norm_resnet32_1xb128-200e_cifar10-lt-if100.py',
    'logit_adjustment/la-posthoc_resnet32_1xb128-200e_cifar10-lt-if100.py',
],
                         ids=lambda c: Path(c).stem)
def test_test_time_adjustments_of_the_first_stage(config, stage1, folders,
                                                  tmp_path):
    checkpoint, _ = stage1
    cfg = tiny_config(tmp_path, config, folders['cifar10'])
    cfg.load_from = str(checkpoint)
    runner = build_runner(cfg, 'test')
    metrics = runner.test()
    assert {'lt/top1', 'lt/few_shot_acc', 'lt/ece'} <= set(metrics)
    if 'posthoc' in config:
        prior = runner.model.head.log_prior.exp()
        assert prior.tolist() == pytest.approx(
            [n / 40 for n in [8, 6, 5, 5, 4, 3, 3, 2, 2, 2]])
