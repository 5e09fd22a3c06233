"""CifarResNet: He et al.'s parameter counts, shapes and shortcuts."""
import pytest
import torch
from mmengine.registry import init_default_scope

from mmimb.models import CifarResNet
from mmimb.models.backbones.cifar_resnet import PadShortcut


def expected_params(depth, num_classes=None, shortcut='A'):
    """Parameters counted from the architecture: 3x3 convolutions without
    bias, BatchNorm weight and bias, option B's 1x1 projections."""
    n = (depth - 2) // 6
    total = 3 * 16 * 9 + 2 * 16
    channels = 16
    for width in (16, 32, 64):
        for block in range(n):
            total += channels * width * 9 + width * width * 9 + 4 * width
            if shortcut == 'B' and channels != width:
                total += channels * width + 2 * width
            channels = width
    if num_classes:
        total += 64 * num_classes + num_classes
    return total


def count(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize('depth,millions', [(20, 0.27), (32, 0.46),
                                            (44, 0.66), (56, 0.85),
                                            (110, 1.7)])
def test_parameter_counts_match_he_et_al(depth, millions):
    """He et al. 2016, Table 6: 0.27M, 0.46M, 0.66M, 0.85M, 1.7M."""
    model = CifarResNet(depth=depth)
    assert count(model) == expected_params(depth)
    with_head = count(model) + 64 * 10 + 10
    assert with_head == pytest.approx(millions * 1e6, rel=0.02)


def test_resnet32_with_10_class_head_has_464154_parameters():
    init_default_scope('mmpretrain')
    from mmpretrain.registry import MODELS
    model = MODELS.build(
        dict(
            type='ImageClassifier',
            backbone=dict(type='CifarResNet', depth=32),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=10,
                      in_channels=64)))
    assert count(model) == expected_params(32, 10) == 464154
    scores = model(torch.randn(2, 3, 32, 32), mode='tensor')
    assert scores.shape == (2, 10)


def test_stage_outputs_and_shortcut_b():
    model = CifarResNet(depth=20, out_indices=(0, 1, 2))
    outs = model(torch.randn(2, 3, 32, 32))
    assert [tuple(o.shape) for o in outs] == [(2, 16, 32, 32),
                                              (2, 32, 16, 16),
                                              (2, 64, 8, 8)]
    model_b = CifarResNet(depth=20, shortcut='B')
    assert count(model_b) == expected_params(20, shortcut='B')
    assert model_b(torch.randn(1, 3, 32, 32))[0].shape == (1, 64, 8, 8)


def test_option_a_shortcut_subsamples_and_zero_pads():
    x = torch.randn(2, 16, 8, 8)
    y = PadShortcut(16, 32, 2)(x)
    assert y.shape == (2, 32, 4, 4)
    assert torch.equal(y[:, 8:24], x[:, :, ::2, ::2])
    assert (y[:, :8] == 0).all() and (y[:, 24:] == 0).all()
    assert count(PadShortcut(16, 32, 2)) == 0


def test_init_and_bad_arguments():
    model = CifarResNet(depth=20)
    model.init_weights()
    std = model.conv1.weight.std().item()
    # Kaiming normal, fan-in 27: std sqrt(2 / 27) = 0.27.
    assert 0.18 < std < 0.38
    for kwargs, match in ((dict(depth=18), '6n \\+ 2'),
                          (dict(shortcut='C'), 'shortcut'),
                          (dict(out_indices=(3, )), 'out_indices')):
        with pytest.raises(ValueError, match=match):
            CifarResNet(**kwargs)
