"""The heads and the frozen-backbone classifier of the long-tail toolbox
against naive loops and the authors' code written out, and the DRW hook's
switching."""
import math
from types import SimpleNamespace

import pytest
import torch
from mmengine.registry import init_default_scope
from mmpretrain.models.heads import LinearClsHead
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from mmimb.engine.hooks import DRWHook
from mmimb.models import (ClassBalancedLoss, CosineLinearClsHead,
                          FrozenBackboneClassifier, LWSClsHead,
                          PostHocAdjustedClsHead, TauNormClsHead)

COUNTS = [500, 250, 120, 40, 9]
C, D = len(COUNTS), 6


def feats(seed=0, n=8):
    return (torch.randn(n, D, generator=torch.Generator().manual_seed(seed),
                        dtype=torch.float64), )


def trained_linear(seed=1):
    """A first-stage LinearClsHead with class-dependent weight norms."""
    head = LinearClsHead(C, D).double()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        head.fc.weight.copy_(
            torch.randn(C, D, generator=gen, dtype=torch.float64) *
            torch.linspace(2, 0.2, C, dtype=torch.float64)[:, None])
        head.fc.bias.copy_(torch.randn(C, generator=gen,
                                       dtype=torch.float64))
    return head


def test_cosine_head_gives_cosine_similarities_without_bias():
    head = CosineLinearClsHead(C, D).double()
    (x, ) = feats()
    w = head.fc.weight
    got = head(feats())
    for n in range(x.shape[0]):
        for c in range(C):
            cos = (x[n] @ w[c]) / (x[n].norm() * w[c].norm())
            assert got[n, c].item() == pytest.approx(cos.item(), rel=1e-12)
    assert set(head.state_dict()) == {'fc.weight'}


def pnorm_authors(weights, p):
    """classifier-balancing tau_norm.py pnorm()."""
    normB = torch.norm(weights, 2, 1)
    ws = weights.clone()
    for i in range(weights.size(0)):
        ws[i] = ws[i] / torch.pow(normB[i], p)
    return ws


@pytest.mark.parametrize('tau', [0.0, 0.5, 1.0, 2.0])
def test_tau_norm_head_scores_as_the_authors_tau_norm(tau):
    stage1 = trained_linear()
    head = TauNormClsHead(C, D, tau=tau).double()
    head.load_state_dict(stage1.state_dict())
    (x, ) = feats()
    # tau_norm.py: dotproduct_similarity(feat, pnorm(weights, p)), no bias
    expected = torch.mm(x, pnorm_authors(stage1.fc.weight.detach(), tau).t())
    torch.testing.assert_close(head(feats()), expected)
    with pytest.raises(ValueError, match='tau'):
        TauNormClsHead(C, D, tau=-1)


def test_lws_head_scales_the_frozen_first_stage_logits():
    stage1 = trained_linear()
    head = LWSClsHead(C, D).double()
    missing = head.load_state_dict(stage1.state_dict(), strict=False)
    assert missing.missing_keys == ['scales'] and not missing.unexpected_keys
    assert [n for n, p in head.named_parameters() if p.requires_grad] == [
        'scales'
    ]
    with torch.no_grad():
        head.scales.copy_(torch.tensor([1.0, 1.2, 1.5, 2.0, 3.0]))
    # TauNormClassifier.py (the LWS classifier): x = fc(x); x *= scales
    expected = stage1(feats()) * head.scales
    torch.testing.assert_close(head(feats()), expected)


def test_posthoc_head_predicts_with_adjusted_logits():
    stage1 = trained_linear()
    prior = torch.tensor(COUNTS, dtype=torch.float64) / sum(COUNTS)
    for tau in (0.0, 1.0, 1.5):
        head = PostHocAdjustedClsHead(C, D, class_freq=COUNTS, tau=tau)
        head.double().load_state_dict(stage1.state_dict())
        z = stage1(feats(2, n=50)).detach()
        samples = head.predict(feats(2, n=50))
        for n, sample in enumerate(samples):
            adjusted = [z[n, c].item() - tau * math.log(prior[c])
                        for c in range(C)]
            assert sample.pred_label.item() == adjusted.index(max(adjusted))
        torch.testing.assert_close(
            torch.stack([s.pred_score for s in samples]),
            torch.softmax(z - tau * prior.log(), dim=1).float(),
            check_dtype=False)
    plain = stage1.predict(feats(2, n=50))
    head0 = PostHocAdjustedClsHead(C, D, class_freq=COUNTS, tau=0.0).double()
    head0.load_state_dict(stage1.state_dict())
    assert [s.pred_label.item() for s in head0.predict(feats(2, n=50))] == \
        [s.pred_label.item() for s in plain]
    # Training sees the plain logits.
    labels = [DataSample().set_gt_label(i % C) for i in range(8)]
    torch.testing.assert_close(
        head0.loss(feats(), labels)['loss'], stage1.loss(feats(),
                                                         labels)['loss'])


def tiny_classifier(**kwargs):
    init_default_scope('mmpretrain')
    return FrozenBackboneClassifier(
        backbone=dict(type='CifarResNet', depth=8),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=C, in_channels=64),
        **kwargs)


@pytest.mark.parametrize('norm_eval', [False, True])
def test_frozen_backbone_trains_the_head_only(norm_eval):
    torch.manual_seed(0)
    model = tiny_classifier(norm_eval=norm_eval)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {'head.fc.weight', 'head.fc.bias'}
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optim = torch.optim.SGD(
        model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    model.train()
    images = torch.randn(8, 3, 32, 32)
    labels = [DataSample().set_gt_label(i % C) for i in range(8)]
    for _ in range(2):
        optim.zero_grad()
        model(images, labels, mode='loss')['loss'].backward()
        optim.step()
    after = model.state_dict()
    for name, value in after.items():
        changed = not torch.equal(value, before[name])
        if name.startswith('head.'):
            assert changed, name
        elif 'running_' in name:
            # The authors' code keeps the frozen modules in train mode.
            assert changed != norm_eval, name
        elif not name.endswith('num_batches_tracked'):
            assert not changed, name
    with pytest.raises(ValueError, match="names 'stem'"):
        tiny_classifier(frozen=('backbone', 'stem'))


def fake_runner(model, epoch=0, iteration=0):
    return SimpleNamespace(
        model=model, epoch=epoch, iter=iteration,
        logger=SimpleNamespace(info=lambda msg: None))


def test_drw_hook_switches_every_class_balanced_loss():
    init_default_scope('mmpretrain')
    losses = torch.nn.ModuleList([
        ClassBalancedLoss(dict(type='SoftmaxFocalLoss'), COUNTS),
        ClassBalancedLoss(dict(type='LDAMLoss', class_freq=COUNTS), COUNTS)
    ])
    hook = DRWHook(start_epoch=3)
    hook.before_train(fake_runner(losses))
    for epoch, on in ((0, False), (2, False), (3, True), (7, True)):
        hook.before_train_epoch(fake_runner(losses, epoch=epoch))
        assert [m.enabled for m in losses] == [on, on]
    by_iter = DRWHook(start_iter=10)
    by_iter.before_train(fake_runner(losses))
    by_iter.before_train_iter(fake_runner(losses, iteration=9), 0)
    assert not losses[0].enabled
    by_iter.before_train_iter(fake_runner(losses, iteration=10), 0)
    assert losses[0].enabled
    with pytest.raises(ValueError, match='no ClassBalancedLoss'):
        DRWHook(start_epoch=1).before_train(
            fake_runner(MODELS.build(dict(type='CrossEntropyLoss'))))
    for kwargs in (dict(), dict(start_epoch=1, start_iter=1),
                   dict(start_epoch=-1)):
        with pytest.raises(ValueError, match='DRWHook'):
            DRWHook(**kwargs)
