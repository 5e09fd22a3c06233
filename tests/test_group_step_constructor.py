"""GroupStepOptimWrapperConstructor: the DFA bias group's constant learning
rate under the recipe's schedule, and its own gradient clip, with gradient
accumulation, bf16 autocast and fp16 loss scaling."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import PARAM_SCHEDULERS
from torch import nn

import mmimb  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
RECIPE = Config.fromfile(str(ROOT / 'configs' / 'dfa_bcss.py'))


class Toy(nn.Module):
    """A weight, a bias delta (named like DFA's) and a frozen part."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(2))
        self.head = nn.Module()
        self.head.dfa_delta = nn.Parameter(torch.zeros(2))
        self.frozen = nn.Linear(2, 2).requires_grad_(False)

    def forward(self, x):
        return (x * (self.weight + self.head.dfa_delta)).sum()


def wrapper_for(model, **changes):
    cfg = Config(dict(optim_wrapper=RECIPE.optim_wrapper)).optim_wrapper
    for key, value in changes.items():
        cfg[key] = value
    return build_optim_wrapper(model, cfg)


def groups(wrapper, model):
    delta = model.head.dfa_delta
    bias = [g for g in wrapper.optimizer.param_groups
            if any(p is delta for p in g['params'])]
    rest = [g for g in wrapper.optimizer.param_groups if g not in bias]
    return bias[0], rest


def test_frozen_modules_get_no_group():
    model = Toy()
    wrapper = wrapper_for(model)
    params = {id(p) for g in wrapper.optimizer.param_groups
              for p in g['params']}
    assert params == {id(model.weight), id(model.head.dfa_delta)}


def test_recipe_schedule_and_constant_bias_lr():
    """Learning rates at each optimizer step of the recipe's schedule (as
    mmengine's ParamSchedulerHook steps it), 6 iterations per epoch,
    against the reference's formula."""
    model = Toy()
    wrapper = wrapper_for(model)
    bias, rest = groups(wrapper, model)
    schedulers = [
        PARAM_SCHEDULERS.build(dict(cfg, optimizer=wrapper))
        for cfg in RECIPE.param_scheduler
    ]
    seen = []
    wrapper.optimizer.register_step_pre_hook(
        lambda opt, *_: seen.append((rest[0]['lr'], bias['lr'])))
    wrapper.initialize_count_status(model, 0, 35 * 6)
    epoch_of_step = []
    for epoch in range(35):
        for _ in range(6):
            wrapper.update_params(model(torch.ones(2)))
            if len(seen) > len(epoch_of_step):
                epoch_of_step.append(epoch)
            for s in schedulers:
                if not s.by_epoch:
                    s.step()
        for s in schedulers:
            if s.by_epoch:
                s.step()
    base = RECIPE.optim_wrapper.optimizer.lr
    start = RECIPE.param_scheduler[0].start_factor
    assert len(seen) == 35 * 6 // 2
    for k, ((lr, bias_lr), epoch) in enumerate(zip(seen, epoch_of_step)):
        # optimizer step k is iteration 2k + 1; the reference's k / 72
        # reached at step 72
        warm = min(1.0, start + (1 - start) * (2 * k + 1) / 145)
        decay = 1.0 if epoch < 25 else 0.1 if epoch < 29 else 0.01
        assert lr == pytest.approx(base * warm * decay, rel=1e-6), k
        assert bias_lr == pytest.approx(20 * base, rel=1e-12), k


def clipped_step(model, wrapper, micro_batches, scaler=None):
    """Micro-batch gradients (10, 0) and (0, 10) on delta, then one step;
    returns the change of delta and of the weight."""
    before = [model.head.dfa_delta.detach().clone(),
              model.weight.detach().clone()]
    for x in micro_batches:
        if scaler is None:
            wrapper.update_params(model(x))
        else:
            scaler.scale(model(x)).backward()
    if scaler is not None:
        scaler.step(wrapper.optimizer)
    return (model.head.dfa_delta.detach() - before[0],
            model.weight.detach() - before[1])


SGD = dict(type='SGD', lr=1.0, weight_decay=0.0)
BATCHES = [torch.tensor([20., 0.]), torch.tensor([0., 20.])]


@pytest.mark.parametrize('wrapper_type',
                         ['OptimWrapper', 'CPUAmpOptimWrapper'])
def test_bias_gradient_is_clipped_once_per_accumulated_step(wrapper_type):
    model = Toy()
    wrapper = wrapper_for(model, type=wrapper_type, optimizer=SGD)
    wrapper.initialize_count_status(model, 0, 2)
    delta, weight = clipped_step(model, wrapper, BATCHES)
    # accumulated gradient (10, 10), clipped to norm 0.5 at the step; lr x20
    assert delta.norm().item() == pytest.approx(20 * 0.5, rel=1e-5)
    assert delta[0].item() == pytest.approx(delta[1].item())
    # the other group is not clipped: (10, 10) at lr 1
    assert weight.tolist() == pytest.approx([-10.0, -10.0], rel=1e-2)


def test_bias_gradient_is_clipped_after_loss_unscaling():
    """What AmpOptimWrapper does on a GPU: scale the loss, and let
    GradScaler.step unscale before the optimizer steps."""
    model = Toy()
    wrapper = wrapper_for(model, optimizer=SGD, accumulative_counts=1)
    scaler = torch.amp.GradScaler('cpu', init_scale=1024.0)
    delta, weight = clipped_step(model, wrapper, [BATCHES[0] / 2])
    assert delta.norm().item() == pytest.approx(20 * 0.5, rel=1e-5)
    model.zero_grad()
    delta, weight = clipped_step(model, wrapper, [BATCHES[0] / 2], scaler)
    assert delta.norm().item() == pytest.approx(20 * 0.5, rel=1e-5)
    assert weight.tolist() == pytest.approx([-10.0, 0.0])
