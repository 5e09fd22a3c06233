"""The CPU training fast path: bf16 autocast without an accelerator
(CPUAmpOptimWrapper, ``--amp``) and channels-last (ChannelsLastHook)."""
import logging
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS
from cifar_folders import data_root_options, write_cifar_folders
from toolrun import TEST_DATA, check_ok, derived_config, run_tool

from mmimb.engine import launch
from mmimb.engine.hooks import ChannelsLastHook
from mmimb.engine.optimizers import (CPUAmpOptimWrapper, cpu_bf16_support,
                                     cpu_amp_optim_wrapper)

BF16, _ = cpu_bf16_support()
needs_bf16 = pytest.mark.skipif(not BF16, reason='no bf16 instructions')


@pytest.mark.parametrize('flags, expected', [
    ('fpu sse avx512f avx512_bf16 avx512bw', (True, 'avx512_bf16')),
    ('fpu sse amx_bf16 amx_tile', (True, 'amx_bf16')),
    ('fp asimd bf16 sve', (True, 'bf16')),
    ('fpu sse avx2 avx512f avx512bw', (False, 'lists none of')),
])
def test_bf16_detection_reads_cpu_flags(tmp_path, monkeypatch, flags,
                                        expected):
    key = 'Features' if 'asimd' in flags else 'flags'
    cpuinfo = tmp_path / 'cpuinfo'
    cpuinfo.write_text(f'processor\t: 0\n{key}\t\t: {flags}\n\n')
    real_open = open
    monkeypatch.setattr(
        'builtins.open', lambda path, *a, **k: real_open(
            cpuinfo if path == '/proc/cpuinfo' else path, *a, **k))
    supported, reason = cpu_bf16_support()
    assert supported is expected[0]
    assert expected[1] in reason


def _linear_wrapper(**kwargs):
    model = torch.nn.Linear(4, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    return model, OPTIM_WRAPPERS.build(
        dict(type='CPUAmpOptimWrapper', optimizer=optimizer, **kwargs))


@needs_bf16
def test_wrapper_autocasts_to_bf16_and_steps_in_fp32():
    model, wrapper = _linear_wrapper()
    x = torch.randn(5, 4)
    with wrapper.optim_context(model):
        out = model(x)
    assert out.dtype == torch.bfloat16
    before = model.weight.detach().clone()
    wrapper.update_params(out.float().square().mean())
    assert model.weight.dtype == torch.float32
    assert model.weight.grad is None or model.weight.grad.abs().sum() == 0
    assert not torch.equal(before, model.weight)
    # Outside its context the model runs in fp32 again.
    assert model(x).dtype == torch.float32


def test_wrapper_without_bf16_says_so_once_and_runs_fp32(monkeypatch):
    monkeypatch.setattr(cpu_amp_optim_wrapper, 'cpu_bf16_support',
                        lambda: (False, 'the CPU (x86_64) lists none'))
    messages = []
    monkeypatch.setattr(
        cpu_amp_optim_wrapper, 'print_log',
        lambda msg, **kwargs: messages.append((msg, kwargs['level'])))
    model, wrapper = _linear_wrapper()
    with wrapper.optim_context(model):
        assert model(torch.randn(2, 4)).dtype == torch.float32
    assert len(messages) == 1 and messages[0][1] == logging.WARNING
    assert 'training in fp32' in messages[0][0]
    assert '\n' not in messages[0][0]


def test_wrapper_keeps_gradient_accumulation():
    model, wrapper = _linear_wrapper(accumulative_counts=2)
    reference = OptimWrapper(
        torch.optim.SGD(torch.nn.Linear(4, 3).parameters(), lr=0.1),
        accumulative_counts=2)
    assert isinstance(wrapper, CPUAmpOptimWrapper)
    assert wrapper._accumulative_counts == reference._accumulative_counts


def _amp_config(wrapper: str = 'OptimWrapper') -> Config:
    return Config(dict(optim_wrapper=dict(
        type=wrapper, optimizer=dict(type='SGD', lr=0.1))))


def test_enable_amp_picks_the_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    cfg = _amp_config()
    launch.enable_amp(cfg)
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.loss_scale == 'dynamic'

    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    monkeypatch.setattr(cpu_amp_optim_wrapper, 'cpu_bf16_support',
                        lambda: (True, 'the CPU has avx512_bf16'))
    cfg = _amp_config()
    launch.enable_amp(cfg)
    assert cfg.optim_wrapper.type == 'CPUAmpOptimWrapper'
    assert 'loss_scale' not in cfg.optim_wrapper


def test_enable_amp_without_bf16_keeps_fp32_with_one_line(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    monkeypatch.setattr(cpu_amp_optim_wrapper, 'cpu_bf16_support',
                        lambda: (False, 'the CPU (x86_64) lists none of x'))
    messages = []
    monkeypatch.setattr(launch, 'print_log',
                        lambda msg, **kwargs: messages.append(msg))
    cfg = _amp_config()
    launch.enable_amp(cfg)
    assert cfg.optim_wrapper.type == 'OptimWrapper'
    assert messages == ['--amp: no GPU and the CPU (x86_64) lists none of '
                        'x; training in fp32']


def test_enable_amp_refuses_other_wrappers():
    with pytest.raises(launch.ConfigError, match="'ZeroRedundancy"):
        launch.enable_amp(_amp_config('ZeroRedundancyOptimizer'))


class TinyConvNet(torch.nn.Module):

    def __init__(self):
        super().__init__()
        self.data_preprocessor = torch.nn.Identity()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.fc = torch.nn.Linear(4, 2)


def test_channels_last_hook_converts_weights_and_inputs():
    model = TinyConvNet()
    hook = ChannelsLastHook()
    hook.before_run(SimpleNamespace(model=model))
    hook.before_run(SimpleNamespace(model=model))  # a second run: one hook
    assert model.conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not model.conv.weight.is_contiguous()
    assert model.fc.weight.is_contiguous()
    assert len(model.data_preprocessor._forward_hooks) == 1
    out = model.data_preprocessor(dict(inputs=torch.randn(2, 3, 8, 8),
                                       data_samples=None))
    assert out['inputs'].is_contiguous(memory_format=torch.channels_last)
    assert not out['inputs'].is_contiguous()
    # Anything that is not a 4-D batch passes unchanged.
    flat = torch.randn(2, 5)
    assert model.data_preprocessor(dict(inputs=flat))['inputs'] is flat


@pytest.mark.parametrize('config, scope', [
    ('tiny_cifar_lt_ccar.py', 'cls'),
    ('tiny_seg_synthetic.py', 'seg'),
])
def test_train_with_amp_and_channels_last_on_the_cpu(tmp_path, config, scope):
    work = tmp_path / 'work'
    config = derived_config(tmp_path, TEST_DATA / 'configs' / config,
                            "custom_hooks = [dict(type='ChannelsLastHook')]")
    options = data_root_options(write_cifar_folders(tmp_path / 'cifar')) \
        if scope == 'cls' else []
    result = run_tool('tools/train.py', config, '--amp', '--work-dir', work,
                      *(['--cfg-options', *options] if options else []))
    check_ok(result)
    log = next(work.glob('*/*.log')).read_text()
    expected = 'CPUAmpOptimWrapper' if BF16 else 'training in fp32'
    assert expected in log + result.stderr
    assert 'ChannelsLastHook' in log
