"""Every component mmimb registers is found and built from a config dict in
its scope, and no name shadows an upstream one."""
import mmengine.registry as mmengine_registry
import mmpretrain.registry as mmpretrain_registry
import mmseg.registry as mmseg_registry
import pytest
from mmengine.registry import init_default_scope

import mmimb  # noqa: F401

SCOPES = {
    'mmseg': mmseg_registry,
    'mmpretrain': mmpretrain_registry,
    'mmengine': mmengine_registry,
}
KINDS = ('MODELS', 'DATASETS', 'TRANSFORMS', 'METRICS', 'HOOKS', 'RUNNERS',
         'OPTIM_WRAPPERS', 'OPTIM_WRAPPER_CONSTRUCTORS', 'VISUALIZERS',
         'LOOPS', 'DATA_SAMPLERS')

# (scope the component is registered in, registry, name) -> build kwargs.
# Kind-neutral components (scope 'mmengine') are built under both the mmseg
# and the mmpretrain default scope. None: built from a whole config by the
# test named in the comment.
BUILD_CASES = {
    ('mmseg', 'DATASETS', 'SyntheticTissueDataset'):
    dict(num_samples=2, img_size=32),
    ('mmpretrain', 'MODELS', 'CSBANeck'): dict(in_channels=8, num_classes=3),
    ('mmpretrain', 'MODELS', 'MultiBranchNeck'): dict(in_channels=8),
    ('mmpretrain', 'MODELS', 'ClassWiseLinearClsHead'):
    dict(num_classes=3, in_channels=8),
    ('mmseg', 'DATASETS', 'BCSSDataset'): dict(lazy_init=True),
    ('mmseg', 'DATASETS', 'BDSADataset'): dict(lazy_init=True),
    ('mmseg', 'DATASETS', 'CRAGDataset'): dict(lazy_init=True),
    ('mmseg', 'DATASETS', 'EBHISegDataset'): dict(lazy_init=True),
    ('mmseg', 'TRANSFORMS', 'RandomRotate90'): dict(prob=0.5),
    ('mmseg', 'TRANSFORMS', 'LoadCodedAnnotations'): dict(),
    # tests/test_train_tools.py builds it from complete configs.
    ('mmengine', 'RUNNERS', 'MMImbRunner'): None,
    ('mmseg', 'MODELS', 'SegFocalLoss'): dict(),
    ('mmseg', 'MODELS', 'SegDiceLoss'): dict(),
    ('mmseg', 'MODELS', 'DFATransformerDecoderLayer'):
    dict(embed_dims=16, num_heads=2, num_classes=3, bias_mode='none'),
    ('mmseg', 'MODELS', 'DFAHead'):
    dict(in_channels=8, channels=16, num_classes=3, num_heads=2,
         feedforward_channels=32, class_freq=[0.5, 0.3, 0.2]),
    ('mmengine', 'HOOKS', 'DFABiasLoggerHook'): dict(),
    ('mmseg', 'MODELS', 'SAMPathLoss'): dict(),
    # tests/test_sam_parity.py and test_dfa_configs.py build it from
    # configs/dfa_bcss.py.
    ('mmseg', 'MODELS', 'FrozenBackboneEncoderDecoder'): None,
    ('mmengine', 'OPTIM_WRAPPER_CONSTRUCTORS',
     'GroupStepOptimWrapperConstructor'):
    dict(optim_wrapper_cfg=dict(
        type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1))),
    ('mmengine', 'HOOKS', 'ChannelsLastHook'): dict(),
    ('mmengine', 'HOOKS', 'BranchAttentionLoggerHook'): dict(),
    # tests/test_cpu_fast_path.py builds it around an optimizer and trains
    # complete configs with it.
    ('mmengine', 'OPTIM_WRAPPERS', 'CPUAmpOptimWrapper'): None,
    ('mmengine', 'HOOKS', 'GradientConflictHook'): dict(interval=10),
    ('mmengine', 'MODELS', 'CCARLoss'): dict(class_freq=[3, 2, 1]),
    ('mmpretrain', 'MODELS', 'CifarResNet'): dict(depth=20),
    ('mmpretrain', 'DATASETS', 'LongTailedDataset'):
    dict(
        dataset=dict(
            type='CustomDataset', data_root='data/absent', lazy_init=True),
        imbalance_factor=10,
        lazy_init=True),
    ('mmpretrain', 'METRICS', 'LongTailMetric'): dict(),
    ('mmengine', 'MODELS', 'LogitAdjustedLoss'): dict(class_freq=[3, 2, 1]),
    ('mmengine', 'MODELS', 'BalancedSoftmaxLoss'): dict(class_freq=[3, 2, 1]),
    ('mmengine', 'MODELS', 'LDAMLoss'): dict(class_freq=[3, 2, 1]),
    ('mmengine', 'MODELS', 'SoftmaxFocalLoss'): dict(gamma=1.0),
    ('mmengine', 'MODELS', 'ClassBalancedLoss'):
    dict(loss=dict(type='SoftmaxFocalLoss'), class_counts=[3, 2, 1]),
    ('mmpretrain', 'MODELS', 'CosineLinearClsHead'):
    dict(num_classes=3, in_channels=8),
    ('mmpretrain', 'MODELS', 'TauNormClsHead'):
    dict(num_classes=3, in_channels=8, tau=0.5),
    ('mmpretrain', 'MODELS', 'LWSClsHead'): dict(num_classes=3, in_channels=8),
    ('mmpretrain', 'MODELS', 'PostHocAdjustedClsHead'):
    dict(num_classes=3, in_channels=8, class_freq=[3, 2, 1]),
    ('mmengine', 'HOOKS', 'DRWHook'): dict(start_epoch=1),
    ('mmpretrain', 'TRANSFORMS', 'CIFAR10AutoAugment'): dict(),
    # tests/test_long_tail_datasets.py builds them from annotation files.
    ('mmpretrain', 'DATASETS', 'ImageListDataset'): None,
    ('mmpretrain', 'DATASETS', 'INat2018Dataset'): None,
    # tests/test_long_tail_training.py builds these from complete configs.
    ('mmpretrain', 'MODELS', 'FrozenBackboneClassifier'): None,
    ('mmpretrain', 'DATA_SAMPLERS', 'ClassBalancedSampler'): None,
    ('mmpretrain', 'DATA_SAMPLERS', 'SquareRootSampler'): None,
    ('mmpretrain', 'DATA_SAMPLERS', 'ProgressivelyBalancedSampler'): None,
    ('mmengine', 'HOOKS', 'ImageBankHook'): dict(),
    ('mmpretrain', 'DATASETS', 'ImageBankDataset'):
    dict(
        dataset=dict(
            type='CustomDataset', data_root='data/absent', lazy_init=True),
        lazy_init=True),
    ('mmpretrain', 'MODELS', 'ImageBankClsDataPreprocessor'):
    dict(crop_padding=4, flip_prob=0.5),
}


def registered_by_mmimb():
    for scope, module in SCOPES.items():
        for kind in KINDS:
            registry = getattr(module, kind, None)
            if registry is None:
                continue
            for name, obj in registry.module_dict.items():
                if obj.__module__.split('.')[0] == 'mmimb':
                    yield scope, kind, name


REGISTERED = sorted(set(registered_by_mmimb()))


def test_every_registered_component_has_a_build_case():
    missing = [key for key in REGISTERED if key not in BUILD_CASES]
    assert not missing, f'add build cases for {missing}'
    stale = [key for key in BUILD_CASES if key not in REGISTERED]
    assert not stale, f'build cases for unregistered names: {stale}'


@pytest.mark.parametrize(
    'key', [k for k in REGISTERED if BUILD_CASES.get(k) is not None],
    ids='.'.join)
def test_build_from_config_dict(key):
    """Built by its bare name in its own scope (both task scopes for
    kind-neutral components) and as ``mmimb.<name>`` from the other one."""
    scope, kind, name = key
    if scope == 'mmengine':
        attempts = [('mmseg', name), ('mmpretrain', name)]
    else:
        other = 'mmpretrain' if scope == 'mmseg' else 'mmseg'
        attempts = [(scope, name), (other, f'mmimb.{name}')]
    for run_scope, type_name in attempts:
        init_default_scope(run_scope)
        registry = getattr(SCOPES[run_scope], kind)
        obj = registry.build(dict(type=type_name, **BUILD_CASES[key]))
        assert type(obj).__name__ == name, (run_scope, type_name)


@pytest.mark.parametrize('key', REGISTERED, ids='.'.join)
def test_name_does_not_shadow_upstream(key):
    scope, kind, name = key
    for other_scope, module in SCOPES.items():
        registry = getattr(module, kind, None)
        if other_scope == scope or registry is None:
            continue
        obj = registry.module_dict.get(name)
        assert obj is None or obj.__module__.split('.')[0] == 'mmimb', (
            f'{name} in {scope}.{kind} clashes with {obj.__module__}')
