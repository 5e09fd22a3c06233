"""The protocols of the long-tailed configs, pinned: schedule, optimizer,
batch, imbalance factor, subset seed, augmentation, loss and its
parameters (pivot, tau, beta, margins), sampler, hooks and shot-group
thresholds of every config are compared with the values its source
publishes (the comments name them), so that changing any of them fails
here. Also the CIFAR-10 AutoAugment policy against DeepVoltaire's table."""
from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config

from mmimb.datasets import CIFAR10_POLICY

ROOT = Path(__file__).resolve().parents[1]


def strip_scope(node):
    if isinstance(node, dict):
        return {k: strip_scope(v) for k, v in node.items() if k != '_scope_'}
    if isinstance(node, (list, tuple)):
        return [strip_scope(v) for v in node]
    return node


def protocol(cfg: Config) -> dict:
    """What defines a config's experiment, in plain containers."""
    cfg = strip_scope(cfg.to_dict())
    train = cfg['train_dataloader']
    dataset = train['dataset']
    subset = None
    if dataset['type'] == 'LongTailedDataset':
        subset = dict(imbalance_factor=dataset['imbalance_factor'],
                      seed=dataset['seed'])
        dataset = dataset['dataset']
    loop = {k: v for k, v in cfg['train_cfg'].items() if k != 'val_interval'}
    model = cfg['model']
    return dict(
        optimizer=cfg['optim_wrapper']['optimizer'],
        schedulers=cfg['param_scheduler'],
        loop=loop,
        batch_size=train['batch_size'],
        sampler=train['sampler'],
        subset=subset,
        data=dict(type=dataset['type'], root=dataset['data_root']),
        train_pipeline=dataset['pipeline'],
        test_pipeline=cfg['test_dataloader']['dataset']['pipeline'],
        normalization=cfg['data_preprocessor'],
        model=dict(type=model['type'], backbone=model['backbone'],
                   head=model['head']),
        hooks=cfg.get('custom_hooks', []),
        load_from=cfg.get('load_from'),
        evaluator=cfg['test_evaluator'],
        seed=cfg.get('randomness', {}).get('seed'),
    )


# LDAM-DRW cifar_train.py: SGD lr 0.1, momentum 0.9, weight decay 2e-4,
# batch 128, 200 epochs, lr * epoch / 5 for 5 epochs, x0.01 after epoch
# 160 and again after 180.
SGD_CIFAR = dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=2e-4)
SCHEDULE_200E = [
    dict(type='LinearLR', start_factor=0.2, by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
    dict(type='MultiStepLR', by_epoch=True, milestones=[160, 180],
         gamma=0.01),
]
LOOP_200E = dict(by_epoch=True, max_epochs=200)
SHUFFLE = dict(type='DefaultSampler', shuffle=True)
# LDAM-DRW's augmentation and normalisation (0.4914, 0.4822, 0.4465) /
# (0.2023, 0.1994, 0.2010), times 255.
CIFAR_AUG = [
    dict(type='RandomCrop', crop_size=32, padding=4),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
LOAD = [dict(type='LoadImageFromFile')]
CIFAR_NORM = dict(mean=[125.307, 122.961, 113.8575],
                  std=[51.5865, 50.847, 51.255])
RESNET32 = dict(type='CifarResNet', depth=32, shortcut='A')
CE = dict(type='CrossEntropyLoss', loss_weight=1.0)
# Menon et al. 2021, tau = 1; Balanced Softmax (Ren et al. 2020).
LA = dict(type='LogitAdjustedLoss', class_freq='auto', tau=1.0)
BS = dict(type='BalancedSoftmaxLoss', class_freq='auto')
# CCAR: pivot 0.75, base e, dual phase (METHODS.md section 2).
CCAR = dict(type='CCARLoss', class_freq='auto', pivot=0.75, base='e',
            dual_phase=True)
# LDAM-DRW: largest margin 0.5, s = 30, DRW beta 0.9999 from epoch 160,
# weights in F.cross_entropy(weight=...) (divided by their sum).
DRW = dict(type='ClassBalancedLoss', class_counts='auto', beta=0.9999,
           normalize='weight_sum')
LDAM = dict(type='LDAMLoss', class_freq='auto', max_margin=0.5, scale=30.0)
DRW_HOOK = [dict(type='DRWHook', start_epoch=160)]
# Cui et al.'s cifar_im_trainval_cb.sh: beta 0.9999, focal gamma 1.0.
CB = dict(type='ClassBalancedLoss', class_counts='auto', beta=0.9999,
          normalize='mean')


def head(num_classes=10, loss=CE, type='LinearClsHead', **extra):
    return dict(type=type, num_classes=num_classes, in_channels=64,
                loss=loss, topk=[1], **extra)


def cifar(num_classes=10, imbalance=100, loss=CE, binary=False, **changes):
    """A config on the 200-epoch LDAM-DRW protocol with ``changes``."""
    name = 'CIFAR10' if num_classes == 10 else 'CIFAR100'
    root = f'data/cifar{num_classes}'
    thresholds = [1500, 200] if num_classes == 10 else [100, 20]
    evaluator = dict(type='LongTailMetric', train_class_counts='auto')
    if num_classes == 10:
        evaluator['thresholds'] = thresholds
    out = dict(
        optimizer=SGD_CIFAR,
        schedulers=SCHEDULE_200E,
        loop=LOOP_200E,
        batch_size=128,
        sampler=SHUFFLE,
        subset=dict(imbalance_factor=imbalance, seed=0),
        data=dict(type=name, root=root) if binary else dict(
            type='CustomDataset', root=root),
        train_pipeline=CIFAR_AUG if binary else LOAD + CIFAR_AUG,
        test_pipeline=[dict(type='PackInputs')] if binary else LOAD +
        [dict(type='PackInputs')],
        normalization=dict(num_classes=num_classes, **CIFAR_NORM,
                           to_rgb=not binary),
        model=dict(type='ImageClassifier', backbone=RESNET32,
                   head=head(num_classes, loss)),
        hooks=[],
        load_from=None,
        evaluator=evaluator,
        seed=0,
    )
    for key, value in changes.items():
        out[key] = value
    return out


def with_head(base, **head_changes):
    model = dict(base['model'], head=dict(base['model']['head'],
                                          **head_changes))
    return dict(base, model=model)


CE10 = cifar()
STAGE1 = 'work_dirs/ce_resnet32_1xb128-200e_cifar10-lt-if100/epoch_200.pth'
# Kang et al. cls_crt.yaml / cls_lws.yaml: ClassAwareSampler with
# num_samples_cls 4, cosine to 0, 10 (cRT) and 5 (LWS) epochs.
STAGE2_SAMPLER = dict(type='ClassBalancedSampler', num_samples_cls=4)


def cosine(epochs):
    return [dict(type='CosineAnnealingLR', T_max=epochs, eta_min=0,
                 by_epoch=True, begin=0, end=epochs)]


# BALMS balanced_softmax_imba200.yaml + utils.CosineAnnealingLRWarmup:
# batch 512, 13k iterations, 0.05 -> 0.1 over 800, cosine to 0, SGD
# momentum 0.9, weight decay 5e-4; RandomCrop, flip, CIFAR10Policy, Cutout
# 16 (data/ImbalanceCIFAR.py).
BALMS = cifar(
    num_classes=100, imbalance=50, loss=BS,
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4),
    schedulers=[
        dict(type='LinearLR', start_factor=0.5, end_factor=1.0,
             by_epoch=False, begin=0, end=800),
        dict(type='CosineAnnealingLR', T_max=12200, eta_min=0,
             by_epoch=False, begin=800, end=13000),
    ],
    loop=dict(type='IterBasedTrainLoop', max_iters=13000),
    batch_size=512,
    train_pipeline=LOAD + CIFAR_AUG[:2] + [
        dict(type='CIFAR10AutoAugment'),
        dict(type='Cutout', shape=16, pad_val=0, prob=1.0),
        dict(type='PackInputs')
    ])

# Kang et al. feat_uniform.yaml (ResNet-50 in place of their ResNeXt-50):
# SGD lr 0.2, momentum 0.9, weight decay 5e-4, batch 512, 90 epochs,
# cosine; dataloader.py augmentation.
IMAGENET_LT = dict(
    optimizer=dict(type='SGD', lr=0.2, momentum=0.9, weight_decay=5e-4),
    schedulers=cosine(90),
    loop=dict(by_epoch=True, max_epochs=90),
    batch_size=128,
    sampler=SHUFFLE,
    subset=None,
    data=dict(type='ImageListDataset', root='data/imagenet'),
    train_pipeline=LOAD + [
        dict(type='RandomResizedCrop', scale=224),
        dict(type='RandomFlip', prob=0.5, direction='horizontal'),
        dict(type='ColorJitter', brightness=0.4, contrast=0.4,
             saturation=0.4),
        dict(type='PackInputs'),
    ],
    test_pipeline=LOAD + [
        dict(type='ResizeEdge', scale=256, edge='short'),
        dict(type='CenterCrop', crop_size=224),
        dict(type='PackInputs'),
    ],
    normalization=dict(num_classes=1000, mean=[123.675, 116.28, 103.53],
                       std=[58.395, 57.12, 57.375], to_rgb=True),
    model=dict(
        type='ImageClassifier',
        backbone=dict(type='ResNet', depth=50, num_stages=4,
                      out_indices=[3], style='pytorch'),
        head=dict(type='LinearClsHead', num_classes=1000, in_channels=2048,
                  loss=CE, topk=[1, 5])),
    hooks=[],
    load_from=None,
    evaluator=dict(type='LongTailMetric', train_class_counts='auto'),
    seed=0,
)

IMAGENET_STAGE1 = \
    'work_dirs/ce_resnet50_4xb128-90e_imagenet-lt-224/epoch_90.pth'

EXPECTED = {
    # CCAR on CIFAR-10-LT, the existing configs.
    **{
        f'ccar/{name}_resnet32_1xb128-200e_cifar10-lt-if{imb}.py':
        cifar(imbalance=imb, loss=loss)
        for imb in (100, 10)
        for name, loss in (('ce', CE), ('la', LA), ('bs', BS), ('ccar', CCAR),
                           ('ccar-la', dict(CCAR, logit_adjust='la',
                                            tau=1.0)),
                           ('ccar-bs', dict(CCAR,
                                            logit_adjust='balanced_softmax')),
                           ('ccar-fmax', dict(CCAR, freq_norm='max')))
    },
    'ccar/ce_resnet32_1xb128-200e_cifar100-lt-if100.py': cifar(100),
    'ccar/ce_resnet32_1xb128-200e_cifar10-lt-if100-bin.py':
    cifar(binary=True),
    'ccar/ce_resnet32_1xb128-200e_cifar100-lt-if100-bin.py':
    cifar(100, binary=True),
    'ccar/ce_resnet50_4xb128-90e_imagenet-lt-224.py': IMAGENET_LT,
    'ccar/la_resnet50_4xb128-90e_imagenet-lt-224.py':
    with_head(IMAGENET_LT, loss=LA),
    'ccar/ccar_resnet50_4xb128-90e_imagenet-lt-224.py':
    with_head(IMAGENET_LT, loss=CCAR),
    'ccar/ccar-la_resnet50_4xb128-90e_imagenet-lt-224.py':
    with_head(IMAGENET_LT, loss=dict(CCAR, logit_adjust='la', tau=1.0)),
    'ccar/bs_resnet32_1xb512-13k-balms_cifar100-lt-if50.py': BALMS,
    'ccar/ccar-bs_resnet32_1xb512-13k-balms_cifar100-lt-if50.py':
    with_head(BALMS, loss=dict(type='CCARLoss', class_freq='auto',
                               logit_adjust='balanced_softmax')),
    'ccar/bs_resnet32_1xb512-13k-balms_cifar100-lt-if200.py':
    dict(BALMS, subset=dict(imbalance_factor=200, seed=0)),
    'ldam/ldam-drw_resnet32_1xb128-200e_cifar10-lt-if100.py':
    dict(with_head(CE10, type='CosineLinearClsHead',
                   loss=dict(DRW, loss=LDAM)), hooks=DRW_HOOK),
    'ldam/ldam-drw_resnet32_1xb128-200e_cifar100-lt-if100.py':
    dict(with_head(cifar(100), type='CosineLinearClsHead',
                   loss=dict(DRW, loss=LDAM)), hooks=DRW_HOOK),
    'ldam/ce-drw_resnet32_1xb128-200e_cifar10-lt-if100.py':
    dict(with_head(CE10, loss=dict(DRW, loss=dict(type='CrossEntropyLoss'))),
         hooks=DRW_HOOK),
    'focal/focal_resnet32_1xb128-200e_cifar10-lt-if100.py':
    with_head(CE10, loss=dict(type='SoftmaxFocalLoss', gamma=1.0)),
    'class_balanced/cb-ce_resnet32_1xb128-200e_cifar10-lt-if100.py':
    with_head(CE10, loss=dict(CB, loss=dict(type='CrossEntropyLoss'))),
    'class_balanced/cb-focal_resnet32_1xb128-200e_cifar10-lt-if100.py':
    with_head(CE10, loss=dict(CB, loss=dict(type='SoftmaxFocalLoss',
                                            gamma=1.0))),
    'logit_adjustment/la-posthoc_resnet32_1xb128-200e_cifar10-lt-if100.py':
    with_head(CE10, type='PostHocAdjustedClsHead', class_freq='auto',
              tau=1.0),
    'decoupling/tau-norm_resnet32_1xb128-200e_cifar10-lt-if100.py':
    with_head(CE10, type='TauNormClsHead', tau=1.0),
    'decoupling/crt_resnet32_1xb128-10e_cifar10-lt-if100.py':
    dict(CE10,
         schedulers=cosine(10),
         loop=dict(by_epoch=True, max_epochs=10),
         sampler=STAGE2_SAMPLER,
         model=dict(CE10['model'], type='FrozenBackboneClassifier',
                    backbone=dict(RESNET32, init_cfg=dict(
                        type='Pretrained', checkpoint=STAGE1,
                        prefix='backbone.')))),
    'decoupling/lws_resnet32_1xb128-5e_cifar10-lt-if100.py':
    dict(with_head(CE10, type='LWSClsHead'),
         schedulers=cosine(5),
         loop=dict(by_epoch=True, max_epochs=5),
         sampler=STAGE2_SAMPLER,
         load_from=STAGE1,
         model=dict(with_head(CE10, type='LWSClsHead')['model'],
                    type='FrozenBackboneClassifier')),
    'decoupling/tau-norm_resnet50_4xb128-90e_imagenet-lt-224.py':
    with_head(IMAGENET_LT, type='TauNormClsHead', tau=1.0),
    'decoupling/crt_resnet50_4xb128-10e_imagenet-lt-224.py':
    dict(IMAGENET_LT,
         schedulers=cosine(10),
         loop=dict(by_epoch=True, max_epochs=10),
         sampler=STAGE2_SAMPLER,
         model=dict(IMAGENET_LT['model'], type='FrozenBackboneClassifier',
                    backbone=dict(IMAGENET_LT['model']['backbone'],
                                  init_cfg=dict(
                                      type='Pretrained',
                                      checkpoint=IMAGENET_STAGE1,
                                      prefix='backbone.')))),
    'decoupling/lws_resnet50_4xb128-5e_imagenet-lt-224.py':
    dict(IMAGENET_LT,
         schedulers=cosine(5),
         loop=dict(by_epoch=True, max_epochs=5),
         sampler=STAGE2_SAMPLER,
         load_from=IMAGENET_STAGE1,
         model=dict(with_head(IMAGENET_LT, type='LWSClsHead')['model'],
                    type='FrozenBackboneClassifier')),
    'decoupling/ce-cbs_resnet32_1xb128-200e_cifar10-lt-if100.py':
    dict(CE10, sampler=STAGE2_SAMPLER),
    'decoupling/ce-sqrts_resnet32_1xb128-200e_cifar10-lt-if100.py':
    dict(CE10, sampler=dict(type='SquareRootSampler', power=0.5)),
    'decoupling/ce-pbs_resnet32_1xb128-200e_cifar10-lt-if100.py':
    dict(CE10, sampler=dict(type='ProgressivelyBalancedSampler',
                            total_epochs=200)),
}


@pytest.mark.parametrize('config', sorted(EXPECTED))
def test_config_protocol(config):
    got = protocol(Config.fromfile(str(ROOT / 'configs' / config)))
    want = EXPECTED[config]
    assert set(got) == set(want)
    for key in want:
        assert got[key] == strip_scope(want[key]), key


LONG_TAIL_FOLDERS = ('ldam', 'class_balanced', 'focal', 'decoupling',
                     'logit_adjustment')


def test_every_long_tail_config_is_pinned():
    configs = [
        str(p.relative_to(ROOT / 'configs'))
        for folder in LONG_TAIL_FOLDERS + ('ccar', )
        for p in (ROOT / 'configs' / folder).glob('*.py')
    ]
    assert sorted(set(configs) - set(EXPECTED)) == []


# DeepVoltaire's CIFAR10Policy (BALMS data/autoaugment.py), written out:
# (p1, op1, magnitude index 1, p2, op2, magnitude index 2).
DEEPVOLTAIRE_CIFAR10 = [
    (0.1, 'invert', 7, 0.2, 'contrast', 6),
    (0.7, 'rotate', 2, 0.3, 'translateX', 9),
    (0.8, 'sharpness', 1, 0.9, 'sharpness', 3),
    (0.5, 'shearY', 8, 0.7, 'translateY', 9),
    (0.5, 'autocontrast', 8, 0.9, 'equalize', 2),
    (0.2, 'shearY', 7, 0.3, 'posterize', 7),
    (0.4, 'color', 3, 0.6, 'brightness', 7),
    (0.3, 'sharpness', 9, 0.7, 'brightness', 9),
    (0.6, 'equalize', 5, 0.5, 'equalize', 1),
    (0.6, 'contrast', 7, 0.6, 'sharpness', 5),
    (0.7, 'color', 7, 0.5, 'translateX', 8),
    (0.3, 'equalize', 7, 0.4, 'autocontrast', 8),
    (0.4, 'translateY', 3, 0.2, 'sharpness', 6),
    (0.9, 'brightness', 6, 0.2, 'color', 8),
    (0.5, 'solarize', 2, 0.0, 'invert', 3),
    (0.2, 'equalize', 0, 0.6, 'autocontrast', 0),
    (0.2, 'equalize', 8, 0.6, 'equalize', 4),
    (0.9, 'color', 9, 0.6, 'equalize', 6),
    (0.8, 'autocontrast', 4, 0.2, 'solarize', 8),
    (0.1, 'brightness', 3, 0.7, 'color', 0),
    (0.4, 'solarize', 5, 0.9, 'autocontrast', 3),
    (0.9, 'translateY', 9, 0.7, 'translateY', 9),
    (0.9, 'autocontrast', 2, 0.8, 'solarize', 3),
    (0.8, 'equalize', 8, 0.1, 'invert', 3),
    (0.7, 'translateY', 9, 0.9, 'autocontrast', 1),
]
RANGES = {  # DeepVoltaire's SubPolicy ranges
    'shearX': np.linspace(0, 0.3, 10),
    'shearY': np.linspace(0, 0.3, 10),
    'translateX': np.linspace(0, 150 / 331, 10),
    'translateY': np.linspace(0, 150 / 331, 10),
    'rotate': np.linspace(0, 30, 10),
    'color': np.linspace(0.0, 0.9, 10),
    'posterize': np.round(np.linspace(8, 4, 10), 0).astype(int),
    'solarize': np.linspace(256, 0, 10),
    'contrast': np.linspace(0.0, 0.9, 10),
    'sharpness': np.linspace(0.0, 0.9, 10),
    'brightness': np.linspace(0.0, 0.9, 10),
}


def mmpretrain_op(prob, name, index):
    """The mmpretrain transform DeepVoltaire's operation amounts to."""
    simple = dict(invert='Invert', autocontrast='AutoContrast',
                  equalize='Equalize')
    if name in simple:
        return dict(type=simple[name], prob=prob)
    m = RANGES[name][index]
    if name.startswith(('shear', 'translate')):
        return dict(type='Shear' if name.startswith('shear') else 'Translate',
                    magnitude=m, prob=prob,
                    direction='horizontal' if name.endswith('X') else
                    'vertical')
    if name == 'rotate':  # PIL: counter-clockwise, no random sign
        return dict(type='Rotate', angle=-m, prob=prob,
                    random_negative_prob=0.0)
    if name == 'posterize':
        return dict(type='Posterize', bits=int(m), prob=prob)
    if name == 'solarize':
        return dict(type='Solarize', thr=m, prob=prob)
    return dict(type=dict(color='ColorTransform', contrast='Contrast',
                          sharpness='Sharpness',
                          brightness='Brightness')[name],
                magnitude=m, prob=prob)


def test_cifar10_autoaugment_is_deepvoltaires_policy():
    assert len(CIFAR10_POLICY) == len(DEEPVOLTAIRE_CIFAR10)
    for ours, (p1, o1, i1, p2, o2, i2) in zip(CIFAR10_POLICY,
                                              DEEPVOLTAIRE_CIFAR10):
        want = [mmpretrain_op(p1, o1, i1), mmpretrain_op(p2, o2, i2)]
        assert [set(d) for d in ours] == [set(d) for d in want]
        for got_op, want_op in zip(ours, want):
            for key, value in want_op.items():
                assert got_op[key] == pytest.approx(value), (got_op, key)
