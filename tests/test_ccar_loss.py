"""CCAR: the weight Omega against hand-computed values, the loss against a
naive per-sample loop, gradients against finite differences, segmentation
with ignored pixels, soft labels, numerics and both callers (mmpretrain
heads, mmseg decode heads)."""
import math

import pytest
import torch
import torch.nn.functional as F

from mmimb.models import CCARLoss
from mmimb.models.losses import ccar_loss, ccar_weight

E = math.e
FREQ = [0.5, 0.25, 0.15, 0.07, 0.03]

# (p_t, f, dual_phase, Omega) at pivot 0.75, base e. Omega was worked out
# as (e - f') ** (0.75 - p_t) with f' = f below the pivot and 1 - f at or
# above it (dual phase), e.g. (e - 0.01) ** 0.5 = sqrt(2.70828...) and
# (e - 0.99) ** -0.15 = exp(-0.15 * ln 1.72828...).
OMEGA_TABLE = [
    (0.00, 0.90, True, 1.565834648687),  # (e - 0.9) ** 0.75
    (0.25, 0.01, True, 1.645685823132),  # rare, uncertain: largest
    (0.25, 0.50, True, 1.489389750354),  # common, uncertain
    (0.50, 0.01, True, 1.282842867670),
    (0.70, 0.30, True, 1.045142108314),  # just below the pivot
    (0.74, 0.20, True, 1.009278549864),
    (0.75, 0.01, True, 1.0),  # at the pivot: 1 for every class
    (0.75, 0.60, True, 1.0),
    (0.76, 0.01, True, 0.994543662657),  # (e - 0.99) ** -0.01
    (0.80, 0.30, True, 0.965496957366),  # (e - 0.7) ** -0.05
    (0.90, 0.01, True, 0.921208243116),  # rare, confident: mild damping
    (0.90, 0.50, True, 0.887355185900),
    (1.00, 0.90, True, 0.786132773339),  # common, confident: most damped
    (0.90, 0.01, False, 0.861183938911),  # (e - 0.01) ** -0.15
    (1.00, 0.90, False, 0.861161688017),  # (e - 0.9) ** -0.25
    (0.76, 0.01, False, 0.990086323479),
]


@pytest.mark.parametrize('p_t,freq,dual_phase,expected', OMEGA_TABLE)
def test_omega_matches_hand_computed_table(p_t, freq, dual_phase, expected):
    got = ccar_weight(
        torch.tensor(p_t, dtype=torch.float64),
        freq,
        pivot=0.75,
        base='e',
        dual_phase=dual_phase)
    assert got.item() == pytest.approx(expected, abs=1e-11)


def test_omega_table_in_one_batched_call():
    p_t = torch.tensor([r[0] for r in OMEGA_TABLE if r[2]],
                       dtype=torch.float64)
    freq = torch.tensor([r[1] for r in OMEGA_TABLE if r[2]],
                        dtype=torch.float64)
    expected = torch.tensor([r[3] for r in OMEGA_TABLE if r[2]],
                            dtype=torch.float64)
    torch.testing.assert_close(ccar_weight(p_t, freq), expected, atol=1e-11,
                               rtol=0)


def test_base_as_number():
    p = torch.tensor([0.25, 1.0], dtype=torch.float64)
    torch.testing.assert_close(
        ccar_weight(p, torch.tensor([0.1, 0.9], dtype=torch.float64),
                    base=3.0, dual_phase=False),
        torch.tensor([2.9**0.5, 2.1**-0.25], dtype=torch.float64))
    torch.testing.assert_close(
        ccar_weight(p, 0.3, base=math.e), ccar_weight(p, 0.3, base='e'))


PROBS = torch.linspace(0, 1, 41, dtype=torch.float64)
FREQS = torch.tensor([1e-4, 0.01, 0.2, 0.5, 0.9], dtype=torch.float64)


def grid(pivot=0.75, base='e', dual_phase=False):
    p, f = torch.meshgrid(PROBS, FREQS, indexing='ij')
    return p, f, ccar_weight(p, f, pivot, base, dual_phase)


@pytest.mark.parametrize('pivot', [0.3, 0.75, 0.9])
@pytest.mark.parametrize('base', ['e', 2.0, 5.0])
def test_single_phase_special_cases(pivot, base):
    """The documented properties of Omega with ``dual_phase=False``."""
    b = E if base == 'e' else base
    p, f, w = grid(pivot, base)
    # 1 at the pivot, for every class.
    at_pivot = ccar_weight(torch.full_like(FREQS, pivot), FREQS, pivot, base,
                           False)
    torch.testing.assert_close(at_pivot, torch.ones_like(FREQS))
    # Above 1 exactly below the pivot (b >= 2 keeps b - f >= 1).
    below, above = p < pivot - 1e-9, p > pivot + 1e-9
    assert (w[below] > 1).all() and (w[above] < 1).all()
    # Reciprocal about the pivot: Omega(p) * Omega(2 pivot - p) = 1.
    mirrored = ccar_weight(2 * pivot - p, f, pivot, base, False)
    torch.testing.assert_close(w * mirrored, torch.ones_like(w))
    # log Omega is linear in p_t, with slope -log(b - f).
    torch.testing.assert_close(w.log(), (pivot - p) * torch.log(b - f))
    # A vanishing class frequency leaves b ** (pivot - p_t).
    torch.testing.assert_close(
        ccar_weight(PROBS, 0.0, pivot, base, False), b**(pivot - PROBS))
    # Rarer classes: larger weights below the pivot, and (single phase)
    # stronger damping above it.
    below, above = w[below[:, 0]], w[above[:, 0]]
    assert (below[:, :-1] > below[:, 1:]).all()
    assert (above[:, :-1] < above[:, 1:]).all()
    # Bounded by [1/b, b].
    assert (w >= 1 / b - 1e-12).all() and (w <= b + 1e-12).all()


def test_dual_phase_is_single_phase_with_complement_above_pivot():
    p, f, dual = grid(dual_phase=True)
    single = ccar_weight(p, f, dual_phase=False)
    complement = ccar_weight(p, 1 - f, dual_phase=False)
    below = p < 0.75
    torch.testing.assert_close(dual[below], single[below])
    torch.testing.assert_close(dual[~below], complement[~below])
    # Continuous at the pivot, and above it common classes are damped most.
    near = ccar_weight(torch.full_like(FREQS, 0.75 - 1e-9), FREQS)
    torch.testing.assert_close(near, torch.ones_like(FREQS))
    above = dual[p[:, 0] > 0.75]
    assert (above[:, :-1] > above[:, 1:]).all()


@pytest.mark.parametrize('kwargs,match', [
    (dict(base='pi'), "expected 'e'"),
    (dict(base=1.5), '>= 2'),
    (dict(base=float('inf')), 'finite'),
    (dict(pivot=1.5), 'pivot'),
    (dict(pivot=-0.1), 'pivot'),
    (dict(logit_adjust='focal'), 'logit_adjust'),
    (dict(tau=0.5), 'tau'),
    (dict(logit_adjust='balanced_softmax', tau=2.0), 'tau'),
    (dict(confidence='model'), 'confidence'),
    (dict(loss_name='ccar'), "start with 'loss_'"),
    (dict(reduction='avg'), 'reduction'),
])
def test_bad_arguments_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CCARLoss(FREQ, **kwargs)


def test_zero_frequency_and_unresolved_auto_are_rejected():
    with pytest.raises(ValueError, match=r'classes \[2\].*never'):
        CCARLoss([10, 5, 0, 1])
    with pytest.raises(ValueError, match="'auto'.*runner"):
        CCARLoss('auto')


def test_shape_errors_are_clear():
    loss = CCARLoss(FREQ)
    with pytest.raises(ValueError, match='4 classes but class_freq has 5'):
        loss(torch.randn(3, 4), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match='hard labels must have shape'):
        loss(torch.randn(3, 5), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match='soft labels'):
        loss(torch.randn(3, 5), torch.rand(3, 4))


def naive_ccar(logits, labels, freq, pivot=0.75, base=E, dual_phase=True,
               tau=0.0, raw_confidence=False, ignore_index=None):
    """Per-sample loop in Python floats: mean of Omega * CE over the
    samples that are not ignored."""
    total, count = 0.0, 0
    for z, y in zip(logits.tolist(), labels.tolist()):
        if y == ignore_index:
            continue
        adj = [zc + tau * math.log(fc) for zc, fc in zip(z, freq)]
        log_norm = math.log(sum(math.exp(a) for a in adj))
        ce = log_norm - adj[y]
        if raw_confidence:
            p_t = math.exp(z[y]) / sum(math.exp(zc) for zc in z)
        else:
            p_t = math.exp(-ce)
        f = freq[y] if (p_t < pivot or not dual_phase) else 1 - freq[y]
        total += (base - f)**(pivot - p_t) * ce
        count += 1
    return total / max(count, 1)


def random_case(n=40, c=5, seed=0, scale=2.0):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, generator=gen, dtype=torch.float64) * scale
    labels = torch.randint(0, c, (n, ), generator=gen)
    return logits, labels


@pytest.mark.parametrize('kwargs,naive_kwargs', [
    (dict(), dict()),
    (dict(dual_phase=False), dict(dual_phase=False)),
    (dict(pivot=0.5, base=3.0), dict(pivot=0.5, base=3.0)),
    (dict(logit_adjust='la', tau=0.5), dict(tau=0.5)),
    (dict(logit_adjust='balanced_softmax'), dict(tau=1.0)),
    (dict(logit_adjust='la', confidence='raw'),
     dict(tau=1.0, raw_confidence=True)),
])
def test_loss_equals_naive_loop(kwargs, naive_kwargs):
    logits, labels = random_case()
    # Confident samples too, so that both phases are exercised.
    logits[::3] += 6 * F.one_hot(labels[::3], 5)
    loss = CCARLoss(FREQ, **kwargs)(logits, labels)
    expected = naive_ccar(logits, labels, FREQ, **naive_kwargs)
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    probs = F.softmax(logits, 1).gather(1, labels[:, None])
    assert (probs < 0.75).any() and (probs > 0.75).any()


def test_plain_function_and_counts_give_the_module_loss():
    logits, labels = random_case()
    freq = torch.tensor(FREQ, dtype=torch.float64)
    module = CCARLoss([f * 1000 for f in FREQ], reduction='none')
    torch.testing.assert_close(
        module(logits, labels), ccar_loss(logits, labels, freq))


def test_reductions_weight_and_avg_factor():
    logits, labels = random_case()
    per_sample = CCARLoss(FREQ, reduction='none')(logits, labels)
    assert per_sample.shape == (40, )
    loss = CCARLoss(FREQ, loss_weight=2.0)
    torch.testing.assert_close(loss(logits, labels), 2 * per_sample.mean())
    torch.testing.assert_close(
        loss(logits, labels, reduction_override='sum'), 2 * per_sample.sum())
    weight = torch.rand(40, dtype=torch.float64)
    torch.testing.assert_close(
        loss(logits, labels, weight=weight, avg_factor=10),
        2 * (weight * per_sample).sum() / 10)


def test_gradients_match_finite_differences():
    logits, labels = random_case(n=12, scale=1.5)
    logits[::4] += 4 * F.one_hot(labels[::4], 5)
    # detach_weight=True is not the gradient of the loss by design; see
    # test_detached_weight_scales_the_cross_entropy_gradient.
    for kwargs in (dict(), dict(logit_adjust='la', tau=0.7),
                   dict(dual_phase=False),
                   dict(logit_adjust='balanced_softmax', confidence='raw')):
        loss = CCARLoss(FREQ, **kwargs)
        assert torch.autograd.gradcheck(
            lambda z, loss=loss: loss(z, labels),
            logits.clone().requires_grad_())
    seg_logits = torch.randn(2, 5, 3, 3, dtype=torch.float64)
    seg_labels = torch.randint(0, 5, (2, 3, 3))
    seg_labels[0, 0] = 255
    loss = CCARLoss(FREQ, ignore_index=255)
    assert torch.autograd.gradcheck(lambda z: loss(z, seg_labels),
                                    seg_logits.requires_grad_())


def test_detached_weight_scales_the_cross_entropy_gradient():
    logits, labels = random_case()
    z = logits.clone().requires_grad_()
    CCARLoss(FREQ, detach_weight=True, reduction='sum')(z, labels).backward()
    ce_grad = F.softmax(logits, 1) - F.one_hot(labels, 5)
    p_t = F.softmax(logits, 1).gather(1, labels[:, None]).squeeze(1)
    omega = ccar_weight(p_t, torch.tensor(FREQ, dtype=torch.float64)[labels])
    torch.testing.assert_close(z.grad, omega[:, None] * ce_grad)
    # Without detaching, Omega's own derivative adds to it.
    z.grad = None
    CCARLoss(FREQ, reduction='sum')(z, labels).backward()
    assert not torch.allclose(z.grad, omega[:, None] * ce_grad)


def seg_case(seed=0):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 5, 6, 7, generator=gen, dtype=torch.float64) * 2
    labels = torch.randint(0, 5, (2, 6, 7), generator=gen)
    ignored = torch.rand(2, 6, 7, generator=gen) < 0.3
    labels[ignored] = 255
    return logits, labels, ignored


@pytest.mark.parametrize('logit_adjust', [None, 'la'])
def test_segmentation_equals_naive_loop_over_valid_pixels(logit_adjust):
    logits, labels, _ = seg_case()
    loss = CCARLoss(FREQ, logit_adjust=logit_adjust)(
        logits, labels, ignore_index=255)
    flat_logits = logits.permute(0, 2, 3, 1).reshape(-1, 5)
    expected = naive_ccar(
        flat_logits,
        labels.flatten(),
        FREQ,
        tau=1.0 if logit_adjust else 0.0,
        ignore_index=255)
    assert loss.item() == pytest.approx(expected, rel=1e-12)


def test_ignored_pixels_do_not_change_the_loss():
    logits, labels, ignored = seg_case()
    loss = CCARLoss(FREQ, ignore_index=255)
    z = logits.clone().requires_grad_()
    reference = loss(z, labels)
    reference.backward()
    assert (z.grad.permute(0, 2, 3, 1)[ignored] == 0).all()
    # Other logits at ignored pixels: same loss.
    changed = logits.clone().permute(0, 2, 3, 1)
    changed[ignored] = 1e4 * torch.randn_like(changed[ignored])
    assert loss(changed.permute(0, 3, 1, 2), labels).item() == \
        pytest.approx(reference.item(), rel=1e-12)
    # The call-time ignore_index (mmseg passes its own) wins.
    assert CCARLoss(FREQ)(logits, labels, ignore_index=255).item() == \
        pytest.approx(reference.item(), rel=1e-12)
    # The mean runs over the valid pixels only.
    per_pixel = CCARLoss(FREQ, ignore_index=255, reduction='none')(
        logits, labels)
    assert per_pixel.shape == (2, 6, 7) and (per_pixel[ignored] == 0).all()
    assert reference.item() == pytest.approx(
        per_pixel.sum().item() / (~ignored).sum().item(), rel=1e-12)
    # Any ignore value works, in or out of the class range.
    for other in (-1, 0):
        relabelled = labels.clone()
        relabelled[ignored] = other
        if other == 0:
            relabelled[~ignored & (labels == 0)] = 1
            expected = CCARLoss(FREQ)(
                logits, labels.masked_fill(labels == 0, 1),
                ignore_index=255)
        else:
            expected = reference
        assert CCARLoss(FREQ, ignore_index=other)(
            logits, relabelled).item() == pytest.approx(
                expected.item(), rel=1e-12)
    # All pixels ignored: 0, not NaN.
    assert loss(logits, torch.full_like(labels, 255)).item() == 0


def test_soft_labels_are_linear_like_mixup():
    logits, labels = random_case()
    other = labels.roll(1)
    lam = 0.3
    loss = CCARLoss(FREQ, reduction='none')
    soft = lam * F.one_hot(labels, 5) + (1 - lam) * F.one_hot(other, 5)
    torch.testing.assert_close(
        loss(logits, soft.double()),
        lam * loss(logits, labels) + (1 - lam) * loss(logits, other))
    # One-hot soft labels equal hard labels, with a logit adjustment too.
    la = CCARLoss(FREQ, logit_adjust='la', tau=0.5, reduction='none')
    torch.testing.assert_close(
        la(logits, F.one_hot(labels, 5).double()), la(logits, labels))


LARGE = [
    dict(),
    dict(dual_phase=False),
    dict(logit_adjust='la'),
    dict(logit_adjust='balanced_softmax', confidence='raw'),
]


def extreme_case(dtype=torch.float32):
    logits, labels = random_case(n=30)
    logits = (logits.sign() * 1e4).to(dtype)
    logits[:10] = 0
    logits[10:20, :] = -1e4
    logits[10:20, 0] = 1e4
    return logits, labels


@pytest.mark.parametrize('kwargs', LARGE)
def test_finite_for_logits_of_magnitude_1e4(kwargs):
    logits, labels = extreme_case()
    z = logits.requires_grad_()
    loss = CCARLoss(FREQ, **kwargs)(z, labels)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()
    soft = F.softmax(torch.randn(30, 5), 1)
    z.grad = None
    CCARLoss(FREQ, **kwargs)(z, soft).backward()
    assert torch.isfinite(z.grad).all()


def autocast_dtypes():
    dtypes = [torch.bfloat16]
    try:
        with torch.autocast('cpu', dtype=torch.float16):
            torch.nn.functional.linear(torch.randn(2, 2), torch.randn(2, 2))
        dtypes.append(torch.float16)
    except RuntimeError:
        pass
    return dtypes


@pytest.mark.parametrize('dtype', autocast_dtypes(), ids=str)
@pytest.mark.parametrize('kwargs', LARGE)
def test_finite_under_autocast(dtype, kwargs):
    fc = torch.nn.Linear(8, 5)
    with torch.no_grad():
        fc.weight.mul_(1e4)
    x = torch.randn(30, 8)
    labels = torch.randint(0, 5, (30, ))
    with torch.autocast('cpu', dtype=dtype):
        logits = fc(x)
        assert logits.dtype == dtype
        loss = CCARLoss(FREQ, **kwargs)(logits, labels)
    loss.backward()
    assert 5e3 < logits.abs().max() < 6e4
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert torch.isfinite(fc.weight.grad).all()
    # Half-precision logits give the float32 loss of their values.
    reference = CCARLoss(FREQ, **kwargs)(logits.detach().float(), labels)
    torch.testing.assert_close(loss.detach(), reference)


def test_half_precision_extremes():
    for dtype in (torch.float16, torch.bfloat16):
        logits, labels = extreme_case(dtype)
        z = logits.requires_grad_()
        loss = CCARLoss(FREQ)(z, labels)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(z.grad).all()


def test_mmpretrain_head_uses_it_with_hard_and_mixed_labels():
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    from mmpretrain.structures import DataSample
    init_default_scope('mmpretrain')
    head = MODELS.build(
        dict(
            type='LinearClsHead',
            num_classes=5,
            in_channels=8,
            loss=dict(type='CCARLoss', class_freq=FREQ)))
    feats = (torch.randn(4, 8), )
    samples = [DataSample().set_gt_label(i) for i in (0, 1, 4, 2)]
    losses = head.loss(feats, samples)
    logits = head(feats)
    expected = naive_ccar(logits.double(), torch.tensor([0, 1, 4, 2]), FREQ)
    assert losses['loss'].item() == pytest.approx(expected, rel=1e-5)
    # Batch augmentations put soft scores in gt_score.
    mixed = [
        DataSample().set_gt_label(i).set_gt_score(
            torch.full((5, ), 0.2)) for i in range(4)
    ]
    head.cal_acc = False
    assert torch.isfinite(head.loss(feats, mixed)['loss'])


def test_mmseg_decode_head_uses_it_with_its_ignore_index():
    from mmengine.registry import init_default_scope
    from mmengine.structures import PixelData
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample
    init_default_scope('mmseg')
    head = MODELS.build(
        dict(
            type='FCNHead',
            in_channels=4,
            channels=4,
            num_convs=1,
            num_classes=5,
            norm_cfg=None,
            dropout_ratio=0.0,
            loss_decode=[
                dict(type='CCARLoss', class_freq=FREQ),
                dict(type='CrossEntropyLoss', loss_weight=0.0)
            ]))
    feats = [torch.randn(2, 4, 6, 7)]
    logits, labels, ignored = seg_case()
    samples = []
    for lab in labels:
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=lab[None])
        samples.append(sample)
    losses = head.loss_by_feat(head(feats), samples)
    assert set(losses) >= {'loss_ccar', 'loss_ce'}
    seg_logits = head(feats)
    expected = naive_ccar(
        seg_logits.double().permute(0, 2, 3, 1).reshape(-1, 5),
        labels.flatten(), FREQ, ignore_index=255)
    assert losses['loss_ccar'].item() == pytest.approx(expected, rel=1e-5)


def test_plain_function_validates_class_freq():
    logits, labels = random_case(c=3)
    # Counts, a list or a tensor of counts: the frequencies they stand for.
    counts = [50, 30, 20]
    want = naive_ccar(logits, labels, [0.5, 0.3, 0.2])
    for given in (counts, torch.tensor(counts), [0.5, 0.3, 0.2]):
        got = ccar_loss(logits, labels, given).mean().item()
        assert got == pytest.approx(want, rel=1e-12)
    with pytest.raises(ValueError, match=r'ccar_loss\.class_freq.*\[1\]'):
        ccar_loss(logits, labels, torch.tensor([0.5, 0.0, 0.5]),
                  logit_adjust='la')
    with pytest.raises(ValueError, match=r'ccar_loss\.class_freq has 5 '
                       r'entries.*num_classes=3'):
        ccar_loss(logits, labels, [0.2] * 5)


@pytest.mark.parametrize('freq', [3.0, -0.1, float('nan'), [0.5, 1.5]])
def test_weight_rejects_frequencies_outside_unit_interval(freq):
    with pytest.raises(ValueError, match=r'freq_true.*\[0, 1\]'):
        ccar_weight(torch.tensor([0.2, 0.9]), torch.tensor(freq))


@pytest.mark.parametrize('ignore_index', [None, 255])
@pytest.mark.parametrize('bad', [-100, 5, -1])
def test_out_of_range_hard_labels_are_rejected(ignore_index, bad):
    """-100 is F.cross_entropy's default ignore index; with no ignore_index
    it must not be silently dropped."""
    logits, labels = random_case(n=6)
    labels[2] = bad
    if ignore_index is not None:
        labels[4] = ignore_index  # not the culprit, and not in the message
    for loss in (CCARLoss(FREQ, ignore_index=ignore_index),
                 CCARLoss(FREQ, ignore_index=ignore_index,
                          logit_adjust='la', confidence='raw'),
                 lambda z, y: ccar_loss(z, y, FREQ,
                                        ignore_index=ignore_index)):
        with pytest.raises(ValueError, match=rf'labels \[{bad}\] are '
                           r'outside \[0, 5\)'):
            loss(logits, labels)


def naive_ccar_per_sample(z, labels, freq):
    """Omega * CE per sample from the formula, fully in autograd."""
    log_p = torch.log_softmax(z, 1).gather(1, labels[:, None]).squeeze(1)
    p_t = log_p.exp()
    f = torch.tensor(freq, dtype=z.dtype)[labels]
    f = torch.where(p_t < 0.75, f, 1 - f)
    return (E - f)**(0.75 - p_t) * -log_p


@pytest.mark.parametrize('kwargs', [dict(), dict(logit_adjust='la', tau=0.7),
                                    dict(detach_weight=True)])
def test_unfused_gives_the_same_value_and_gradient(kwargs):
    logits, labels = random_case()
    logits[::3] += 6 * F.one_hot(labels[::3], 5)
    results = []
    for fused in (True, False):
        z = logits.clone().requires_grad_()
        loss = CCARLoss(FREQ, fused=fused, **kwargs)(z, labels)
        loss.backward()
        results.append((loss.detach(), z.grad))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-14,
                               atol=0)
    torch.testing.assert_close(results[0][1], results[1][1])


def test_unfused_second_derivatives_are_exact():
    logits, labels = random_case(n=6, scale=1.5)
    logits[::3] += 4 * F.one_hot(labels[::3], 5)
    loss = CCARLoss(FREQ, fused=False)
    assert torch.autograd.gradgradcheck(
        lambda z: loss(z, labels), logits.clone().requires_grad_())
    seg_logits = torch.randn(2, 5, 2, 2, dtype=torch.float64)
    seg_labels = torch.randint(0, 5, (2, 2, 2))
    seg_labels[0, 0, 0] = 255
    seg_loss = CCARLoss(FREQ, ignore_index=255, fused=False)
    assert torch.autograd.gradgradcheck(
        lambda z: seg_loss(z, seg_labels), seg_logits.requires_grad_())
    # Against the formula written out in autograd: the Hessian-vector
    # product of a gradient penalty.
    z = logits.clone().requires_grad_()
    g, = torch.autograd.grad(loss(z, labels), z, create_graph=True)
    hvp, = torch.autograd.grad(g.square().sum(), z)
    z2 = logits.clone().requires_grad_()
    g2, = torch.autograd.grad(
        naive_ccar_per_sample(z2, labels, FREQ).mean(), z2, create_graph=True)
    want, = torch.autograd.grad(g2.square().sum(), z2)
    torch.testing.assert_close(hvp, want)
