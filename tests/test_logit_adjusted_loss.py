"""Logit adjustment and Balanced Softmax against their closed forms."""
import math

import pytest
import torch
import torch.nn.functional as F

from mmimb.models import BalancedSoftmaxLoss, LogitAdjustedLoss
from mmimb.models.losses import logit_adjusted_loss

COUNTS = [500, 250, 120, 40, 9]


def closed_form(logits, labels, counts, tau, ignore_index=None):
    """Menon et al. Eq. (10): -log(pi_y^tau e^{z_y} / sum_j pi_j^tau e^{z_j}),
    averaged over the labels that are not ignored. Counts instead of
    frequencies give the same value (the normaliser cancels)."""
    losses = []
    for z, y in zip(logits.tolist(), labels.tolist()):
        if y == ignore_index:
            continue
        terms = [n**tau * math.exp(zc) for zc, n in zip(z, counts)]
        losses.append(-math.log(terms[y] / sum(terms)))
    return sum(losses) / len(losses)


def case(seed=0):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(30, 5, generator=gen, dtype=torch.float64) * 2
    labels = torch.randint(0, 5, (30, ), generator=gen)
    return logits, labels


@pytest.mark.parametrize('tau', [0.0, 0.5, 1.0, 2.0])
def test_logit_adjusted_loss_matches_closed_form(tau):
    logits, labels = case()
    loss = LogitAdjustedLoss(COUNTS, tau=tau)(logits, labels)
    assert loss.item() == pytest.approx(
        closed_form(logits, labels, COUNTS, tau), rel=1e-12)


def test_tau_zero_is_cross_entropy_and_balanced_softmax_is_tau_one():
    logits, labels = case()
    torch.testing.assert_close(
        LogitAdjustedLoss(COUNTS, tau=0.0)(logits, labels),
        F.cross_entropy(logits, labels))
    assert BalancedSoftmaxLoss(COUNTS)(logits, labels).item() == \
        pytest.approx(closed_form(logits, labels, COUNTS, 1.0), rel=1e-12)
    torch.testing.assert_close(
        BalancedSoftmaxLoss(COUNTS)(logits, labels),
        LogitAdjustedLoss(COUNTS, tau=1.0)(logits, labels))


def test_prior_pushes_towards_rare_classes():
    """With equal logits the adjusted loss is smallest for the most common
    class: the model must raise rare-class logits to fit them."""
    logits = torch.zeros(5, 5, dtype=torch.float64)
    per_class = LogitAdjustedLoss(
        COUNTS, reduction='none')(logits, torch.arange(5))
    assert (per_class[:-1] < per_class[1:]).all()


def test_segmentation_with_ignored_pixels():
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 5, 4, 6, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 5, (2, 4, 6), generator=gen)
    labels[:, 0] = 255
    for module, tau in ((LogitAdjustedLoss(COUNTS, tau=0.5), 0.5),
                        (BalancedSoftmaxLoss(COUNTS), 1.0)):
        loss = module(logits, labels, ignore_index=255)
        expected = closed_form(
            logits.permute(0, 2, 3, 1).reshape(-1, 5), labels.flatten(),
            COUNTS, tau, ignore_index=255)
        assert loss.item() == pytest.approx(expected, rel=1e-12)


def test_soft_labels_and_plain_function():
    logits, labels = case()
    freq = torch.tensor(COUNTS, dtype=torch.float64)
    freq = freq / freq.sum()
    module = LogitAdjustedLoss(COUNTS, tau=0.5, reduction='none')
    torch.testing.assert_close(
        module(logits, F.one_hot(labels, 5).double()),
        module(logits, labels))
    torch.testing.assert_close(
        module(logits, labels),
        logit_adjusted_loss(logits, labels, freq.log(), tau=0.5))
    lam = 0.4
    other = labels.roll(3)
    mixed = lam * F.one_hot(labels, 5) + (1 - lam) * F.one_hot(other, 5)
    torch.testing.assert_close(
        module(logits, mixed.double()),
        lam * module(logits, labels) + (1 - lam) * module(logits, other))


def test_finite_for_extreme_logits_and_loss_names():
    logits = torch.full((4, 5), -1e4)
    logits[:, 0] = 1e4
    z = logits.requires_grad_()
    loss = BalancedSoftmaxLoss(COUNTS)(z, torch.tensor([0, 1, 2, 4]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()
    assert LogitAdjustedLoss(COUNTS).loss_name == 'loss_la'
    assert BalancedSoftmaxLoss(COUNTS).loss_name == 'loss_bs'
    with pytest.raises(ValueError, match='classes \\[1\\]'):
        BalancedSoftmaxLoss([3, 0, 1])


@pytest.mark.parametrize('ignore_index', [None, 255])
@pytest.mark.parametrize('bad', [-100, 4, -1])
def test_out_of_range_hard_labels_are_rejected(ignore_index, bad):
    """-100 is F.cross_entropy's default ignore index: without an
    ignore_index it must not be silently dropped from the loss."""
    logits = torch.randn(5, 4)
    labels = torch.tensor([0, 1, bad, 3, 2])
    freq = [0.4, 0.3, 0.2, 0.1]
    for loss in (LogitAdjustedLoss(freq, ignore_index=ignore_index),
                 BalancedSoftmaxLoss(freq, ignore_index=ignore_index),
                 lambda z, y: logit_adjusted_loss(
                     z, y, torch.tensor(freq).log(),
                     ignore_index=ignore_index)):
        with pytest.raises(ValueError, match=rf'labels \[{bad}\] are '
                           r'outside \[0, 4\)'):
            loss(logits, labels)


def test_ignore_index_still_ignores():
    logits = torch.randn(5, 4, dtype=torch.float64)
    labels = torch.tensor([0, 1, 255, 3, 2])
    freq = torch.tensor([0.4, 0.3, 0.2, 0.1], dtype=torch.float64)
    got = LogitAdjustedLoss(freq, ignore_index=255)(logits, labels)
    keep = labels != 255
    want = F.cross_entropy(logits[keep] + freq.log(), labels[keep])
    torch.testing.assert_close(got, want)
