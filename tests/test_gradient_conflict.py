"""The gradient conflict library against independent computations: the
per-class loop of autograd.grad calls, closed forms and hand-worked cases."""
import gc
import os
import weakref

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmimb.analysis import (class_gradients, conflict_matrix,
                            cosine_from_gram, gradient_conflict, summarize)
from mmimb.analysis.sketch import count_sketch

RTOL = 1e-5


class SmallCNN(nn.Module):
    """Conv, BatchNorm, strided dilated depthwise conv, grouped conv with
    'same' reflect padding, Conv1d, a Linear followed by an in-place ReLU
    and a Linear head."""

    def __init__(self, num_classes=6):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.depthwise = nn.Conv2d(
            8, 16, 3, stride=2, padding=2, dilation=2, groups=8)
        self.grouped = nn.Conv2d(
            16, 12, 3, padding='same', groups=4, padding_mode='reflect')
        self.conv1d = nn.Conv1d(12, 6, 3, padding=1, bias=False)
        self.hidden = nn.Linear(6, 10)
        self.head = nn.Linear(10, num_classes)

    def forward(self, x):
        x = F.relu(self.bn(self.conv(x)), inplace=True)
        x = F.relu(self.depthwise(x))
        x = self.grouped(x)
        x = self.conv1d(x.flatten(2)).mean(2)
        return self.head(F.relu(self.hidden(x), inplace=True))


class SmallSeg(nn.Module):
    """A strided conv encoder with GroupNorm (which couples pixels), a
    residual depthwise conv, a 1x1 fusion conv and a 1x1 classifier whose
    logits are at half resolution."""

    def __init__(self, num_classes=4):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.norm = nn.GroupNorm(2, 8)
        self.depthwise = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.fuse = nn.Conv2d(8, 8, 1)
        self.conv_seg = nn.Conv2d(8, num_classes, 1)

    def forward(self, x):
        x = F.relu(self.norm(self.stem(x)))
        x = F.relu(self.depthwise(x)) + x
        return self.conv_seg(F.relu(self.fuse(x)))


def classification_batch(n=24, classes=5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 8, 8, generator=gen)
    y = torch.randint(0, classes, (n, ), generator=gen)
    return x, y


def segmentation_batch(n=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 16, 16, generator=gen)
    y = torch.randint(0, 3, (n, 16, 16), generator=gen)
    y[0, :5] = 255
    return x, y


def assert_rows_close(reference, other, present):
    ref, got = reference[present], other[present]
    err = (ref - got).norm(dim=1) / ref.norm(dim=1).clamp(min=1e-30)
    assert err.max().item() <= RTOL, err


def assert_same_gradients(loop, fast):
    assert loop.layers == fast.layers
    assert torch.equal(loop.counts, fast.counts)
    for name in loop.layers:
        assert_rows_close(loop.grads[name], fast.grads[name], loop.present)
        assert fast.grads[name][~fast.present].isnan().all()


@pytest.fixture
def cnn():
    torch.manual_seed(0)
    return SmallCNN()


@pytest.fixture
def seg():
    torch.manual_seed(0)
    return SmallSeg()


def test_fast_equals_loop_on_a_cnn(cnn):
    batch = classification_batch()
    loop = class_gradients(cnn, batch, mode='loop')
    fast = class_gradients(cnn, batch, mode='fast')
    assert fast.layers == ['conv', 'bn', 'depthwise', 'grouped', 'conv1d',
                           'hidden', 'head']
    assert_same_gradients(loop, fast)
    a, b = conflict_matrix(loop), conflict_matrix(fast)
    for name in a.per_layer:
        torch.testing.assert_close(
            a.per_layer[name], b.per_layer[name], rtol=RTOL, atol=RTOL,
            equal_nan=True)


@pytest.mark.parametrize('align_corners', [False, True])
def test_fast_equals_loop_on_a_segmentation_model(seg, align_corners):
    batch = segmentation_batch()
    kwargs = dict(ignore_index=255, align_corners=align_corners)
    loop = class_gradients(seg, batch, mode='loop', **kwargs)
    fast = class_gradients(seg, batch, mode='fast', **kwargs)
    assert loop.present.tolist() == [True, True, True, False]
    # 5 ignored rows of 16 pixels are not counted.
    assert loop.counts.sum().item() == 3 * 16 * 16 - 5 * 16
    assert_same_gradients(loop, fast)


def test_segmentation_classifier_alone_needs_no_class_backward(seg):
    """The classifier's class gradients come from grouping pixels; check
    that path alone against the loop, and that the number of backward
    passes does not grow with the number of classes."""
    batch = segmentation_batch()
    loop = class_gradients(seg, batch, mode='loop', layers=['conv_seg'],
                           ignore_index=255)
    original = torch.autograd.grad

    def backward_passes(targets):
        calls = []

        def counting(*args, **kwargs):
            calls.append(1)
            return original(*args, **kwargs)

        torch.autograd.grad = counting
        try:
            result = class_gradients(seg, (batch[0], targets),
                                     layers=['conv_seg'], ignore_index=255)
        finally:
            torch.autograd.grad = original
        return result, len(calls)

    fast, three = backward_passes(batch[1])
    _, one = backward_passes(torch.zeros_like(batch[1]))
    assert three == one
    assert_same_gradients(loop, fast)


def test_gram_statistic_equals_the_gram_of_the_gradients(cnn):
    batch = classification_batch()
    grads = class_gradients(cnn, batch)
    gram = class_gradients(cnn, batch, statistic='gram')
    assert gram.grads is None
    for name, g in grads.gram_matrices().items():
        torch.testing.assert_close(gram.gram[name], g, rtol=RTOL, atol=1e-9,
                                   equal_nan=True)


@pytest.mark.parametrize('mode', ['fast', 'loop'])
@pytest.mark.parametrize('statistic', ['grads', 'gram'])
def test_activations_are_freed_after_the_analysis(cnn, mode, statistic):
    # The hook calls class_gradients again and again during training: any
    # activation it keeps alive is memory lost at every call.
    alive = []
    handle = cnn.head.register_forward_hook(
        lambda module, args, out: alive.extend(
            [weakref.ref(args[0]), weakref.ref(out)]))
    result = class_gradients(cnn, classification_batch(), mode=mode,
                             statistic=statistic)
    handle.remove()
    gc.collect()
    assert alive and all(ref() is None for ref in alive)
    assert result.present.any()


def test_wide_linear_gram_from_the_sample_kernel():
    """A wide linear layer on few samples takes the N x N kernel path; it
    must equal the Gram of the loop's gradients."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 300))
    x = torch.randn(6, 64)
    y = torch.tensor([0, 0, 3, 3, 7, 299])
    loop = class_gradients(model, (x, y), mode='loop')
    gram = class_gradients(model, (x, y), statistic='gram')
    rows = loop.present.nonzero().squeeze(1)
    for name, g in loop.grads.items():
        g = g[rows].double()
        torch.testing.assert_close(gram.gram[name][rows[:, None], rows],
                                   g @ g.T, rtol=RTOL, atol=1e-9)
        assert gram.gram[name][~loop.present].isnan().all()


def test_layer_called_twice_sums_both_calls():

    class Twice(nn.Module):

        def __init__(self):
            super().__init__()
            self.shared = nn.Linear(5, 5)
            self.head = nn.Linear(5, 3)

        def forward(self, x):
            return self.head(torch.tanh(self.shared(torch.tanh(
                self.shared(x)))))

    torch.manual_seed(0)
    model = Twice()
    batch = (torch.randn(10, 5), torch.arange(10) % 3)
    assert_same_gradients(
        class_gradients(model, batch, mode='loop'),
        class_gradients(model, batch))


def test_layers_off_the_path_to_the_inputs():
    """A layer fed only by parameters (a learned query) is not passed by a
    backward to the inputs; one the loss does not use has zero gradient."""

    class Query(nn.Module):

        def __init__(self):
            super().__init__()
            self.query = nn.Parameter(torch.randn(1, 4))
            self.proj = nn.Linear(4, 4)
            self.unused = nn.Linear(4, 4)
            self.head = nn.Linear(4, 3)

        def forward(self, x):
            x = 2 * x
            q = self.proj(self.query.expand(x.shape[0], 4))
            self.unused(x)
            return self.head(torch.tanh(x + q))

    torch.manual_seed(0)
    model = Query()
    batch = (torch.randn(9, 4), torch.arange(9) % 3)
    layers = ['proj', 'unused', 'head']
    loop = class_gradients(model, batch, mode='loop', layers=layers)
    fast = class_gradients(model, batch, layers=layers)
    assert_same_gradients(loop, fast)
    assert (fast.grads['unused'] == 0).all()
    # The model's own parameter (the query) feeds its submodules: per-sample
    # grouping cannot separate it, the loop can.
    default = class_gradients(model, batch)
    assert default.layers == layers and '' in default.coverage.skipped
    assert class_gradients(model, batch, mode='loop').layers == [''] + layers


def independent_class_gradients(model, x, y, layers):
    """``grad_theta mean_{n: y_n = c} CE(model(x_n), c)`` of every layer,
    one ``torch.autograd.grad`` per class on that class's samples alone, with
    the model in eval mode (as the library runs it). Layer name to (C, P),
    rows of absent classes NaN."""
    model.eval()
    modules = dict(model.named_modules())
    num_classes = model(x[:1]).shape[1]
    grads = {name: [] for name in layers}
    for c in range(num_classes):
        params = {name: [p for p in (modules[name].weight, modules[name].bias)
                         if p is not None] for name in layers}
        members = y == c
        if not members.any():
            for name in layers:
                size = sum(p.numel() for p in params[name])
                grads[name].append(torch.full((size, ), float('nan')))
            continue
        flat = [p for name in layers for p in params[name]]
        got = iter(torch.autograd.grad(
            F.cross_entropy(model(x[members]), y[members], reduction='mean'),
            flat))
        for name in layers:
            grads[name].append(
                torch.cat([next(got).flatten() for _ in params[name]]))
    return {name: torch.stack(rows) for name, rows in grads.items()}


def pairwise_cosines(g):
    return F.cosine_similarity(g[:, None], g[None], dim=-1)


@pytest.mark.parametrize('mode,statistic', [('loop', 'grads'),
                                            ('fast', 'grads'),
                                            ('fast', 'gram')])
def test_class_gradients_and_cosines_match_per_class_autograd(
        cnn, mode, statistic):
    """Against the documented definition computed independently: one
    autograd.grad of the mean cross-entropy of each class's samples, and
    F.cosine_similarity of those (per layer and over all layers)."""
    x, y = classification_batch()
    cg = class_gradients(cnn, (x, y), mode=mode, statistic=statistic)
    want = independent_class_gradients(cnn, x, y, cg.layers)
    present = torch.bincount(y, minlength=6) > 0
    assert cg.present.tolist() == present.tolist()
    if statistic == 'grads':
        for name in cg.layers:
            assert_rows_close(want[name], cg.grads[name], present)
    result = conflict_matrix(cg)
    both = present[:, None] & present[None]
    for name in cg.layers:
        expected = pairwise_cosines(want[name].double())
        torch.testing.assert_close(result.per_layer[name][both],
                                   expected[both], rtol=0, atol=1e-5)
        assert result.per_layer[name][~both].isnan().all()
    whole = pairwise_cosines(
        torch.cat([want[name] for name in cg.layers], dim=1).double())
    torch.testing.assert_close(result.matrix[both], whole[both], rtol=0,
                               atol=1e-5)
    assert result.matrix[~both].isnan().all()


def test_opposite_gradients_give_minus_one():
    """Two samples with the same input and two classes: the cross-entropy
    gradients (p - e_0) x^T and (p - e_1) x^T are opposite multiples."""
    model = nn.Linear(3, 2, bias=False)
    x = torch.tensor([[1.0, -2.0, 0.5]]).repeat(2, 1)
    y = torch.tensor([0, 1])
    for mode in ('fast', 'loop'):
        result = gradient_conflict(model, x, y, mode=mode)
        assert result.matrix[0, 1].item() == pytest.approx(-1, abs=1e-6)
        assert result.summary() == pytest.approx(
            dict(mean_cosine=-1, mean_negative_cosine=-1,
                 conflict_fraction=1), abs=1e-6)


def test_absent_classes_are_nan_and_reported(cnn):
    x, y = classification_batch(classes=4)
    result = gradient_conflict(cnn, x, y, num_classes=6)
    assert result.present.tolist() == [True] * 4 + [False] * 2
    assert result.absent_classes == [4, 5]
    assert result.matrix[4:].isnan().all() and result.matrix[:, 4:].isnan(
    ).all()
    assert result.matrix[:4, :4].isfinite().all()
    for name in result.per_layer:
        assert result.norms[name][4:].isnan().all()
        assert (result.norms[name][:4] > 0).all()
    assert result.class_conflict[4:].isnan().all()
    assert all(np.isfinite(v) for v in result.summary().values())


def test_class_subset_and_ignore_index(cnn):
    x, y = classification_batch()
    y[:4] = -1
    full = class_gradients(cnn, (x, y), ignore_index=-1, mode='loop')
    sub = class_gradients(cnn, (x, y), classes=[3, 1], ignore_index=-1)
    assert sub.classes.tolist() == [3, 1]
    for name in full.layers:
        assert_rows_close(full.grads[name][[3, 1]], sub.grads[name],
                          torch.tensor([True, True]))


def test_conflict_with_the_rest_and_norms_against_the_gradients(cnn):
    x, y = classification_batch(classes=4)
    grads = class_gradients(cnn, (x, y), mode='loop', num_classes=6)
    result = conflict_matrix(grads)
    whole = torch.cat([grads.grads[n] for n in grads.layers], dim=1).double()
    counts = grads.counts[:4, None].double()
    step = (counts * whole[:4]).sum(0)
    for c in range(4):
        rest = whole[[j for j in range(4) if j != c]].sum(0)
        expected = F.cosine_similarity(whole[c], rest, dim=0)
        assert result.class_conflict[c].item() == pytest.approx(
            expected.item(), rel=1e-6)
        weighted = F.cosine_similarity(whole[c], step, dim=0)
        assert result.weighted_class_conflict[c].item() == pytest.approx(
            weighted.item(), rel=1e-6)
        assert result.total_norm[c].item() == pytest.approx(
            whole[c].norm().item(), rel=1e-6)
    for name in grads.layers:
        torch.testing.assert_close(
            result.norms[name][:4], grads.grads[name][:4].double().norm(dim=1))


def test_summary_by_hand():
    cos = torch.tensor([[1.0, -0.5, 0.2, float('nan')],
                        [-0.5, 1.0, -0.1, float('nan')],
                        [0.2, -0.1, 1.0, float('nan')],
                        [float('nan')] * 4], dtype=torch.float64)
    assert summarize(cos) == pytest.approx(
        dict(mean_cosine=(-0.5 + 0.2 - 0.1) / 3,
             mean_negative_cosine=-0.3, conflict_fraction=2 / 3))
    gram = torch.tensor([[4.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    cos = cosine_from_gram(gram)
    assert cos[0, 0] == 1 and cos[1].isnan().all()


def test_merged_batches_equal_the_whole_batch(cnn):
    x, y = classification_batch(n=30)
    whole = class_gradients(cnn, (x, y))
    merged = class_gradients(cnn, (x[:11], y[:11])).merge(
        class_gradients(cnn, (x[11:], y[11:])))
    assert torch.equal(merged.counts, whole.counts)
    for name in whole.layers:
        assert_rows_close(whole.grads[name], merged.grads[name],
                          whole.present)


def test_autocast_is_disabled_inside(cnn):
    x, y = classification_batch()
    reference = gradient_conflict(cnn, x, y)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        under_amp = gradient_conflict(cnn, x, y)
    torch.testing.assert_close(under_amp.gram, reference.gram, rtol=1e-6,
                               atol=0, equal_nan=True)


def test_model_state_restored(cnn):
    cnn.train()
    cnn.bn.eval()
    for p in cnn.parameters():
        p.grad = torch.full_like(p, 3.0)
    stats = cnn.bn.running_mean.clone()
    for mode in ('fast', 'loop'):
        gradient_conflict(cnn, *classification_batch(), mode=mode)
    assert cnn.training and cnn.conv.training and not cnn.bn.training
    assert all((p.grad == 3).all() for p in cnn.parameters())
    assert torch.equal(cnn.bn.running_mean, stats)
    assert not cnn.depthwise._forward_hooks


def test_train_mode_batchnorm_uses_frozen_statistics(cnn):
    """The result is that of the eval-mode model, whatever mode it is in."""
    batch = classification_batch()
    cnn.eval()
    reference = class_gradients(cnn, batch, mode='loop')
    cnn.train()
    assert_same_gradients(reference, class_gradients(cnn, batch))


def test_sketch_exact_for_small_layers_and_close_for_large(cnn):
    batch = classification_batch()
    exact = conflict_matrix(class_gradients(cnn, batch))
    small = conflict_matrix(class_gradients(cnn, batch, mode='sketch',
                                            sketch_dim=10_000))
    torch.testing.assert_close(small.matrix, exact.matrix, equal_nan=True)
    sketched = conflict_matrix(class_gradients(cnn, batch, mode='sketch',
                                               sketch_dim=256))
    assert sketched.sketch_dim == 256
    # Only 'grouped' (444 weights) is larger than k = 256 and sketched.
    # Its cosines' typical error is about sqrt(2 / k) = 0.088 (module
    # docstring of mmimb.analysis.sketch); averaged over pairs and seeds it
    # must stay within that, and be nonzero (the layer really is sketched).
    present = exact.present[:, None] & exact.present[None]
    present &= ~torch.eye(len(present), dtype=torch.bool)
    errors = {'grouped': [], 'matrix': []}
    for seed in range(8):
        sketched = conflict_matrix(class_gradients(
            cnn, batch, mode='sketch', sketch_dim=256, seed=seed))
        errors['grouped'].append(
            (sketched.per_layer['grouped'] -
             exact.per_layer['grouped'])[present].abs().mean())
        errors['matrix'].append(
            (sketched.matrix - exact.matrix)[present].abs().mean())
        torch.testing.assert_close(sketched.per_layer['head'],
                                   exact.per_layer['head'], equal_nan=True)
    for name, errs in errors.items():
        mean = torch.stack(errs).mean().item()
        assert 0 < mean <= (2 / 256)**0.5, (name, mean)


def test_count_sketch_inner_products_unbiased_with_bounded_spread():
    gen = torch.Generator().manual_seed(0)
    u = torch.randn(2, 5000, generator=gen)
    u = u / u.norm(dim=1, keepdim=True)
    k = 512
    estimates = torch.stack([
        (lambda s: s[0] @ s[1])(count_sketch(u, k, seed, 'layer'))
        for seed in range(200)
    ])
    exact = (u[0] @ u[1]).item()
    assert estimates.mean().item() == pytest.approx(exact, abs=0.01)
    assert estimates.std().item() <= (2 / k)**0.5
    assert torch.equal(count_sketch(u, k, 3, 'a'), count_sketch(u, k, 3, 'a'))


def test_npz_round_trip(cnn, tmp_path):
    result = gradient_conflict(cnn, *classification_batch(), num_classes=6)
    path = tmp_path / 'out' / 'r.npz'
    result.to_npz(str(path), class_names=list('abcdef'), iteration=7)
    assert os.listdir(path.parent) == ['r.npz']
    with np.load(path) as data:
        assert data['per_layer'].shape == (7, 6, 6)
        assert list(data['layer_names']) == result.layers
        assert list(data['class_names']) == list('abcdef')
        assert int(data['iteration']) == 7
        np.testing.assert_array_equal(data['matrix'], result.matrix.numpy())


@pytest.mark.parametrize(
    'targets, kwargs, message',
    [(torch.rand(24), {}, 'integer class indices'),
     (torch.full((24, ), 9), {}, 'outside'),
     (torch.zeros(24, dtype=torch.long), dict(num_classes=5), 'channels'),
     (torch.zeros(24, dtype=torch.long), dict(norm_stats='eval'),
      'norm_stats'),
     (torch.zeros(24, dtype=torch.long), dict(layers=['hed']), "'head'"),
     (torch.zeros(24, dtype=torch.long), dict(mode='exact'), 'mode'),
     (torch.zeros(24, dtype=torch.long),
      dict(loss_fn=lambda x, y, reduction: F.cross_entropy(x, y)),
      'one loss per target')])
def test_bad_input_is_named(cnn, targets, kwargs, message):
    x, _ = classification_batch()
    with pytest.raises((ValueError, TypeError), match=message):
        gradient_conflict(cnn, x, targets, **kwargs)


def test_fast_refuses_layers_whose_rows_are_not_samples():

    class Flattened(nn.Module):

        def __init__(self):
            super().__init__()
            self.token = nn.Linear(4, 4)
            self.head = nn.Linear(8, 3)

        def forward(self, x):
            n = x.shape[0]
            return self.head(self.token(x.reshape(n * 2, 4)).reshape(n, 8))

    model = Flattened()
    batch = (torch.randn(6, 8), torch.arange(6) % 3)
    with pytest.raises(ValueError, match="layer 'token'"):
        class_gradients(model, batch)
    assert class_gradients(model, batch, mode='loop').layers == [
        'token', 'head'
    ]
