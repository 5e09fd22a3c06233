"""LDAM, class-balanced weights, the softmax focal loss, CCAR's frequency
normalisation and the deferred label check, each against an independent
computation: the paper's formula as a naive loop, or the authors' reference
code written out here."""
import functools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmimb.models import (CCARLoss, ClassBalancedLoss, LDAMLoss,
                          LogitAdjustedLoss, SoftmaxFocalLoss)
from mmimb.models.losses import (ccar_loss, effective_number_weights,
                                 flush_label_checks, guard_labels,
                                 ldam_margins, softmax_focal_loss)
from mmimb.models.losses import class_prior_loss

COUNTS = [500, 250, 120, 40, 9]
C = len(COUNTS)


def case(seed=0, n=40, scale=2.0):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, C, generator=gen, dtype=torch.float64) * scale
    labels = torch.randint(0, C, (n, ), generator=gen)
    return logits, labels


def log_softmax_row(z):
    m = max(z)
    lse = m + math.log(sum(math.exp(v - m) for v in z))
    return [v - lse for v in z]


# --- LDAM ---------------------------------------------------------------


def ldam_authors(x, target, cls_num_list, max_m=0.5, s=30, weight=None):
    """kaidic/LDAM-DRW losses.py LDAMLoss.forward, on the CPU."""
    m_list = 1.0 / np.sqrt(np.sqrt(cls_num_list))
    m_list = m_list * (max_m / np.max(m_list))
    m_list = torch.tensor(m_list, dtype=x.dtype)
    index = torch.zeros_like(x, dtype=torch.uint8)
    index.scatter_(1, target.data.view(-1, 1), 1)
    index_float = index.type(x.dtype)
    batch_m = torch.matmul(m_list[None, :], index_float.transpose(0, 1))
    batch_m = batch_m.view((-1, 1))
    x_m = x - batch_m
    output = torch.where(index.bool(), x_m, x)
    return F.cross_entropy(s * output, target, weight=weight)


def ldam_naive(logits, labels, counts, max_m=0.5, s=30.0):
    """Cao et al. Eq. (13) with Delta_j = C / n_j^(1/4), the largest 0.5."""
    raw = [n**-0.25 for n in counts]
    delta = [max_m * r / max(raw) for r in raw]
    losses = []
    for z, y in zip(logits.tolist(), labels.tolist()):
        shifted = [s * (v - (delta[j] if j == y else 0.0))
                   for j, v in enumerate(z)]
        losses.append(-log_softmax_row(shifted)[y])
    return sum(losses) / len(losses)


def test_ldam_matches_the_paper_and_the_authors_code():
    logits, labels = case()
    cosines = torch.tanh(logits)  # in [-1, 1] like NormedLinear's output
    for class_freq in (COUNTS, np.array(COUNTS) / sum(COUNTS)):
        loss = LDAMLoss(class_freq)(cosines, labels)
        assert loss.item() == pytest.approx(
            ldam_naive(cosines, labels, COUNTS), rel=1e-12)
        torch.testing.assert_close(loss,
                                   ldam_authors(cosines, labels, COUNTS))
    margins = ldam_margins(COUNTS, 0.5)
    assert margins.max().item() == pytest.approx(0.5)
    assert margins[-1] == margins.max()  # rarest class, largest margin
    other = LDAMLoss(COUNTS, max_margin=0.3, scale=10)(cosines, labels)
    assert other.item() == pytest.approx(
        ldam_naive(cosines, labels, COUNTS, 0.3, 10.0), rel=1e-12)


def test_ldam_drw_weighting_matches_the_authors_weighted_cross_entropy():
    """LDAM-DRW after epoch 160: F.cross_entropy(s * output, target,
    weight=per_cls_weights), a mean divided by the sum of the weights."""
    logits, labels = case(1)
    cosines = torch.tanh(logits)
    beta = 0.9999
    effective_num = 1.0 - np.power(beta, COUNTS)
    per_cls_weights = (1.0 - beta) / np.array(effective_num)
    per_cls_weights = per_cls_weights / np.sum(per_cls_weights) * C
    expected = ldam_authors(cosines, labels, COUNTS,
                            weight=torch.tensor(per_cls_weights))
    loss = ClassBalancedLoss(
        dict(type='LDAMLoss', class_freq=COUNTS), COUNTS, beta=beta,
        normalize='weight_sum')
    torch.testing.assert_close(
        loss(cosines, labels, avg_factor=len(labels)), expected,
        rtol=1e-6, atol=0)


def test_ldam_segmentation_ignores_pixels_and_refuses_soft_labels():
    gen = torch.Generator().manual_seed(2)
    z = torch.tanh(torch.randn(2, C, 3, 4, generator=gen,
                               dtype=torch.float64))
    labels = torch.randint(0, C, (2, 3, 4), generator=gen)
    labels[:, 0] = 255
    got = LDAMLoss(COUNTS)(z, labels, ignore_index=255)
    keep = labels.flatten() != 255
    flat_z = z.permute(0, 2, 3, 1).reshape(-1, C)[keep]
    assert got.item() == pytest.approx(
        ldam_naive(flat_z, labels.flatten()[keep], COUNTS), rel=1e-12)
    with pytest.raises(ValueError, match='soft labels'):
        LDAMLoss(COUNTS)(z[:, :, 0, 0], torch.full((2, C), 1.0 / C))


# --- class-balanced weights ---------------------------------------------


@pytest.mark.parametrize('beta', [0.0, 0.9, 0.99, 0.999, 0.9999])
def test_effective_number_weights_match_cui_et_al(beta):
    """richardaecn/class-balanced-loss src/cifar_main.py, lines 428-430."""
    effective_num = 1.0 - np.power(beta, COUNTS)
    weights = (1.0 - beta) / np.array(effective_num)
    weights = weights / np.sum(weights) * C
    np.testing.assert_allclose(
        effective_number_weights(COUNTS, beta).numpy(), weights, rtol=1e-10)


def test_effective_number_weights_limits_and_errors(tmp_path):
    assert effective_number_weights(COUNTS, 0.0).tolist() == [1.0] * C
    inverse = 1 / np.array(COUNTS, dtype=float)
    np.testing.assert_allclose(
        effective_number_weights(COUNTS, 1 - 1e-12).numpy(),
        inverse / inverse.sum() * C, rtol=1e-5)
    for beta in (1.0, -0.1, 'x'):
        with pytest.raises(ValueError, match='beta'):
            effective_number_weights(COUNTS, beta)
    with pytest.raises(ValueError, match=r'classes \[1\] have no training'):
        effective_number_weights([5, 0, 2])
    with pytest.raises(ValueError, match="'auto'"):
        ClassBalancedLoss(dict(type='SoftmaxFocalLoss'), 'auto')


def per_sample(loss_module, logits, labels):
    return loss_module(logits, labels, reduction_override='none')


@pytest.mark.parametrize('inner', [
    dict(type='LogitAdjustedLoss', class_freq=COUNTS, tau=0.0),
    dict(type='LogitAdjustedLoss', class_freq=COUNTS, tau=1.0),
    dict(type='CCARLoss', class_freq=COUNTS),
    dict(type='SoftmaxFocalLoss', gamma=1.0),
    dict(type='mmpretrain.CrossEntropyLoss'),
],
                         ids=['ce', 'la', 'ccar', 'focal', 'mmpretrain-ce'])
def test_class_balanced_loss_weights_every_sample(inner):
    """Cui et al.'s normalisation (tf.losses.softmax_cross_entropy with
    per-sample weights: sum_i w_yi l_i / N) and PyTorch's weighted mean
    (sum_i w_yi l_i / sum_i w_yi), against the unweighted per-sample loss."""
    from mmengine.registry import MODELS
    logits, labels = case(3)
    plain = MODELS.build(inner)
    elementwise = per_sample(plain, logits, labels).tolist()
    w = effective_number_weights(COUNTS, 0.999).tolist()
    weights = [w[y] for y in labels.tolist()]
    weighted = [wi * li for wi, li in zip(weights, elementwise)]
    for normalize, divisor in (('mean', len(labels)),
                               ('weight_sum', sum(weights))):
        module = ClassBalancedLoss(inner, COUNTS, beta=0.999,
                                   normalize=normalize)
        got = module(logits, labels, avg_factor=len(labels))
        assert got.item() == pytest.approx(sum(weighted) / divisor,
                                           rel=1e-6)
    off = ClassBalancedLoss(inner, COUNTS, enabled=False)
    torch.testing.assert_close(
        off(logits, labels, avg_factor=len(labels)),
        plain(logits, labels, avg_factor=len(labels)))


def test_class_balanced_loss_in_segmentation_and_bad_inputs():
    gen = torch.Generator().manual_seed(4)
    logits = torch.randn(2, C, 3, 4, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, C, (2, 3, 4), generator=gen)
    labels[0, 0] = 255
    module = ClassBalancedLoss(
        dict(type='LogitAdjustedLoss', class_freq=COUNTS, tau=0.0), COUNTS,
        normalize='weight_sum')
    keep = labels != 255
    w = module.class_weight.double()[labels[keep]]
    ce = F.cross_entropy(logits.movedim(1, -1)[keep], labels[keep],
                         reduction='none')
    got = module(logits, labels, ignore_index=255)
    assert got.item() == pytest.approx(((w * ce).sum() / w.sum()).item(),
                                       rel=1e-6)
    assert module.loss_name == 'loss_la'
    with pytest.raises(ValueError, match='soft labels'):
        module(logits[:, :, 0, 0], torch.full((2, C), 1.0 / C))
    with pytest.raises(ValueError, match='no element-wise weight'):
        ClassBalancedLoss(torch.nn.CrossEntropyLoss(), COUNTS)
    with pytest.raises(ValueError, match='normalize'):
        ClassBalancedLoss(dict(type='SoftmaxFocalLoss'), COUNTS,
                          normalize='sum')


# --- softmax focal loss -------------------------------------------------


def focal_naive(logits, labels, gamma, soft=None):
    losses = []
    for i, z in enumerate(logits.tolist()):
        logp = log_softmax_row(z)
        if soft is None:
            y = labels[i]
            losses.append(-(1 - math.exp(logp[y]))**gamma * logp[y])
        else:
            losses.append(
                sum(-yc * (1 - math.exp(lp))**gamma * lp
                    for yc, lp in zip(soft[i].tolist(), logp)))
    return sum(losses) / len(losses)


@pytest.mark.parametrize('gamma', [0.0, 0.5, 1.0, 2.0])
def test_softmax_focal_loss_matches_naive_loop(gamma):
    logits, labels = case(5)
    got = SoftmaxFocalLoss(gamma=gamma)(logits, labels)
    assert got.item() == pytest.approx(
        focal_naive(logits, labels.tolist(), gamma), rel=1e-10)
    mixed = 0.3 * F.one_hot(labels, C) + 0.7 * F.one_hot(labels.roll(1), C)
    got = SoftmaxFocalLoss(gamma=gamma)(logits, mixed.double())
    assert got.item() == pytest.approx(
        focal_naive(logits, None, gamma, soft=mixed), rel=1e-10)


def test_focal_with_gamma_0_is_cross_entropy_and_ignores_labels():
    logits, labels = case(6)
    torch.testing.assert_close(
        SoftmaxFocalLoss(gamma=0.0)(logits, labels),
        F.cross_entropy(logits, labels))
    labels[:5] = 255
    got = SoftmaxFocalLoss(gamma=2.0, ignore_index=255)(logits, labels)
    assert got.item() == pytest.approx(
        focal_naive(logits[5:], labels[5:].tolist(), 2.0), rel=1e-10)
    with pytest.raises(ValueError, match='gamma'):
        SoftmaxFocalLoss(gamma=-1)


@pytest.mark.parametrize('gamma', [0.1, 0.5, 0.9])
def test_focal_gradient_is_finite_on_a_saturated_prediction(gamma):
    """Review finding: gamma < 1 gave NaN gradients for logits [40, 0, 0]
    (p_t = 1 in float32)."""
    logits = torch.tensor([[40.0, 0.0, 0.0]], requires_grad=True)
    label = torch.tensor([0])
    seg_logits = logits.detach().view(1, 3, 1, 1).requires_grad_()
    softmax_focal_loss(seg_logits, label.view(1, 1, 1), gamma=gamma).backward()
    SoftmaxFocalLoss(gamma=gamma)(logits, label).backward()
    for grad in (logits.grad, seg_logits.grad):
        assert torch.isfinite(grad).all()
        assert grad.abs().max() < 1e-6


def test_focal_gradient_matches_finite_differences_for_gamma_below_1():
    logits, labels = case(7, n=6)
    logits.requires_grad_(True)
    torch.autograd.gradcheck(
        lambda z: SoftmaxFocalLoss(gamma=0.5)(z, labels), (logits, ))


# --- CCAR frequency normalisation ----------------------------------------


def ccar_naive(logits, labels, freq, pivot=0.75):
    losses = []
    for z, y in zip(logits.tolist(), labels.tolist()):
        logp = log_softmax_row(z)
        p = math.exp(logp[y])
        f = freq[y] if p < pivot else 1 - freq[y]
        losses.append((math.e - f)**(pivot - p) * -logp[y])
    return sum(losses) / len(losses)


def test_ccar_max_normalisation_uses_n_over_n_max():
    logits, labels = case(8)
    by_max = [n / max(COUNTS) for n in COUNTS]
    by_sum = [n / sum(COUNTS) for n in COUNTS]
    got = CCARLoss(COUNTS, freq_norm='max')(logits, labels)
    assert got.item() == pytest.approx(
        ccar_naive(logits, labels, by_max), rel=1e-10)
    assert CCARLoss(COUNTS)(logits, labels).item() == pytest.approx(
        ccar_naive(logits, labels, by_sum), rel=1e-10)
    torch.testing.assert_close(
        ccar_loss(logits, labels, COUNTS, freq_norm='max').mean(), got)
    with pytest.raises(ValueError, match='freq_norm'):
        CCARLoss(COUNTS, freq_norm='count')


def test_class_term_ratio_matches_the_closed_form():
    """Review finding: with frequencies summing to 1 the rarest class's
    weight exceeds the most frequent one's by at most 1.127 (CIFAR-10-LT
    IF 100) and 1.013 (CIFAR-100-LT IF 100) at any confidence."""
    from mmimb.datasets import long_tailed_counts
    from mmimb.models.losses import class_weight_ratio
    for counts, review in ((long_tailed_counts(5000, 100, 10), 1.127),
                           (long_tailed_counts(500, 100, 100), 1.013)):
        for norm in ('sum', 'max'):
            f = np.array(counts, dtype=float)
            f = f / (f.sum() if norm == 'sum' else f.max())
            below = ((math.e - f.min()) / (math.e - f.max()))**0.75
            above = ((math.e - 1 + f.max()) / (math.e - 1 + f.min()))**0.25
            assert class_weight_ratio(counts, freq_norm=norm) == \
                pytest.approx(max(below, above), rel=1e-12)
        assert round(class_weight_ratio(counts), 3) == review
        assert class_weight_ratio(counts, freq_norm='max') > 1.4


# --- deferred label check ------------------------------------------------


def test_deferred_check_drops_bad_labels_then_raises(monkeypatch):
    flush_label_checks()
    labels = torch.tensor([0, 3, 7, -2, 1])
    safe, ignore = guard_labels(labels, 5, None, 'owner', defer=True)
    assert ignore == -100 and safe.tolist() == [0, 3, -100, -100, 1]
    with pytest.raises(ValueError, match=r'owner: 2 labels \(values -2 to '
                       r'7\) are outside \[0, 5\)'):
        flush_label_checks()
    # A loss with the deferred check leaves the bad labels out of that
    # batch's loss and raises on its next call.
    monkeypatch.setattr(class_prior_loss, 'guard_labels',
                        functools.partial(guard_labels, defer=True))
    logits, _ = case(9, n=5)
    loss = LogitAdjustedLoss(COUNTS, tau=0.0)
    got = loss(logits, labels)
    keep = torch.tensor([True, True, False, False, True])
    torch.testing.assert_close(got,
                               F.cross_entropy(logits[keep], labels[keep]))
    with pytest.raises(ValueError, match=r'LogitAdjustedLoss: 2 labels'):
        loss(logits, torch.tensor([0, 1, 2, 3, 4]))
    seg = torch.tensor([[0, 255, 9]])
    safe, ignore = guard_labels(seg, 5, 255, defer=True)
    assert ignore == 255 and safe.tolist() == [[0, 255, 255]]
    with pytest.raises(ValueError, match='values 9 to 9'):
        flush_label_checks()
    clean, _ = guard_labels(torch.tensor([1, 2]), 5, None, defer=True)
    flush_label_checks()  # nothing pending that failed
    small, _ = guard_labels(torch.tensor([0, 200], dtype=torch.uint8), 5,
                            None, defer=True)
    assert small.tolist() == [0, -100]
    with pytest.raises(ValueError, match='values 200 to 200'):
        flush_label_checks()
    with pytest.raises(ValueError, match=r'labels \[7\] are outside'):
        guard_labels(labels[:3], 5, None)  # CPU default: immediate
