"""Focal and Dice segmentation losses against naive per-pixel loops."""
import math

import pytest
import torch
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

from mmimb.models.losses import soft_dice_loss, softmax_focal_loss

C = 4


def make_batch(seed=0, ignore_fraction=0.3):
    g = torch.Generator().manual_seed(seed)
    logits = 2 * torch.randn(2, C, 5, 6, generator=g)
    target = torch.randint(0, C, (2, 5, 6), generator=g)
    ignored = torch.rand(2, 5, 6, generator=g) < ignore_fraction
    return logits, target.masked_fill(ignored, 255)


def pixels(logits, target):
    """(probabilities, label) of every non-ignored pixel, one by one."""
    for b in range(target.shape[0]):
        for y in range(target.shape[1]):
            for x in range(target.shape[2]):
                label = int(target[b, y, x])
                if label == 255:
                    continue
                z = [float(v) for v in logits[b, :, y, x]]
                m = max(z)
                e = [math.exp(v - m) for v in z]
                yield b, [v / sum(e) for v in e], label


def naive_focal(logits, target, gamma, alpha=None):
    losses = [(alpha[t] if alpha else 1.0) * -(1 - p[t])**gamma *
              math.log(p[t]) for _, p, t in pixels(logits, target)]
    return sum(losses) / len(losses)


def naive_dice(logits, target, smooth, per_image, weights=(1, ) * C):
    groups = {}
    for b, p, t in pixels(logits, target):
        groups.setdefault(b if per_image else 0, []).append((p, t))
    per_group = []
    for items in groups.values():
        dice = []
        for c in range(C):
            inter = sum(p[c] for p, t in items if t == c)
            psum = sum(p[c] for p, _ in items)
            tsum = sum(1 for _, t in items if t == c)
            dice.append(1 - (2 * inter + smooth) / (psum + tsum + smooth))
        per_group.append(
            sum(w * d for w, d in zip(weights, dice)) / sum(weights))
    # images with no labelled pixel have Dice 1 for every class (loss 0)
    num_groups = logits.shape[0] if per_image else 1
    return sum(per_group) / num_groups


@pytest.mark.parametrize('gamma', [0.0, 2.0])
def test_focal_matches_naive_loop(gamma):
    logits, target = make_batch()
    got = softmax_focal_loss(logits, target, gamma=gamma)
    assert got.item() == pytest.approx(naive_focal(logits, target, gamma),
                                       rel=1e-5)


def test_focal_with_gamma_0_is_cross_entropy_over_labelled_pixels():
    logits, target = make_batch()
    expected = torch.nn.functional.cross_entropy(
        logits, target, ignore_index=255)
    assert torch.allclose(softmax_focal_loss(logits, target, gamma=0.0),
                          expected, atol=1e-6)


def test_focal_class_weights_match_naive_loop():
    logits, target = make_batch(1)
    alpha = [0.25, 1.0, 2.0, 0.5]
    got = softmax_focal_loss(logits, target, 2.0, torch.tensor(alpha))
    assert got.item() == pytest.approx(
        naive_focal(logits, target, 2.0, alpha), rel=1e-5)


@pytest.mark.parametrize('per_image', [True, False])
@pytest.mark.parametrize('smooth', [0.0, 1.0])
def test_dice_matches_naive_loop(per_image, smooth):
    logits, target = make_batch(2)
    got = soft_dice_loss(logits, target, smooth=smooth, per_image=per_image)
    expected = naive_dice(logits, target, smooth, per_image)
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_dice_class_weights_match_naive_loop():
    logits, target = make_batch(5)
    weights = [0.5, 2.0, 1.0, 4.0]
    got = soft_dice_loss(logits, target, class_weight=torch.tensor(weights))
    expected = naive_dice(logits, target, 1.0, True, weights)
    assert got.item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize('loss_fn', [softmax_focal_loss, soft_dice_loss])
def test_ignored_pixels_change_nothing(loss_fn):
    logits, target = make_batch(3)
    ignored = target == 255
    garbage = logits.clone()
    garbage.masked_scatter_(ignored.unsqueeze(1).expand_as(logits),
                            100 * torch.randn(int(ignored.sum()) * C))
    assert torch.allclose(loss_fn(logits, target), loss_fn(garbage, target),
                          atol=1e-6)
    garbage.requires_grad_(True)
    loss_fn(garbage, target).backward()
    assert garbage.grad.movedim(1, -1)[ignored].abs().max() == 0


@pytest.mark.parametrize('loss_fn', [softmax_focal_loss, soft_dice_loss])
def test_all_ignored_gives_zero_not_nan(loss_fn):
    logits = torch.randn(1, C, 3, 3, requires_grad=True)
    loss = loss_fn(logits, torch.full((1, 3, 3), 255))
    assert loss.item() == 0
    loss.backward()


@pytest.mark.parametrize('loss_fn', [softmax_focal_loss, soft_dice_loss])
def test_labels_out_of_range_are_refused(loss_fn):
    logits, target = make_batch()
    target[0, 0, 0] = C
    with pytest.raises(ValueError, match=r'labels \[4\] are outside'):
        loss_fn(logits, target)


def test_registered_losses_in_a_decode_head_config():
    init_default_scope('mmseg')
    logits, target = make_batch(4)
    focal = MODELS.build(dict(type='SegFocalLoss', loss_weight=2.0))
    dice = MODELS.build(dict(type='SegDiceLoss', class_weight=[1, 1, 1, 1]))
    assert focal.loss_name == 'loss_focal' and dice.loss_name == 'loss_dice'
    assert torch.allclose(focal(logits, target, ignore_index=255),
                          2 * softmax_focal_loss(logits, target))
    assert torch.allclose(dice(logits, target, ignore_index=255),
                          soft_dice_loss(logits, target))
