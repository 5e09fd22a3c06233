"""DynamicFocalAttention and its priors against independent computations."""
import json
import math

import pytest
import torch
from torch import nn

from mmimb.models import DFABias, DynamicFocalAttention
from mmimb.models.layers import (class_prior, difficulty_prior, focal_prior,
                                 inverse_log_freq_prior)

FREQ = [0.40, 0.35, 0.08, 0.08, 0.09]
B, N, C, D, H = 2, 7, 5, 16, 4


def make_inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, N, D, generator=g), torch.randn(B, C, D,
                                                           generator=g))


def make_attn(bias_mode='fixed', prior=None, **kwargs):
    torch.manual_seed(0)
    if prior is None and bias_mode != 'none':
        prior = 'focal'
        kwargs.setdefault('class_freq', FREQ)
    attn = DynamicFocalAttention(
        D, H, C, bias_mode=bias_mode, prior=prior or 'focal', **kwargs)
    return attn.eval()


def naive_attention(attn, query, key, weights=None):
    """Loop-free but independent: explicit softmax, then optional
    reweighting of the probabilities by ``weights`` and renormalisation."""
    d = D // H
    q = attn.q_proj(query).view(B, N, H, d).transpose(1, 2)
    k = attn.k_proj(key).view(B, C, H, d).transpose(1, 2)
    v = attn.v_proj(key).view(B, C, H, d).transpose(1, 2)
    probs = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), dim=-1)
    if weights is not None:
        probs = probs * weights
        probs = probs / probs.sum(-1, keepdim=True)
    out = (probs @ v).transpose(1, 2).reshape(B, N, D)
    return attn.out_proj(out), probs


# ---------------------------------------------------------------- priors


def test_priors_match_hand_computation():
    f = torch.tensor(FREQ, dtype=torch.float64)
    assert torch.allclose(focal_prior(f, 2.0), 2 * torch.log(1 - f))
    assert torch.allclose(inverse_log_freq_prior(f), -torch.log(f))
    dice = [0.9, 0.5, 0.0, 0.25, 0.7]
    expected = [2 * math.log(1 - x) for x in dice]
    assert difficulty_prior(dice, 2.0).tolist() == pytest.approx(expected)
    # rarer -> larger prior for both frequency priors
    for p in (focal_prior(f), inverse_log_freq_prior(f)):
        assert p[2] > p[1] > p[0]


def test_prior_log_of_zero_is_clamped_not_nan():
    # frequency 1 and Dice 1 would be log(0)
    for p in (focal_prior([1.0, 0.0]), inverse_log_freq_prior([1.0, 0.0]),
              difficulty_prior([1.0, 0.0])):
        assert torch.isfinite(p).all()
        assert p.abs().max() <= 2 * abs(math.log(1e-6)) + 1e-9
    # counts so skewed that the common class's frequency rounds to 1.0
    p = class_prior('focal', 2, class_freq=[1e20, 1.0])
    assert torch.isfinite(p).all()


@pytest.mark.parametrize('class_freq, match', [
    ([0.5, 0.5], 'num_classes=5'),
    ([0.5, -0.1, 0.2, 0.2, 0.2], 'positive'),
    ([0.5, 0.0, 0.2, 0.2, 0.1], 'positive'),
    ([0.5, float('nan'), 0.2, 0.2, 0.1], 'non-finite'),
    ('auto', 'replaced by the training set'),
])
def test_bad_class_freq_is_refused(class_freq, match):
    with pytest.raises(ValueError, match=match):
        DynamicFocalAttention(D, H, C, class_freq=class_freq)


@pytest.mark.parametrize('class_dice, match', [
    ([0.5, float('nan'), 0.2, 0.2, 0.1], r'class_dice has non-finite'),
    ([0.5, 0.5], r'class_dice has 2 entries.*num_classes=5'),
    ([0.5, 1.5, 0.2, 0.2, 0.1], r'class_dice must hold values in \[0, 1\]'),
    ([[0.5] * 5], r'class_dice must be a non-empty 1-D'),
])
def test_bad_class_dice_is_refused_by_name(class_dice, match):
    with pytest.raises(ValueError, match=match):
        DynamicFocalAttention(D, H, C, prior='difficulty',
                              class_dice=class_dice)


def test_bad_prior_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match='needs class_freq'):
        DynamicFocalAttention(D, H, C, bias_mode='learned')
    with pytest.raises(ValueError, match='needs class_dice'):
        DynamicFocalAttention(D, H, C, prior='difficulty')
    with pytest.raises(ValueError, match='5 finite values'):
        DynamicFocalAttention(D, H, C, prior=[0.0, 1.0])
    with pytest.raises(ValueError, match='bias_mode'):
        DynamicFocalAttention(D, H, C, bias_mode='learnt')
    with pytest.raises(ValueError, match='bias_sharing'):
        DynamicFocalAttention(D, H, C, bias_mode='none',
                              bias_sharing='layer')
    with pytest.raises(ValueError, match=r'\[0, 1\]'):
        DynamicFocalAttention(
            D, H, C, prior='difficulty', class_dice=[90, 50, 0, 25, 70])
    with pytest.raises(FileNotFoundError, match='class_difficulty.py'):
        DynamicFocalAttention(
            D, H, C, prior='difficulty', class_dice=str(tmp_path / 'x.json'))


def test_prior_from_json_files(tmp_path):
    stats = tmp_path / 'stats.json'
    stats.write_text(json.dumps(dict(counts=[40, 35, 8, 8, 9])))
    dice = tmp_path / 'dice.json'
    dice.write_text(json.dumps(dict(dice=[0.9, 0.5, 0.0, 0.25, 0.7])))
    a = DFABias(C, 'fixed', class_freq=str(stats))
    assert torch.allclose(a(), focal_prior(FREQ).float()[None], atol=1e-6)
    b = DFABias(C, 'fixed', prior='difficulty', class_dice=str(dice))
    expected = difficulty_prior([0.9, 0.5, 0.0, 0.25, 0.7]).float()
    assert torch.allclose(b(), expected[None])


def test_bias_modes_initialise_as_specified():
    p = focal_prior(FREQ).float()
    assert DFABias(C, 'none')() is None
    assert not list(DFABias(C, 'none').parameters())
    fixed = DFABias(C, 'fixed', class_freq=FREQ)
    assert not list(fixed.parameters())
    assert torch.allclose(fixed(), p[None])
    learned = DFABias(C, 'learned', class_freq=FREQ, init_scale=0.3)
    assert torch.allclose(learned(), 0.3 * (p - p.mean())[None])
    anchored = DFABias(C, 'anchored', class_freq=FREQ)
    assert torch.equal(anchored.delta, torch.zeros(1, C))
    assert torch.allclose(anchored(), p[None])
    per_head = DFABias(C, 'learned', class_freq=FREQ, num_heads=H)
    assert per_head().shape == (H, C)


# ------------------------------------------------------------- attention


def test_bias_none_equals_multihead_attention():
    attn = make_attn('none')
    mha = nn.MultiheadAttention(D, H, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(
            torch.cat([attn.q_proj.weight, attn.k_proj.weight,
                       attn.v_proj.weight]))
        mha.in_proj_bias.copy_(
            torch.cat([attn.q_proj.bias, attn.k_proj.bias,
                       attn.v_proj.bias]))
        mha.out_proj.load_state_dict(attn.out_proj.state_dict())
    query, key = make_inputs()
    expected, expected_attn = mha(
        query, key, key, average_attn_weights=False)
    out, probs = attn(query, key, return_attn=True)
    assert torch.allclose(attn(query, key), expected, atol=1e-5)
    assert torch.allclose(out, expected, atol=1e-5)
    assert torch.allclose(probs, expected_attn, atol=1e-6)


@pytest.mark.parametrize('shift', [0.0, 7.5, -30.0])
def test_constant_added_to_every_bias_changes_nothing(shift):
    # Softmax(s + p + c) = softmax(s + p): attention with prior p + c must
    # equal plain softmax attention reweighted by exp(p), computed apart.
    p = torch.randn(C, generator=torch.Generator().manual_seed(3))
    query, key = make_inputs()
    attn = make_attn('fixed', prior=(p + shift).tolist())
    expected, expected_probs = naive_attention(attn, query, key,
                                               weights=p.exp())
    assert torch.allclose(attn(query, key), expected, atol=1e-5)
    out, probs = attn(query, key, return_attn=True)
    assert torch.allclose(out, expected, atol=1e-5)
    assert torch.allclose(probs, expected_probs, atol=1e-6)


def test_log_weight_bias_equals_reweighted_probabilities():
    w = torch.tensor([0.5, 2.0, 7.0, 1.0, 0.1])
    attn = make_attn('fixed', prior=w.log().tolist())
    query, key = make_inputs()
    expected, expected_probs = naive_attention(attn, query, key, weights=w)
    out, probs = attn(query, key, return_attn=True)
    assert torch.allclose(attn(query, key), expected, atol=1e-5)
    assert torch.allclose(probs, expected_probs, atol=1e-6)
    # the bias did something: unweighted attention differs
    unweighted, _ = naive_attention(attn, query, key)
    assert not torch.allclose(unweighted, expected, atol=1e-3)


@pytest.mark.parametrize('c', range(C))
def test_large_bias_on_class_c_sends_all_attention_to_token_c(c):
    prior = [0.0] * C
    prior[c] = 60.0
    attn = make_attn('fixed', prior=prior)
    query, key = make_inputs()
    out, probs = attn(query, key, return_attn=True)
    assert torch.allclose(probs[..., c], torch.ones(()), atol=1e-6)
    # the output is then class c's value, for every pixel
    value_c = attn.out_proj(attn.v_proj(key[:, c]))[:, None].expand(B, N, D)
    assert torch.allclose(attn(query, key), value_c, atol=1e-5)
    assert torch.allclose(out, value_c, atol=1e-5)


def test_key_of_wrong_length_is_refused():
    attn = make_attn('none')
    with pytest.raises(ValueError, match=r'\(B, 5, D\)'):
        attn(torch.randn(B, N, D), torch.randn(B, C + 1, D))


def test_per_head_bias_acts_per_head():
    attn = make_attn('learned', class_freq=FREQ, bias_sharing='per_head')
    with torch.no_grad():
        attn.dfa_bias.delta.zero_()
        attn.dfa_bias.delta[1, 3] = 60.0
    query, key = make_inputs()
    _, probs = attn(query, key, return_attn=True)
    assert torch.allclose(probs[:, 1, :, 3], torch.ones(()), atol=1e-6)
    assert (probs[:, [0, 2, 3], :, 3] < 0.99).all()


def test_delta_gradient_is_the_same_in_both_paths():
    query, key = make_inputs()
    grads = []
    for return_attn in (False, True):
        attn = make_attn('learned', class_freq=FREQ)
        out = attn(query, key, return_attn=return_attn)
        out = out[0] if return_attn else out
        out.square().sum().backward()
        grads.append(attn.dfa_bias.delta.grad.clone())
    assert grads[0].abs().sum() > 0
    assert torch.allclose(grads[0], grads[1], atol=1e-5)
    # the softmax is shift invariant: the gradient sums to 0 over classes
    assert grads[0].sum().abs() < 1e-5


def test_shared_bias_is_referenced_not_registered():
    bias = DFABias(C, 'learned', class_freq=FREQ)
    layers = [
        DynamicFocalAttention(D, H, C, bias=bias) for _ in range(2)
    ]
    for layer in layers:
        assert layer.dfa_bias is bias
        assert not any('dfa_delta' in n for n, _ in layer.named_parameters())
    with pytest.raises(ValueError, match='num_classes=6'):
        DynamicFocalAttention(D, H, C + 1, bias=bias)


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
@pytest.mark.parametrize('return_attn', [False, True])
def test_autocast_is_finite_even_with_huge_biases(dtype, return_attn):
    # 6e4 is close to fp16's maximum 65504: without subtracting the bias's
    # max, logits + bias overflow to inf and the softmax gives NaN.
    prior = [6e4, 6e4 - 1.0, 0.0, -5.0, 3.0]
    attn = make_attn('fixed', prior=prior)
    query, key = make_inputs()
    reference = attn(query, key)
    with torch.autocast('cpu', dtype=dtype):
        out = attn(query, key, return_attn=return_attn)
    out, probs = out if return_attn else (out, None)
    assert out.dtype == dtype
    assert torch.isfinite(out).all()
    assert torch.allclose(out.float(), reference, atol=0.1, rtol=0.05)
    if probs is not None:
        assert torch.isfinite(probs).all()
        assert torch.allclose(probs.float().sum(-1), torch.ones(()),
                              atol=1e-2)


def test_dropout_only_while_training():
    attn = make_attn('learned', class_freq=FREQ, dropout=0.5)
    query, key = make_inputs()
    assert torch.equal(attn(query, key), attn(query, key))
    attn.train()
    torch.manual_seed(1)
    assert not torch.allclose(attn(query, key), attn.eval()(query, key))


def test_per_query_bias_in_token_to_image_attention_cancels():
    """The DFA reference code also adds the class bias in the token-to-image
    attentions, one value per query row (the class token asking); the
    softmax over the image tokens cancels it: same output, zero gradient
    (docs/dfa.md, "Defects of the reference code")."""
    from mmimb.models.layers import SDPAttention
    torch.manual_seed(0)
    attn = SDPAttention(D, H, downsample_rate=2).eval()
    tokens, image = torch.randn(B, C, D), torch.randn(B, N, D)
    row_bias = torch.randn(1, 1, C, 1, requires_grad=True)
    out = attn(tokens, image, attn_mask=row_bias.expand(1, 1, C, N))
    assert torch.allclose(out, attn(tokens, image), atol=1e-6)
    out.square().sum().backward()
    assert row_bias.grad.abs().max() < 1e-6


@pytest.mark.parametrize('offset', [0, 2, 3])
def test_class_tokens_among_other_tokens(offset):
    """With T keys of which classes 0..C-1 sit at offset..offset+C-1, the
    bias reweights those keys by exp(p_c) and leaves the others (weight 1)."""
    T = C + 3
    p = torch.randn(C, generator=torch.Generator().manual_seed(5))
    torch.manual_seed(0)
    attn = DynamicFocalAttention(D, H, C, bias_mode='fixed',
                                 prior=p.tolist(), num_tokens=T,
                                 class_offset=offset).eval()
    g = torch.Generator().manual_seed(6)
    query, key = torch.randn(B, N, D, generator=g), torch.randn(
        B, T, D, generator=g)
    weights = torch.ones(T)
    weights[offset:offset + C] = p.exp()
    d = D // H
    q = attn.q_proj(query).view(B, N, H, d).transpose(1, 2)
    k = attn.k_proj(key).view(B, T, H, d).transpose(1, 2)
    v = attn.v_proj(key).view(B, T, H, d).transpose(1, 2)
    probs = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), -1)
    probs = probs * weights / (probs * weights).sum(-1, keepdim=True)
    expected = attn.out_proj((probs @ v).transpose(1, 2).reshape(B, N, D))
    assert torch.allclose(attn(query, key), expected, atol=1e-5)
    with pytest.raises(ValueError, match='do not fit'):
        DynamicFocalAttention(D, H, C, num_tokens=C + 1, class_offset=2,
                              bias_mode='none')
    with pytest.raises(ValueError, match=r'\(B, 8, D\)'):
        attn(query, key[:, :C])
