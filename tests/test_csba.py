"""Class-Specific Branch Attention: the fusion math against naive loops, the
class independence of the head, determinism without labels, memory linear
in the number of classes, gradient flow, and the mmpretrain integration."""
import copy

import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from mmimb.models import (BranchAttention, ClassWiseLinearClsHead, CSBANeck,
                          MultiBranchNeck, class_wise_linear, fuse_branches)
from mmimb.utils import autograd_footprint


def randomise(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every parameter random values: the zero-initialised attention
    would hide class-specific behaviour."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    return module


def test_fuse_branches_matches_loop():
    pooled, weights = torch.randn(3, 4, 5), torch.rand(3, 6, 4, 5)
    expected = torch.zeros(3, 6, 5)
    for n in range(3):
        for k in range(6):
            for b in range(4):
                expected[n, k] += weights[n, k, b] * pooled[n, b]
    torch.testing.assert_close(fuse_branches(pooled, weights), expected)


@pytest.mark.parametrize('gate', ['softmax', 'sigmoid'])
@pytest.mark.parametrize('factorized', [False, True])
@pytest.mark.parametrize('scale', [1.0, 8.0])
def test_branch_attention_matches_per_class_formula(gate, factorized, scale):
    b, d, k = 3, 6, 5
    att = randomise(
        BranchAttention(b, d, num_sets=k, hidden_channels=4, gate=gate,
                        factorized=factorized, logit_scale=scale))
    pooled = torch.randn(2, b, d)
    got = att(pooled)
    assert got.shape == (2, k, b, d)
    lin = att.squeeze[0]
    for n in range(2):
        h = torch.relu(lin.weight @ pooled[n].reshape(-1) + lin.bias)
        for c in range(k):
            if factorized:
                logits = att.expand.weight @ (h * att.set_embed[c]) \
                    + att.set_bias[c]
            else:
                rows = slice(c * b * d, (c + 1) * b * d)
                logits = att.expand.weight[rows] @ h + att.expand.bias[rows]
            logits = scale * logits.view(b, d)
            want = logits.softmax(0) if gate == 'softmax' \
                else logits.sigmoid()
            torch.testing.assert_close(got[n, c], want)


def test_softmax_gate_sums_to_one_over_branches():
    att = randomise(BranchAttention(4, 8, num_sets=3))
    weights = att(torch.randn(5, 4, 8))
    torch.testing.assert_close(weights.sum(2), torch.ones(5, 3, 8))


@pytest.mark.parametrize('c,b,d', [(2, 1, 8), (10, 3, 16), (7, 4, 5),
                                   (1000, 2, 4)])
def test_csba_neck_shapes(c, b, d):
    neck = CSBANeck(12, num_classes=c, num_branches=b, out_channels=d,
                    branch_cfg=dict(dilation=1))
    x = torch.randn(3, 12, 6, 5)
    assert neck(x).shape == (3, c, d)
    out = neck((torch.randn(3, 4, 9, 9), x))
    assert isinstance(out, tuple) and len(out) == 1
    assert out[0].shape == (3, c, d)


def test_stem_reduces_before_the_branches():
    neck = CSBANeck(32, num_classes=3, out_channels=8,
                    branch_cfg=dict(stem_channels=4, num_convs=2))
    assert neck(torch.randn(2, 32, 5, 5)).shape == (2, 3, 8)
    convs = [m for m in neck.branches.modules()
             if isinstance(m, torch.nn.Conv2d)]
    # 1x1 stem (32 -> 4), then per branch 3x3 4 -> 8 and 3x3 8 -> 8.
    assert [tuple(c.weight.shape) for c in convs] == \
        [(4, 32, 1, 1)] + [(8, 4, 3, 3), (8, 8, 3, 3)] * 3


def test_csba_neck_default_is_three_dilated_branches():
    neck = CSBANeck(8, num_classes=2)
    assert neck.branches.dilations == (1, 2, 3)
    assert neck.branches.kernel_sizes == (3, 3, 3)
    assert neck.out_channels == 8
    # The attention's logit scale (docs/csba.md), the same in the baseline.
    assert neck.attention.logit_scale == 8.0
    assert MultiBranchNeck(8).attention.logit_scale == 8.0


@pytest.mark.parametrize('b', [1, 2, 4])
def test_default_dilations_follow_num_branches(b):
    neck = CSBANeck(8, 3, num_branches=b)
    assert neck.branches.dilations == tuple(range(1, b + 1))
    convs = [m for m in neck.branches.modules()
             if isinstance(m, torch.nn.Conv2d)]
    assert [c.dilation for c in convs] == [(d, d) for d in range(1, b + 1)]
    assert neck(torch.randn(2, 8, 5, 5)).shape == (2, 3, 8)


def test_issue_signature_positional_order():
    """``CSBANeck(in_channels, num_classes, num_branches, branch_cfg,
    reduction)`` as the issue writes it; ``out_channels`` is keyword-only."""
    neck = CSBANeck(16, 10, 2, dict(kernel_size=(1, 3)), 2)
    assert neck.branches.kernel_sizes == (1, 3)
    assert neck.attention.hidden_channels == 8
    assert neck(torch.randn(2, 16, 4, 4)).shape == (2, 10, 16)
    with pytest.raises(TypeError):
        CSBANeck(16, 10, 2, dict(), 2, 8)


@pytest.mark.parametrize('neck_type', [CSBANeck, MultiBranchNeck])
@pytest.mark.parametrize('value', [0, -4, 2.5, True])
def test_bad_out_channels_is_named(neck_type, value):
    args = dict(num_classes=3) if neck_type is CSBANeck else {}
    with pytest.raises(ValueError, match='out_channels'):
        neck_type(8, out_channels=value, **args)


def test_zero_init_csba_equals_mean_fusion_baseline():
    """At initialisation every class weighs the branches uniformly, so CSBA
    starts as the multi-branch network with mean fusion."""
    csba = CSBANeck(8, num_classes=4, out_channels=6).eval()
    base = MultiBranchNeck(8, out_channels=6, fusion='mean').eval()
    base.branches.load_state_dict(csba.branches.state_dict())
    x = torch.randn(2, 8, 5, 5)
    z = csba(x)
    for c in range(4):
        torch.testing.assert_close(z[:, c], base(x))


def test_class_feature_depends_only_on_its_own_attention():
    """Changing class j's attention parameters changes z_j and no other
    z_c."""
    neck = randomise(CSBANeck(8, num_classes=5, out_channels=4)).eval()
    x = torch.randn(3, 8, 4, 4)
    before = neck(x)
    width = neck.attention.num_branches * neck.out_channels
    j = 2
    with torch.no_grad():
        # Random, not constant: a shift common to all branches would cancel
        # in the softmax over branches.
        rows = neck.attention.expand.weight[j * width:(j + 1) * width]
        rows += torch.randn(rows.shape)
    after = neck(x)
    others = [c for c in range(5) if c != j]
    torch.testing.assert_close(after[:, others], before[:, others])
    assert not torch.allclose(after[:, j], before[:, j])


def test_head_scores_match_loop_and_ignore_other_classes_features():
    head = randomise(ClassWiseLinearClsHead(num_classes=6, in_channels=5))
    z = torch.randn(4, 6, 5)
    scores = head((z, ))
    for n in range(4):
        for c in range(6):
            want = (head.weight[c] * z[n, c]).sum() + head.bias[c]
            torch.testing.assert_close(scores[n, c], want)
    for j in range(6):
        z2 = z.clone()
        z2[:, j] += torch.randn(4, 5) * 10
        changed = head((z2, ))
        others = [c for c in range(6) if c != j]
        torch.testing.assert_close(changed[:, others], scores[:, others])
        assert not torch.allclose(changed[:, j], scores[:, j])


def test_neck_is_deterministic_per_sample_at_test_time():
    """In eval mode the output is a function of the sample alone: no labels,
    no randomness, no dependence on the rest of the batch."""
    neck = randomise(CSBANeck(8, num_classes=7, out_channels=4)).eval()
    x = torch.randn(5, 8, 6, 6)
    with torch.no_grad():
        full = neck(x)
        torch.testing.assert_close(neck(x), full)
        for i in range(5):
            torch.testing.assert_close(neck(x[i:i + 1]), full[i:i + 1])


def _memory_profile(num_classes, factorized, n=4, b=3, d=16):
    torch.manual_seed(0)
    neck = CSBANeck(8, num_classes, num_branches=b, out_channels=d,
                    factorized=factorized)
    head = ClassWiseLinearClsHead(num_classes, d)
    x = torch.randn(n, 8, 6, 6)
    labels = torch.arange(n) % num_classes
    fp = autograd_footprint(
        lambda: F.cross_entropy(head(neck(x)), labels))
    return fp.largest_numel, fp.saved_bytes, neck.attention.hidden_channels


@pytest.mark.parametrize('factorized', [False, True])
def test_memory_is_linear_in_the_number_of_classes(factorized):
    n, b, d = 4, 3, 16
    sizes = {c: _memory_profile(c, factorized, n, b, d)
             for c in (250, 500, 1000)}
    for c, (largest, _, hidden) in sizes.items():
        # The largest tensor is (N, C, B, D) or the expansion weight
        # (hidden, C * B * D) and its gradient; an (N, C, B, D, D)
        # intermediate would be D times larger.
        assert largest <= max(n, hidden + 1) * c * b * d, (c, largest)
    saved = {c: s for c, (_, s, _) in sizes.items()}
    step1, step2 = saved[500] - saved[250], saved[1000] - saved[500]
    assert step1 > 0
    assert abs(step2 - 2 * step1) <= 0.05 * step2, saved


def test_gradients_reach_every_branch_and_parameter():
    torch.manual_seed(0)
    neck = CSBANeck(8, num_classes=4, num_branches=3, out_channels=6)
    head = ClassWiseLinearClsHead(4, 6)
    x = torch.randn(6, 8, 5, 5)
    F.cross_entropy(head(neck(x)), torch.tensor([0, 1, 2, 3, 0, 1])).backward()
    for b, branch in enumerate(neck.branches.branches):
        for name, p in branch.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, (b, name)
    # The expansion starts at zero, so the squeeze layer gets gradient from
    # the first update on; with non-zero attention everything does.
    randomise(neck)
    neck.zero_grad()
    head.zero_grad()
    F.cross_entropy(head(neck(x)), torch.tensor([0, 1, 2, 3, 0, 1])).backward()
    for name, p in list(neck.named_parameters()) + \
            list(head.named_parameters()):
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_two_classes_train_and_eval():
    neck = CSBANeck(4, num_classes=2, out_channels=3)
    head = ClassWiseLinearClsHead(2, 3)
    x = torch.randn(4, 4, 3, 3)
    scores = head(neck(x))
    assert scores.shape == (4, 2)
    neck.eval()
    assert head(neck(x)).shape == (4, 2)


def test_multi_branch_neck_matches_loop_and_parameter_count():
    neck = randomise(MultiBranchNeck(8, out_channels=4)).eval()
    x = torch.randn(3, 8, 5, 5)
    pooled = neck.branches(x)
    weights = neck.attention(pooled)[:, 0]
    expected = (weights * pooled).sum(1)
    torch.testing.assert_close(neck(x), expected)
    assert neck((x, ))[0].shape == (3, 4)
    # The configs' matched pair on ResNet-32: 64 channels, 10 classes.
    csba = CSBANeck(64, num_classes=10)
    matched = MultiBranchNeck(64, hidden_channels=92)
    count = [sum(p.numel() for p in m.parameters()) for m in (csba, matched)]
    assert abs(count[0] - count[1]) / count[0] < 0.01, count


def test_mean_fusion_has_no_attention():
    neck = MultiBranchNeck(8, out_channels=4, fusion='mean').eval()
    x = torch.randn(2, 8, 4, 4)
    torch.testing.assert_close(neck(x), neck.branches(x).mean(1))
    assert neck.attention is None


def test_concat_fusion_keeps_every_branch():
    neck = MultiBranchNeck(8, num_branches=3, out_channels=4,
                           fusion='concat').eval()
    x = torch.randn(2, 8, 4, 4)
    pooled = neck.branches(x)
    out = neck(x)
    assert out.shape == (2, 12)
    for b in range(3):
        torch.testing.assert_close(out[:, 4 * b:4 * (b + 1)], pooled[:, b])


@pytest.mark.parametrize('kwargs,match', [
    (dict(branch_cfg=dict(kernel=3)), 'unknown branch_cfg keys'),
    (dict(branch_cfg=dict(kernel_size=2)), 'odd'),
    (dict(branch_cfg=dict(dilation=(1, 2))), 'one per branch'),
    (dict(gate='relu'), 'gate'),
    (dict(num_classes=0), 'num_classes'),
    (dict(logit_scale=0), 'logit_scale=0'),
])
def test_bad_arguments_are_named(kwargs, match):
    args = dict(in_channels=8, num_classes=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        CSBANeck(**args)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match='in_channels=8'):
        CSBANeck(8, num_classes=3)(torch.randn(2, 5, 4, 4))
    head = ClassWiseLinearClsHead(3, 4)
    with pytest.raises(ValueError, match='LinearClsHead'):
        head((torch.randn(2, 4), ))


def _data_samples(labels):
    return [DataSample().set_gt_label(int(label)) for label in labels]


@pytest.mark.parametrize('loss', [
    dict(type='CrossEntropyLoss'),
    dict(type='LabelSmoothLoss', label_smooth_val=0.1),
    dict(type='FocalLoss'),
    dict(type='LogitAdjustedLoss', class_freq=[5, 3, 2, 1, 1]),
    dict(type='BalancedSoftmaxLoss', class_freq=[5, 3, 2, 1, 1]),
    dict(type='CCARLoss', class_freq=[5, 3, 2, 1, 1]),
    dict(type='CCARLoss', class_freq=[5, 3, 2, 1, 1], logit_adjust='la'),
], ids=lambda loss: loss['type'] + loss.get('logit_adjust', ''))
def test_head_loss_and_predict_equal_linear_head_on_shared_features(loss):
    """With the same feature for every class the class-wise head is a
    LinearClsHead: same loss and predictions through mmpretrain's data
    samples."""
    init_default_scope('mmpretrain')
    head = MODELS.build(
        dict(type='ClassWiseLinearClsHead', num_classes=5, in_channels=4,
             loss=loss, cal_acc=True))
    randomise(head)
    linear = MODELS.build(
        dict(type='LinearClsHead', num_classes=5, in_channels=4, loss=loss,
             cal_acc=True))
    with torch.no_grad():
        linear.fc.weight.copy_(head.weight)
        linear.fc.bias.copy_(head.bias)
    feat = torch.randn(6, 4)
    shared = feat[:, None].expand(6, 5, 4)
    labels = [0, 1, 2, 3, 4, 0]
    got = head.loss((shared, ), _data_samples(labels))
    want = linear.loss((feat, ), _data_samples(labels))
    assert set(got) == set(want)
    for key in want:
        torch.testing.assert_close(got[key], want[key])
    preds = head.predict((shared, ), _data_samples(labels))
    ref = linear.predict((feat, ))
    for p, r, label in zip(preds, ref, labels):
        assert p.gt_label.item() == label
        torch.testing.assert_close(p.pred_score, r.pred_score)
        assert p.pred_label.item() == r.pred_label.item()


def _classifier(backbone, in_channels, neck_type='CSBANeck'):
    init_default_scope('mmpretrain')
    neck = dict(type=neck_type, in_channels=in_channels, out_channels=16)
    if neck_type == 'CSBANeck':
        neck['num_classes'] = 3
        head = dict(type='ClassWiseLinearClsHead', num_classes=3,
                    in_channels=16)
    else:
        head = dict(type='LinearClsHead', num_classes=3, in_channels=16)
    return MODELS.build(
        dict(type='ImageClassifier', backbone=backbone, neck=neck,
             head=head))


@pytest.mark.parametrize('backbone,in_channels', [
    (dict(type='ResNet', depth=18, base_channels=8, stem_channels=8), 64),
    (dict(type='ResNet_CIFAR', depth=18, base_channels=8, stem_channels=8),
     64),
    (dict(type='ResNet', depth=18, base_channels=8, stem_channels=8,
          out_indices=(1, 2, 3)), 64),
    (dict(type='CifarResNet', depth=8), 64),
    (dict(type='CifarResNet', depth=8, out_indices=(0, 1, 2)), 64),
])
@pytest.mark.parametrize('neck_type', ['CSBANeck', 'MultiBranchNeck'])
def test_on_mmpretrain_backbones(backbone, in_channels, neck_type):
    model = _classifier(backbone, in_channels, neck_type)
    x = torch.randn(2, 3, 32, 32)
    losses = model(x, _data_samples([0, 2]), mode='loss')
    losses['loss'].backward()
    assert torch.isfinite(losses['loss'])
    model.eval()
    preds = model(x, _data_samples([0, 2]), mode='predict')
    assert [p.pred_score.shape for p in preds] == [(3, ), (3, )]
    assert model(x).shape == (2, 3)


def test_checkpoint_round_trip_is_exact():
    neck = randomise(CSBANeck(8, num_classes=3, out_channels=4)).eval()
    copy_ = CSBANeck(8, num_classes=3, out_channels=4).eval()
    copy_.load_state_dict(copy.deepcopy(neck.state_dict()))
    x = torch.randn(2, 8, 4, 4)
    torch.testing.assert_close(copy_(x), neck(x))


def test_class_wise_linear_function_shapes():
    z, w, b = torch.randn(2, 3, 4), torch.randn(3, 4), torch.randn(3)
    assert class_wise_linear(z, w, b).shape == (2, 3)


@pytest.mark.parametrize('gate,scale', [('softmax', 1.0), ('sigmoid', 1.5)])
def test_fusion_at_init_is_mean_only_for_softmax(gate, scale):
    """At initialisation softmax weights are 1/B (mean fusion); sigmoid
    weights are 1/2, i.e. B/2 times the mean (here B = 3)."""
    att = BranchAttention(3, 4, num_sets=2, gate=gate)
    pooled = torch.randn(5, 3, 4)
    fused = fuse_branches(pooled, att(pooled))
    want = scale * pooled.mean(1, keepdim=True).expand(5, 2, 4)
    torch.testing.assert_close(fused, want)
