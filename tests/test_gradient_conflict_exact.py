"""Cases where a gradient conflict analysis could return a confident, wrong
number: each is compared with per-class autograd on each class's samples
alone (an independent computation), or must be refused with the layer's
name; and what the result says it covered."""
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrizations, parametrize

from mmimb.analysis import (GradientConflict, class_gradients,
                            conflict_matrix, gradient_conflict)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOL = 1e-5


def owned(model, name):
    """The parameters analysed with layer ``name``: its own, those of its
    parametrizations, and all of an nn.MultiheadAttention's."""
    module = model.get_submodule(name)
    if isinstance(module, nn.MultiheadAttention) or \
            parametrize.is_parametrized(module):
        return list(module.parameters())
    return list(module.parameters(recurse=False))


def reference(model, x, y, names, num_classes):
    """Layer name to (C, P): the gradient of the mean cross-entropy of each
    class's samples, from a forward of those samples alone (eval mode);
    NaN rows for absent classes."""
    model.eval()
    out = {name: [] for name in names}
    for c in range(num_classes):
        members = y == c
        params = [p for n in names for p in owned(model, n)]
        if not members.any():
            for n in names:
                size = sum(p.numel() for p in owned(model, n))
                out[n].append(torch.full((size, ), float('nan')))
            continue
        grads = iter(torch.autograd.grad(
            F.cross_entropy(model(x[members]), y[members]), params,
            allow_unused=True))
        for n in names:
            parts = [next(grads) for _ in owned(model, n)]
            out[n].append(torch.cat([
                (g if g is not None else torch.zeros_like(p)).flatten()
                for g, p in zip(parts, owned(model, n))]))
    return {n: torch.stack(rows) for n, rows in out.items()}


def assert_matches_reference(model, x, y, result, num_classes):
    want = reference(model, x, y, result.layers, num_classes)
    present = torch.bincount(y, minlength=num_classes) > 0
    got = result.grads
    for name in result.layers:
        ref = want[name][present]
        err = (got[name][present] - ref).norm(dim=1) / ref.norm(
            dim=1).clamp(min=1e-12)
        assert err.max().item() <= TOL, (name, err)


class SequenceFirst(nn.Module):
    """Tokens (N, L, E) transposed to (L, N, E): a sequence-first
    nn.MultiheadAttention and a Linear applied sequence-first."""

    def __init__(self, dim=8, classes=4):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, 2, batch_first=False)
        self.mix = nn.Linear(dim, dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        t = x.transpose(0, 1)
        t = t + self.attn(t, t, t)[0]
        t = torch.tanh(self.mix(t))
        return self.head(t.mean(0))


def sequence_batch(n=8, length=8, dim=8, classes=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, length, dim, generator=gen)
    y = torch.arange(n) % classes
    return x, y


def test_sequence_first_attention_with_length_equal_to_batch():
    """L = N = 8: dimension 0 of the Linear's input has the batch's size but
    is the sequence. The attention is exact (its sample dimension is known);
    the Linear is refused by name, or skipped and reported."""
    torch.manual_seed(0)
    model = SequenceFirst()
    x, y = sequence_batch()
    with pytest.raises(ValueError, match="layer 'mix'.*do not add up"):
        class_gradients(model, (x, y))
    result = class_gradients(model, (x, y), on_failure='skip')
    assert result.layers == ['attn', 'head']
    assert 'do not add up' in result.coverage.skipped['mix']
    assert_matches_reference(model, x, y, result, 4)
    # The whole-model matrix over what was analysed equals the reference's.
    want = reference(model, x, y, result.layers, 4)
    whole = torch.cat([want[n] for n in result.layers], 1).double()
    expected = F.cosine_similarity(whole[:, None], whole[None], dim=-1)
    torch.testing.assert_close(conflict_matrix(result).matrix, expected,
                               atol=TOL, rtol=0)
    # The loop analyses everything exactly.
    loop = class_gradients(model, (x, y), mode='loop')
    assert loop.layers == ['attn', 'mix', 'head']
    assert_matches_reference(model, x, y, loop, 4)


def test_equal_class_counts_cannot_hide_a_wrong_grouping():
    """With every class equally frequent, count-weighted sums of wrongly
    grouped gradients still add up; the random factors catch it."""
    torch.manual_seed(0)
    model = SequenceFirst(classes=2)
    x, y = sequence_batch(classes=2)
    assert torch.bincount(y).tolist() == [4, 4]
    with pytest.raises(ValueError, match="layer 'mix'"):
        class_gradients(model, (x, y))


def _mmcv_convs():
    from mmcv.cnn.bricks.conv2d_adaptive_padding import \
        Conv2dAdaptivePadding
    from mmcv.cnn.bricks.conv_ws import ConvAWS2d, ConvWS2d
    return ConvWS2d, ConvAWS2d, Conv2dAdaptivePadding


@pytest.mark.parametrize('index', [0, 1, 2])
def test_conv_subclasses_with_their_own_forward(index):
    """mmcv's weight-standardised and adaptively padded convolutions are
    nn.Conv2d subclasses whose forward differs: no closed form of nn.Conv2d
    may be applied to them."""
    conv_type = _mmcv_convs()[index]
    torch.manual_seed(0)
    model = nn.Sequential(
        conv_type(3, 6, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(6, 3))
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(12, 3, 9, 9, generator=gen)
    y = torch.arange(12) % 3
    result = class_gradients(model, (x, y))
    assert result.layers == ['0', '4']
    assert_matches_reference(model, x, y, result, 3)


@pytest.mark.parametrize('kind', ['weight_norm', 'spectral_norm', 'old'])
def test_parametrized_weights_are_analysed_exactly(kind):
    torch.manual_seed(0)
    conv, linear = nn.Conv2d(3, 5, 3), nn.Linear(5, 4)
    if kind == 'old':
        conv = torch.nn.utils.weight_norm(conv)
    else:
        getattr(parametrizations, kind)(conv)
    getattr(parametrizations, 'weight_norm')(linear)
    model = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), linear)
    x = torch.randn(10, 3, 7, 7)
    y = torch.arange(10) % 4
    result = class_gradients(model, (x, y))
    assert result.layers == ['0', '4']
    assert result.coverage.fraction == 1.0
    assert result.sizes['0'] == sum(p.numel() for p in conv.parameters())
    assert_matches_reference(model, x, y, result, 4)


class Block(nn.Module):
    """A pre-norm transformer block on (N, L, E) tokens, with a learned
    layer scale, then mean pooling and a head."""

    def __init__(self, dim=8, classes=5):
        super().__init__()
        self.block = nn.ModuleDict(dict(
            norm1=nn.LayerNorm(dim), attn=nn.MultiheadAttention(
                dim, 2, batch_first=True), norm2=nn.LayerNorm(dim),
            fc1=nn.Linear(dim, 16), fc2=nn.Linear(16, dim)))
        self.norm = nn.GroupNorm(2, dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        b = self.block
        h = b.norm1(x)
        x = x + b.attn(h, h, h, need_weights=False)[0]
        x = x + b.fc2(F.gelu(b.fc1(b.norm2(x))))
        x = self.norm(x.transpose(1, 2)).mean(2)
        return self.head(x)


def test_attention_and_norm_layers_match_per_class_autograd():
    torch.manual_seed(0)
    model = Block()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16, 6, 8, generator=gen)
    y = torch.randint(0, 5, (16, ), generator=gen)
    result = class_gradients(model, (x, y))
    assert result.layers == ['block.norm1', 'block.attn', 'block.norm2',
                             'block.fc1', 'block.fc2', 'norm', 'head']
    assert result.coverage.fraction == 1.0 and not result.coverage.skipped
    assert_matches_reference(model, x, y, result, 5)
    gram = class_gradients(model, (x, y), statistic='gram')
    for name, g in result.gram_matrices().items():
        torch.testing.assert_close(gram.gram[name], g, rtol=1e-5, atol=1e-9,
                                   equal_nan=True)


class NormZoo(nn.Module):
    """BatchNorm (1d and 2d), InstanceNorm with running statistics, and the
    layers around them."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3)
        self.bn = nn.BatchNorm2d(6)
        self.inorm = nn.InstanceNorm2d(6, affine=True,
                                       track_running_stats=True)
        self.fc = nn.Linear(6, 6)
        self.bn1d = nn.BatchNorm1d(6)
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        x = self.inorm(F.relu(self.bn(self.conv(x))))
        return self.head(F.relu(self.bn1d(self.fc(x.mean((2, 3))))))


def test_norm_affine_parameters_match_per_class_autograd():
    torch.manual_seed(0)
    model = NormZoo()
    with torch.no_grad():
        for m in (model.bn, model.bn1d, model.inorm):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.5, 0.5)
    x, y = torch.randn(15, 3, 6, 6), torch.arange(15) % 3
    result = class_gradients(model, (x, y))
    assert result.coverage.fraction == 1.0
    assert_matches_reference(model, x, y, result, 3)


def test_class_wise_layers_of_csba_and_dfa():
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS

    from mmimb.models.layers import ClassWiseLinear
    import mmimb.models  # noqa: F401 (registers the CSBA neck and head)
    torch.manual_seed(0)
    # Earlier tests may leave mmseg as the default scope, which would make
    # mmpretrain's registry look its types up in mmseg's.
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(dict(
            type='ImageClassifier',
            backbone=dict(type='ResNet_CIFAR', depth=18, num_stages=1,
                          stem_channels=8, base_channels=8, strides=(1, ),
                          dilations=(1, ), out_indices=(0, )),
            neck=dict(type='CSBANeck', in_channels=8, num_classes=4,
                      out_channels=6),
            head=dict(type='ClassWiseLinearClsHead', num_classes=4,
                      in_channels=6)))
    with torch.no_grad():
        model.neck.attention.expand.weight.normal_(0, 0.5)
    x, y = torch.randn(12, 3, 8, 8), torch.arange(12) % 4
    result = class_gradients(model, (x, y))
    assert 'head' in result.layers
    assert result.coverage.fraction == 1.0
    assert_matches_reference(model, x, y, result, 4)

    class Tokens(nn.Module):

        def __init__(self):
            super().__init__()
            self.fc = ClassWiseLinear(3, 4, 5)

        def forward(self, x):
            return self.fc(x).sum(2)

    tokens = Tokens()
    x, y = torch.randn(9, 3, 4), torch.arange(9) % 3
    result = class_gradients(tokens, (x, y))
    assert_matches_reference(tokens, x, y, result, 3)


def test_container_names_stand_for_every_layer_inside():
    torch.manual_seed(0)
    model = Block()
    x, y = torch.randn(10, 6, 8), torch.arange(10) % 5
    inside = ['block.norm1', 'block.attn', 'block.norm2', 'block.fc1',
              'block.fc2']
    for mode in ('loop', 'fast'):
        result = class_gradients(model, (x, y), mode=mode, layers=['block'])
        assert result.layers == inside, mode
        assert_matches_reference(model, x, y, result, 5)
    with pytest.raises(ValueError, match="part of the layer 'block.attn'"):
        class_gradients(model, (x, y), layers=['block.attn.out_proj'])


def test_loop_mode_takes_modules_with_several_outputs():
    torch.manual_seed(0)
    model = SequenceFirst()
    x, y = sequence_batch(n=6)
    result = class_gradients(model, (x, y), mode='loop', layers=['attn'])
    assert result.layers == ['attn']
    assert_matches_reference(model, x, y, result, 4)


def test_coverage_and_skipped_layers_are_reported(tmp_path):

    class Embedded(nn.Module):
        """A learned position embedding owned by the model itself."""

        def __init__(self):
            super().__init__()
            self.pos = nn.Parameter(torch.randn(1, 4))
            self.net = nn.Sequential(nn.Linear(4, 4), nn.ReLU(),
                                     nn.Linear(4, 3))
            self.unused = nn.Linear(4, 4)

        def forward(self, x):
            return self.net(x + self.pos)

    model = Embedded()
    x, y = torch.randn(9, 4), torch.arange(9) % 3
    result = gradient_conflict(model, x, y)
    cover = result.coverage
    assert cover.total == 4 + 20 + 15 + 20
    assert cover.analysed == 20 + 15
    assert cover.fraction == pytest.approx(35 / 59)
    assert set(result.skipped) == {'', 'unused'}
    assert 'not used' in result.skipped['unused']
    path = str(tmp_path / 'r.npz')
    result.to_npz(path)
    with np.load(path) as data:
        assert float(data['coverage']) == pytest.approx(35 / 59)
        assert sorted(data['skipped_names']) == ['', 'unused']
        assert data['skipped_names'].dtype.kind == 'U'
    loaded = GradientConflict.from_npz(path)
    assert loaded.coverage == cover
    torch.testing.assert_close(loaded.matrix, result.matrix, equal_nan=True)
    assert gradient_conflict(model, x, y, mode='loop').coverage.skipped == {
        'unused': 'not used by model(inputs)'}


def test_rows_only_for_present_classes():
    model = nn.Linear(6, 1000)
    x, y = torch.randn(8, 6), torch.tensor([3, 3, 7, 7, 7, 999, 3, 7])
    result = class_gradients(model, (x, y))
    assert result.sums[''].shape == (3, 7000)
    assert result.rows[''].tolist() == [3, 7, 999]
    assert result.grads[''].shape == (1000, 7000)


def test_batch_statistics_decompose_the_training_gradient():
    """With norm_stats='batch', the count-weighted class gradients add up to
    the gradient of a training step's loss (BatchNorm with batch statistics)
    and the running statistics stay untouched."""
    from copy import deepcopy

    from test_gradient_conflict import SmallCNN
    torch.manual_seed(0)
    model = SmallCNN()
    model.train()
    x, y = torch.randn(20, 3, 8, 8), torch.arange(20) % 6
    train = deepcopy(model)
    params = [p for n, p in train.named_parameters()
              if n.split('.')[0] in ('conv', 'head')]
    step = torch.autograd.grad(F.cross_entropy(train(x), y), params)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = class_gradients(model, (x, y), norm_stats='batch',
                             layers=['conv', 'head'])
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    weights = (result.counts / result.counts.sum()).float()
    for name, expected in zip(['conv', 'head'], [
            torch.cat([g.flatten() for g in step[:2]]),
            torch.cat([g.flatten() for g in step[2:]])]):
        total = weights @ result.grads[name]
        torch.testing.assert_close(total, expected, rtol=1e-4, atol=1e-6)
    # With running statistics the same weighting gives another gradient.
    running = class_gradients(model, (x, y), layers=['head'])
    other = weights @ running.grads['head']
    assert (other - total).norm() > 1e-3 * total.norm()


def test_loss_that_couples_samples_is_refused():

    def batch_normalised_ce(logits, targets, reduction='none'):
        return F.cross_entropy(logits - logits.mean(0), targets,
                               reduction=reduction)

    model = nn.Linear(4, 3)
    x, y = torch.randn(9, 4), torch.arange(9) % 3
    with pytest.raises(ValueError, match='loss_fn is not per-sample'):
        class_gradients(model, (x, y), loss_fn=batch_normalised_ce)


MEMORY_CHILD = r'''
import json, sys, types
# mmimb.analysis is plain torch: import it without the package's
# registrations (which import the whole OpenMMLab stack).
package = types.ModuleType('mmimb')
package.__path__ = [sys.argv[2] + '/mmimb']
sys.modules['mmimb'] = package
import torch
from torch import nn
from mmimb.analysis import class_gradients
def peak():
    with open('/proc/self/status') as f:
        return next(int(l.split()[1]) for l in f if l.startswith('VmHWM'))
torch.manual_seed(0)
model = nn.Sequential(*[nn.Linear(512, 512) for _ in range(12)],
                      nn.Linear(512, 16))
x, y = torch.randn(32, 512), torch.arange(32) % 16
with open('/proc/self/clear_refs', 'w') as f:
    f.write('5')
base = peak()
class_gradients(model, (x, y), mode=sys.argv[1], sketch_dim=4096)
print(json.dumps(peak() - base))
'''


@pytest.mark.skipif(not osp.exists('/proc/self/clear_refs'),
                    reason='needs Linux /proc to measure peak memory')
def test_sketch_lowers_peak_memory():
    """12 layers of 262k weights, 16 classes: full class gradients hold
    16 x 3.2M floats (201 MB); the sketch holds one layer's exactly (17 MB)
    at a time. Measured in a child process whose allocator returns large
    blocks on free, so that freed memory does not hide an allocation."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_='131072',
               OMP_NUM_THREADS='1')
    peaks = {}
    for mode in ('fast', 'sketch'):
        out = subprocess.run(
            [sys.executable, '-c', MEMORY_CHILD, mode, ROOT], env=env,
            capture_output=True, text=True, check=True).stdout
        peaks[mode] = int(out.strip().splitlines()[-1]) / 1024
    assert peaks["fast"] > 201
    assert peaks['sketch'] < peaks['fast'] / 2, peaks


def test_batches_with_different_classes_add_up_to_the_whole():
    """Rows exist for present classes only, so adding a batch with other
    classes must place every row; the all-reduce does the same across
    processes."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 4))
    x = torch.randn(12, 5)
    y = torch.tensor([0, 1, 0, 1, 0, 1, 1, 2, 1, 2, 3, 2])
    whole = class_gradients(model, (x, y))
    first = class_gradients(model, (x[:6], y[:6]))
    merged = first.merge(class_gradients(model, (x[6:], y[6:])))
    accumulated = class_gradients(model, (x[6:], y[6:]), accumulate=first)
    for result in (merged, accumulated):
        assert torch.equal(result.counts, whole.counts)
        for name in whole.layers:
            assert result.rows[name].tolist() == [0, 1, 2, 3]
            torch.testing.assert_close(result.grads[name], whole.grads[name],
                                       rtol=1e-5, atol=1e-7)
