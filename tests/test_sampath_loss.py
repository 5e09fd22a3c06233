"""SAMPathLoss against a loop over images, classes and pixels written from
MONAI 1.3.2's FocalLoss and DiceLoss and SAM-Path's losses.py (the
reference's ignore handling included)."""
import math

import pytest
import torch

from mmimb.models.losses import SAMPathLoss

B, C, H, W = 2, 3, 4, 5  # C classes; the masks have C + 1 channels
IGNORE = 255


def inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    masks = 3 * torch.randn(B, C + 1, H, W, generator=g, dtype=torch.float64)
    target = torch.randint(0, C, (B, H, W), generator=g)
    target[0, 0, :3] = IGNORE
    target[1, 2:, 1] = IGNORE
    return masks, target


def reference(masks, target, iou_pred, exclude=False):
    """SAMLoss term by term with loops; ``exclude`` leaves ignored pixels
    out of every sum and count."""
    x = masks.clone()
    labels = torch.zeros_like(target)
    for b in range(B):
        for i in range(H):
            for j in range(W):
                if target[b, i, j] == IGNORE:
                    x[b, :, i, j] = 0.0
                else:
                    labels[b, i, j] = target[b, i, j] + 1
    focal_sum, focal_n, dice, ious = 0.0, 0, [], []
    for b in range(B):
        for c in range(1, C + 1):
            inter = pred = truth = 0.0
            inter_bin = pred_bin = 0.0
            for i in range(H):
                for j in range(W):
                    if exclude and target[b, i, j] == IGNORE:
                        continue
                    t = float(labels[b, i, j] == c)
                    z = x[b, c, i, j].item()
                    p = 1 / (1 + math.exp(-z))
                    p_t = p if t else 1 - p
                    focal_sum += -(1 - p_t) ** 2 * math.log(p_t)
                    focal_n += 1
                    soft = torch.softmax(x[b, :, i, j], 0)[c].item()
                    inter += soft * t
                    pred += soft
                    truth += t
                    hard = float(soft >= 0.5)
                    inter_bin += hard * t
                    pred_bin += hard
            dice.append(1 - (2 * inter + 1e-5) / (pred + truth + 1e-5))
            iou = inter_bin / (pred_bin + truth - inter_bin + 1e-7)
            ious.append((iou_pred[b, c - 1].item() - iou) ** 2)
    return (focal_sum / focal_n, sum(dice) / len(dice),
            sum(ious) / len(ious))


@pytest.mark.parametrize('ignored_pixels', ['reference', 'exclude'])
def test_terms_match_a_loop(ignored_pixels):
    masks, target = inputs()
    iou_pred = torch.rand(B, C, generator=torch.Generator().manual_seed(3),
                          dtype=torch.float64)
    loss = SAMPathLoss(focal_weight=1.0, dice_weight=1.0, iou_weight=1.0,
                       ignored_pixels=ignored_pixels)
    out = loss(masks, target, iou_pred, ignore_index=IGNORE)
    focal, dice, iou = reference(masks, target, iou_pred,
                                 exclude=ignored_pixels == 'exclude')
    assert out['loss_focal'].item() == pytest.approx(focal, rel=1e-5)
    assert out['loss_dice'].item() == pytest.approx(dice, rel=1e-5)
    assert out['loss_iou'].item() == pytest.approx(iou, rel=1e-5)


def test_weights_and_no_iou_term():
    masks, target = inputs()
    iou_pred = torch.rand(B, C, dtype=torch.float64)
    full = SAMPathLoss(1.0, 1.0, 1.0)(masks, target, iou_pred)
    weighted = SAMPathLoss()(masks, target, iou_pred)
    for key, weight in (('loss_focal', 0.25), ('loss_dice', 0.75),
                        ('loss_iou', 0.0625)):
        assert weighted[key].item() == pytest.approx(weight *
                                                     full[key].item())
    assert 'loss_iou' not in SAMPathLoss(iou_weight=0.0)(masks, target)
    with pytest.raises(ValueError, match='needs iou_pred'):
        SAMPathLoss()(masks, target)


def test_ignored_pixels_pass_no_gradient():
    masks, target = inputs()
    masks.requires_grad_(True)
    out = SAMPathLoss()(masks, target, torch.zeros(B, C))
    sum(out.values()).backward()
    ignored = (target == IGNORE).unsqueeze(1).expand_as(masks)
    assert masks.grad[ignored].abs().max() == 0
    assert masks.grad[~ignored].abs().max() > 0


def test_labels_out_of_range_are_refused():
    masks, target = inputs()
    target[0, 0, 0] = C  # the ignored class's index, not a label
    with pytest.raises(ValueError, match='outside'):
        SAMPathLoss()(masks, target, torch.zeros(B, C))
