"""CSBA through the command-line tools: a few training iterations with the
training front end (mmimb.cli.train) on a tiny fixture, and the parameter
and FLOP counts of tools/analysis_tools/get_flops.py against closed
forms."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from cifar_folders import data_root_options, write_cifar_folders

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / 'tests' / 'data' / 'configs'


def load_tool(relpath: str):
    spec = importlib.util.spec_from_file_location(
        Path(relpath).stem, ROOT / relpath)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def cifar_root(tmp_path_factory) -> Path:
    return write_cifar_folders(tmp_path_factory.mktemp('cifar10'))


@pytest.mark.parametrize('config', ['tiny_cifar_lt_csba.py',
                                    'tiny_cifar_lt_multi_branch.py'])
def test_train_a_few_iterations(config, cifar_root, tmp_path):
    """The CIFAR-10-LT configs' neck swap, with CCAR, LongTailedDataset and
    LongTailMetric, through the training front end."""
    from mmimb.cli.train import main as train
    work_dir = tmp_path / 'work'
    train([str(CONFIGS / config), '--work-dir', str(work_dir),
           '--cfg-options', *data_root_options(cifar_root)])
    ckpt = work_dir / 'iter_3.pth'
    assert ckpt.is_file()
    state = torch.load(ckpt, map_location='cpu',
                       weights_only=False)['state_dict']
    # The attention expansion starts at zero; training must move it.
    assert state['neck.attention.expand.weight'].abs().sum() > 0
    logs = sorted(work_dir.glob('*/vis_data/scalars.json'))
    records = [json.loads(line) for line in logs[-1].read_text().splitlines()]
    losses = [r['loss'] for r in records if 'loss' in r]
    assert len(losses) == 3 and all(np.isfinite(losses))
    assert any('lt/macro_f1' in r for r in records)


def _built_params(model_cfg):
    from mmengine.config import Config

    from mmimb.engine.complexity import build_model_for_analysis
    model = build_model_for_analysis(Config.fromfile(model_cfg))
    return model, sum(p.numel() for p in model.parameters())


def test_get_flops_counts_match_closed_forms(tmp_path, capsys):
    tool = load_tool('tools/analysis_tools/get_flops.py')
    out = tmp_path / 'flops.json'
    tool.main([
        str(CONFIGS / 'tiny_cifar_lt_csba.py'), '--shape', '32',
        '--baseline',
        str(CONFIGS / 'tiny_cifar_lt_ccar.py'), '--out-json',
        str(out)
    ])
    printed = capsys.readouterr().out
    assert 'overhead of model over baseline' in printed
    result = json.loads(out.read_text())
    model, params = _built_params(CONFIGS / 'tiny_cifar_lt_csba.py')
    assert result['model']['params'] == params
    _, base_params = _built_params(CONFIGS / 'tiny_cifar_lt_ccar.py')
    assert result['baseline']['params'] == base_params

    # The neck on ResNet-8's (1, 64, 8, 8) map, D=64, B=3, C=10: three 3x3
    # convolutions, their eval-mode BatchNorm (2 per element in mmengine),
    # the squeeze (192 -> 16) and the class-specific expansion
    # (16 -> C*B*D); pooling, softmax and the element-wise fusion count zero
    # in mmengine. The CCAR loss's class_freq='auto' needs no data here.
    c, b, d, cin, hw = 10, 3, 64, 64, 8 * 8
    hidden = model.neck.attention.hidden_channels
    neck_flops = b * cin * d * 9 * hw + 2 * b * d * hw + b * d * hidden \
        + hidden * c * b * d
    assert result['model']['parts']['neck']['flops'] == neck_flops
    assert result['model']['parts']['head']['flops'] == c * d
    neck_params = sum(p.numel() for p in model.neck.parameters())
    assert result['model']['parts']['neck']['params'] == neck_params


def test_get_flops_rejects_a_missing_config(capsys):
    tool = load_tool('tools/analysis_tools/get_flops.py')
    with pytest.raises(SystemExit) as exit_info:
        tool.run_cli(lambda: tool.main(['no/such/config.py']))
    assert exit_info.value.code == 2
    assert "'no/such/config.py' does not exist" in capsys.readouterr().err


def test_get_flops_docstring_names_existing_configs():
    """The usage example in the tool's docstring must run as written."""
    import re
    doc = load_tool('tools/analysis_tools/get_flops.py').__doc__
    named = re.findall(r'configs/\S+\.py', doc)
    assert len(named) >= 2
    missing = [p for p in named if not (ROOT / p).is_file()]
    assert not missing, f'get_flops docstring names missing configs {missing}'
