"""Class Confidence Aware Reweighting (CCAR; Jagati et al., arXiv
2601.15924).

Each sample's cross-entropy is multiplied by

    Omega(p_t, f) = (b - f') ** (pivot - p_t)

with ``p_t`` the softmax probability of the true class, ``f`` the true
class's training frequency, ``b`` Euler's number in the paper and
``pivot = 0.75``. Dual phase (our reading of the paper, see
docs/ccar.md): ``f' = f`` below the pivot and ``f' = 1 - f`` above it, so
uncertain samples of rare classes get the largest weights and confident
samples of common classes are damped most. The weight is computed as
``exp((pivot - p_t) * log(b - f'))``; since ``|pivot - p_t| <= 1`` it lies in
``[1/b, b]`` and cannot overflow.
"""
import math
import numbers
from typing import Optional, Union

import torch
from mmengine.registry import MODELS
from torch import Tensor

from mmimb.utils import load_class_freq
from mmimb.utils.class_freq import ClassFreq
from .class_prior_loss import (ClassPriorLoss, compute_dtype,
                               soft_cross_entropy, split_target)
from .labels import guard_labels
from .logit_adjusted_loss import adjust_logits, prior_cross_entropy

LOGIT_ADJUSTMENTS = (None, 'la', 'balanced_softmax')
CONFIDENCES = ('adjusted', 'raw')


def resolve_base(base: Union[str, float]) -> float:
    """The number ``b`` of ``Omega = (b - f') ** (pivot - p_t)``.

    Args:
        base: ``'e'`` (Euler's number, the paper's choice) or a real number
            of at least 2. With ``b >= 2``, ``b - f' >= 1`` for every class,
            so ``Omega >= 1`` exactly when ``p_t <= pivot``, the property
            the method rests on; a smaller ``b`` would turn the weighting
            around for frequent classes. A larger ``b`` makes the weights
            depend less on the frequency and more on the confidence
            (``Omega -> b ** (pivot - p_t)``).

    Raises:
        ValueError: For any other value.
    """
    if isinstance(base, str):
        if base != 'e':
            raise ValueError(f"base={base!r}: expected 'e' (Euler's number) "
                             'or a number >= 2')
        return math.e
    if isinstance(base, bool) or not isinstance(base, numbers.Real) or \
            not math.isfinite(base) or base < 2:
        raise ValueError(
            f"base={base!r}: expected 'e' or a finite number >= 2, so that "
            "b - f' >= 1 for every class frequency f' in [0, 1]")
    return float(base)


def check_pivot(pivot: float) -> float:
    """Return ``pivot`` as a float if it is a confidence in [0, 1]."""
    if isinstance(pivot, bool) or not isinstance(pivot, numbers.Real) or \
            not 0 <= pivot <= 1:
        raise ValueError(f'pivot={pivot!r}: expected a probability in '
                         '[0, 1] (the paper uses 0.75)')
    return float(pivot)


def log_bases(freq: Tensor,
              base: Union[str, float] = 'e',
              dual_phase: bool = True) -> Tensor:
    """``log(b - f')`` below and, with ``dual_phase``, above the pivot.

    Args:
        freq: Class frequencies ``f`` (any shape), in [0, 1].
        base: ``'e'`` or a number >= 2, see :func:`resolve_base`.
        dual_phase: Whether ``f' = 1 - f`` above the pivot.

    Returns:
        Tensor: ``(2, *freq.shape)``: ``log(b - f)`` and
        ``log(b - 1 + f)``; ``(1, *freq.shape)`` without ``dual_phase``.
    """
    b = resolve_base(base)
    below = torch.log(b - freq)
    if not dual_phase:
        return below[None]
    return torch.stack([below, torch.log(b - 1 + freq)])


FREQ_NORMS = ('sum', 'max')


def weight_frequencies(freq: Tensor, freq_norm: str = 'sum') -> Tensor:
    """The frequencies ``f`` CCAR's weight reads, from frequencies that
    sum to 1.

    Args:
        freq: (C,) class frequencies summing to 1.
        freq_norm: ``'sum'``: ``f_c = n_c / N`` as the paper; ``'max'``:
            ``f_c = n_c / n_max`` (our option), which spreads the class
            term over ``[b - 1, b - n_min / n_max]`` instead of squeezing
            it near ``b`` (see docs/ccar.md).

    Returns:
        Tensor: (C,), in (0, 1].
    """
    if freq_norm not in FREQ_NORMS:
        raise ValueError(f'freq_norm={freq_norm!r}, expected one of '
                         f'{FREQ_NORMS}')
    return freq if freq_norm == 'sum' else freq / freq.max()


def omega_from_log_bases(prob: Tensor,
                         log_base: Tensor,
                         pivot: float,
                         target: Optional[Tensor] = None) -> Tensor:
    """``Omega = exp((pivot - p_t) * log(b - f'))`` from :func:`log_bases`,
    indexed as :func:`phase_log_base` does, in the dtype of ``prob``."""
    log_base = log_base.to(prob.dtype)
    return torch.exp(
        (pivot - prob) * phase_log_base(prob, log_base, pivot, target))


def phase_log_base(prob: Tensor,
                   log_base: Tensor,
                   pivot: float,
                   target: Optional[Tensor] = None) -> Tensor:
    """``log(b - f')`` of the phase each element is in: the first row of
    :func:`log_bases` below the pivot, the second at or above it (one row:
    a single phase).

    Without ``target`` the rows of ``log_base`` broadcast to ``prob``; with
    hard labels ``target`` (the shape of ``prob``) ``log_base`` is the
    per-class (1 or 2, C) table, read at each element's class and phase
    with a single gather.
    """
    if target is None:
        if log_base.shape[0] == 2:
            return torch.where(prob < pivot, log_base[0], log_base[1])
        return log_base[0]
    if log_base.shape[0] == 2:
        target = torch.add(target, prob >= pivot, alpha=log_base.shape[1])
    return torch.take(log_base, target)


def ccar_weight(prob_true: Tensor,
                freq_true: Union[Tensor, float],
                pivot: float = 0.75,
                base: Union[str, float] = 'e',
                dual_phase: bool = True) -> Tensor:
    """The CCAR weight ``Omega(p_t, f) = (b - f') ** (pivot - p_t)``.

    Args:
        prob_true: Probability ``p_t`` of the true class, any shape, values
            in [0, 1].
        freq_true: Training frequency ``f`` of the true class, in [0, 1],
            broadcastable to ``prob_true``.
        pivot: Confidence at which the weight is 1. Defaults to 0.75.
        base: ``'e'`` or a number >= 2, see :func:`resolve_base`.
        dual_phase: Use ``f' = 1 - f`` for ``p_t >= pivot`` (our reading);
            ``False`` uses ``f' = f`` everywhere.

    Returns:
        Tensor: Omega, the broadcast shape of the inputs, in at least
        float32 and within ``[1/b, b]``.

    Raises:
        ValueError: If a frequency is outside [0, 1] (e.g. a class count),
            where ``b - f'`` may be negative and Omega NaN.
    """
    prob = compute_dtype(prob_true)
    freq = torch.as_tensor(freq_true, dtype=prob.dtype, device=prob.device)
    in_range = (freq >= 0) & (freq <= 1)
    if not in_range.all():
        raise ValueError(
            f'ccar_weight: freq_true must hold frequencies in [0, 1], got '
            f'{sorted(set(freq[~in_range].tolist()))[:10]}; divide class '
            'counts by their total')
    return omega_from_log_bases(prob, log_bases(freq, base, dual_phase),
                                check_pivot(pivot))


def class_weight_ratio(class_freq: ClassFreq,
                       pivot: float = 0.75,
                       base: Union[str, float] = 'e',
                       dual_phase: bool = True,
                       freq_norm: str = 'sum',
                       steps: int = 1001) -> float:
    """How much CCAR's class term separates the rarest class from the most
    frequent one: the largest ratio ``Omega(p, f_rare) / Omega(p, f_common)``
    over confidences ``p`` on a grid of ``steps`` points in [0, 1].

    Below the pivot the ratio is ``((b - f_rare) / (b - f_common)) **
    (pivot - p)``, largest at ``p = 0``; with frequencies summing to 1 both
    bases stay close to ``b`` and the ratio close to 1.

    Args:
        class_freq: (C,) class counts or frequencies.
        pivot, base, dual_phase: See :func:`ccar_weight`.
        freq_norm: See :func:`weight_frequencies`.
        steps: Grid points of ``p``.

    Returns:
        float: The largest ratio, at least 1.
    """
    freq = weight_frequencies(
        load_class_freq(class_freq, name='class_weight_ratio.class_freq'),
        freq_norm)
    prob = torch.linspace(0, 1, steps, dtype=torch.float64)
    rare = ccar_weight(prob, freq.min(), pivot, base, dual_phase)
    common = ccar_weight(prob, freq.max(), pivot, base, dual_phase)
    return float((rare / common).max())


def adjustment_tau(logit_adjust: Optional[str], tau: float) -> float:
    """The temperature of the logit adjustment CCAR wraps (0: plain CE)."""
    if logit_adjust not in LOGIT_ADJUSTMENTS:
        raise ValueError(f'logit_adjust={logit_adjust!r}, expected one of '
                         f'{LOGIT_ADJUSTMENTS}')
    if logit_adjust == 'la':
        return float(tau)
    if tau != 1.0:
        raise ValueError(
            f"tau={tau} only applies with logit_adjust='la' (got "
            f'logit_adjust={logit_adjust!r}; Balanced Softmax is tau=1)')
    return 1.0 if logit_adjust == 'balanced_softmax' else 0.0


def _ccar_elementwise(logits: Tensor, target: Tensor, soft: bool,
                      log_prior: Tensor, log_base: Tensor, pivot: float,
                      detach_weight: bool, tau: float, confidence: str,
                      ignore_index: Optional[int],
                      fused: bool = True) -> Tensor:
    """CCAR per element; ``log_base`` holds the per-class
    :func:`log_bases`, (1 or 2, C). Ignored elements come out as 0.
    ``fused=False`` keeps Omega in the autograd graph (exact higher-order
    derivatives) where ``fused=True`` folds its derivative into a constant
    multiple of cross-entropy's gradient (exact first-order only)."""
    adjusted = adjust_logits(logits, log_prior, tau)
    own_confidence = confidence == 'raw' and tau != 0
    if soft:
        log_prob = torch.log_softmax(adjusted, dim=1)
        conf_log_prob = torch.log_softmax(logits, dim=1) \
            if own_confidence else log_prob
        per_class = log_base.view(len(log_base), 1, -1,
                                  *([1] * (logits.dim() - 2)))
        weight = omega_from_log_bases(conf_log_prob.exp(), per_class, pivot)
        if detach_weight:
            weight = weight.detach()
        return soft_cross_entropy(log_prob, target, weight)
    ce = prior_cross_entropy(adjusted, target, False, ignore_index)
    # Ignored labels index no class: any class does, their CE is 0.
    safe = target if ignore_index is None else target.clamp(
        0, log_base.shape[1] - 1)
    if own_confidence or not fused:
        conf_ce = prior_cross_entropy(logits, target, False, ignore_index) \
            if own_confidence else ce
        weight = omega_from_log_bases(
            torch.exp(-conf_ce), log_base, pivot, safe)
        return (weight.detach() if detach_weight else weight) * ce
    # Here p_t = exp(-CE), so Omega is a function of CE alone and
    # d(Omega CE)/dCE = Omega (1 + CE log(b - f') p_t): the gradient is a
    # per-element multiple of cross-entropy's own. Computing that multiple
    # outside autograd leaves one fused cross-entropy in the graph. At
    # classification sizes each per-sample operation costs its dispatch
    # more than its arithmetic, hence few of them, in place on fresh (N,)
    # tensors. (A custom autograd.Function around the log-softmax measured
    # slower on the CPU: its Python forward and backward cost more than the
    # graph nodes it saves.)
    with torch.no_grad():
        prob = ce.neg().exp_()
        log_b = phase_log_base(prob, log_base.to(ce.dtype), pivot, safe)
        weight = torch.rsub(prob, pivot).mul_(log_b).exp_()
        if detach_weight:
            scale, offset = weight, None
        else:
            value = weight * ce
            # Omega (1 + CE log(b - f') p_t) = Omega + (Omega CE) (p_t ...)
            scale = torch.addcmul(weight, value, prob.mul_(log_b))
            offset = value.sub_(scale * ce)
    if offset is None:
        return scale * ce
    # offset + scale * CE has the value Omega * CE and the gradient
    # scale * dCE, with a single node in the graph.
    return torch.addcmul(offset, scale, ce)


def ccar_loss(logits: Tensor,
              target: Tensor,
              class_freq: ClassFreq,
              pivot: float = 0.75,
              base: Union[str, float] = 'e',
              dual_phase: bool = True,
              detach_weight: bool = False,
              logit_adjust: Optional[str] = None,
              tau: float = 1.0,
              confidence: str = 'adjusted',
              ignore_index: Optional[int] = None,
              fused: bool = True,
              freq_norm: str = 'sum') -> Tensor:
    """Element-wise CCAR loss ``Omega(p_t, f_t) * CE``.

    Args:
        logits: (N, C) or (N, C, *spatial).
        target: Hard labels (N,) / (N, *spatial), or soft labels of the
            shape of ``logits`` (then ``sum_c y_c Omega(p_c, f_c) CE_c``,
            which is linear in the labels like Mixup's loss).
        class_freq: (C,) training frequencies or counts of every class,
            positive (normalised here), as a tensor, list or
            class-statistics JSON path (see
            :func:`mmimb.utils.load_class_freq`). Validated on every call;
            the registered :class:`CCARLoss` validates once.
        pivot, base, dual_phase: See :func:`ccar_weight`.
        detach_weight: Treat Omega as a constant in the backward pass (the
            authors' code does not).
        logit_adjust: ``None`` (cross-entropy), ``'la'`` (logit-adjusted
            cross-entropy with ``tau``) or ``'balanced_softmax'``.
        tau: Temperature of ``logit_adjust='la'``.
        confidence: ``'adjusted'``: ``p_t`` is the probability under the
            loss's own (adjusted) softmax, ``exp(-loss)``; ``'raw'``: under
            the unadjusted softmax the model predicts with. Only differs
            with a logit adjustment.
        ignore_index: Hard label whose elements get loss 0; any other label
            must lie in ``[0, C)``.
        fused: See :class:`CCARLoss`; ``False`` for exact second-order
            derivatives.
        freq_norm: ``'sum'`` (paper) or ``'max'``, see
            :func:`weight_frequencies`.

    Returns:
        Tensor: (N,) or (N, *spatial).
    """
    if confidence not in CONFIDENCES:
        raise ValueError(f'confidence={confidence!r}, expected one of '
                         f'{CONFIDENCES}')
    target, soft = split_target(logits, target, 'ccar_loss')
    freq = load_class_freq(
        class_freq, num_classes=logits.shape[1],
        name='ccar_loss.class_freq').to(logits.device)
    if soft:
        ignore_index = None
    else:
        target, ignore_index = guard_labels(target, logits.shape[1],
                                            ignore_index, 'ccar_loss')
    return _ccar_elementwise(
        compute_dtype(logits), target, soft, freq.log(),
        log_bases(weight_frequencies(freq, freq_norm), base, dual_phase),
        check_pivot(pivot),
        detach_weight, adjustment_tau(logit_adjust, tau), confidence,
        ignore_index, bool(fused))


@MODELS.register_module()
class CCARLoss(ClassPriorLoss):
    """Class Confidence Aware Reweighting loss (Jagati et al., arXiv
    2601.15924): cross-entropy (or logit-adjusted cross-entropy, or
    Balanced Softmax) of each sample multiplied by
    ``Omega = (b - f') ** (pivot - p_t)``.

    Registered in mmengine's root MODELS, so mmpretrain heads
    (``loss=dict(type='CCARLoss', ...)``) and mmseg decode heads
    (``loss_decode=dict(type='CCARLoss', ...)``) both find it.

    Shapes:
        - classification: logits (N, C), hard labels (N,), or soft labels
          (N, C) from Mixup/CutMix, handled as
          ``sum_c y_c Omega(p_c, f_c) CE_c`` (exact for hard labels and
          linear in the label mix, as Mixup's loss is);
        - segmentation: logits (N, C, H, W), labels (N, H, W); pixels equal
          to ``ignore_index`` are left out of the sum and of the mean.

    Args:
        class_freq (list | str | Tensor): Class frequencies or counts of the
            training set, a class-statistics JSON path, or ``'auto'``
            (resolved by mmimb's runner). A class of frequency 0 is
            rejected.
        pivot (float): Confidence ``omega`` at which the weight is 1.
            Defaults to 0.75 (paper).
        base (str | float): ``'e'`` (paper) or a number >= 2 used in place
            of ``e``. Defaults to ``'e'``.
        dual_phase (bool): ``f' = 1 - f`` above the pivot (our reading).
            Defaults to True.
        detach_weight (bool): Stop gradients through Omega. Defaults to
            False (as the authors' code).
        logit_adjust (str, optional): ``None``, ``'la'`` or
            ``'balanced_softmax'``: the loss Omega multiplies.
        tau (float): Temperature of ``logit_adjust='la'``. Defaults to 1.0.
        confidence (str): ``'adjusted'`` (p_t from the loss's own softmax,
            our reading) or ``'raw'`` (from the unadjusted logits).
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``.
        ignore_index (int, optional): Hard label to ignore; mmseg's decode
            heads pass theirs at call time.
        loss_name (str): Name in mmseg's losses dict. Defaults to
            ``'loss_ccar'``.
        fused (bool): Compute the backward pass of hard-label CCAR with
            ``p_t`` from the loss's own softmax as one fused cross-entropy
            times a per-element multiplier (faster, less memory). The
            multiplier is a constant to autograd, so the value and the
            first-order gradient are exact but **second-order derivatives
            are wrong** (``create_graph=True``: gradient penalties,
            ``gradgradcheck``, MAML-style meta-learning). Set ``False`` to
            keep Omega in the graph for those. Defaults to True. Soft
            labels and ``confidence='raw'`` with a logit adjustment always
            use the full graph.
        freq_norm (str): The frequency ``f`` of the weight: ``'sum'``,
            ``n_c / N`` as the paper (frequencies summing to 1, which keep
            the class term close to inert, see docs/ccar.md), or ``'max'``,
            ``n_c / n_max`` (our option). The logit adjustment always uses
            ``n_c / N``. Defaults to ``'sum'``.
    """

    def __init__(self,
                 class_freq,
                 pivot: float = 0.75,
                 base: Union[str, float] = 'e',
                 dual_phase: bool = True,
                 detach_weight: bool = False,
                 logit_adjust: Optional[str] = None,
                 tau: float = 1.0,
                 confidence: str = 'adjusted',
                 loss_weight: float = 1.0,
                 reduction: str = 'mean',
                 ignore_index: Optional[int] = None,
                 loss_name: str = 'loss_ccar',
                 fused: bool = True,
                 freq_norm: str = 'sum'):
        super().__init__(class_freq, loss_weight, reduction, ignore_index,
                         loss_name)
        self.register_buffer(
            'log_base',
            log_bases(
                weight_frequencies(self.class_freq, freq_norm), base,
                dual_phase),
            persistent=False)
        if confidence not in CONFIDENCES:
            raise ValueError(f'CCARLoss: confidence={confidence!r}, expected '
                             f'one of {CONFIDENCES}')
        self.pivot = check_pivot(pivot)
        self.base = base
        self.dual_phase = bool(dual_phase)
        self.detach_weight = bool(detach_weight)
        self.logit_adjust = logit_adjust
        self.tau = adjustment_tau(logit_adjust, tau)
        self.confidence = confidence
        self.fused = bool(fused)
        self.freq_norm = freq_norm

    def elementwise(self, logits: Tensor, target: Tensor, soft: bool,
                    ignore_index: Optional[int]) -> Tensor:
        return _ccar_elementwise(logits, target, soft, self.log_prior,
                                 self.log_base,
                                 self.pivot, self.detach_weight, self.tau,
                                 self.confidence, ignore_index, self.fused)

    def extra_repr(self) -> str:
        return (f'pivot={self.pivot}, base={self.base!r}, dual_phase='
                f'{self.dual_phase}, detach_weight={self.detach_weight}, '
                f'logit_adjust={self.logit_adjust!r}, tau={self.tau}, '
                f'confidence={self.confidence!r}, fused={self.fused}, '
                f'freq_norm={self.freq_norm!r}, ' +
                super().extra_repr())
