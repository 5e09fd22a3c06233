"""mmimb.analysis.precision (fp32 modules under autocast, gradient error)
and tools/analysis_tools/bf16_gradient_error.py on a checkpoint."""
import pytest
import torch
from torch import nn

from mmimb.analysis.precision import gradient_error, modules_in_fp32
from mmimb.engine.config_check import ConfigError


def test_gradient_error_against_a_flattened_computation():
    g = torch.Generator().manual_seed(0)
    names = ['backbone.conv.weight', 'backbone.bn.bias', 'head.fc.weight',
             'header.weight']
    shapes = [(4, 3, 3, 3), (4, ), (10, 4), (2, 2)]
    ref = {n: torch.randn(s, generator=g) for n, s in zip(names, shapes)}
    other = {n: r + 0.1 * torch.randn(r.shape, generator=g)
             for n, r in ref.items()}

    def flat(d, keep):
        return torch.cat([d[n].flatten() for n in names if keep(n)])

    out = gradient_error(ref, other, ['backbone', 'head'])
    for group, keep in (('all', lambda n: True),
                        ('backbone', lambda n: n.startswith('backbone.')),
                        ('head', lambda n: n.startswith('head.'))):
        r, o = flat(ref, keep), flat(other, keep)
        assert out[group] == pytest.approx(
            ((o - r).norm() / r.norm()).item(), rel=1e-6)
    r, o = flat(ref, lambda n: True), flat(other, lambda n: True)
    assert out['cosine'] == pytest.approx(
        torch.nn.functional.cosine_similarity(o, r, dim=0).item(), rel=1e-6)
    assert gradient_error(ref, ref)['all'] == 0
    with pytest.raises(ValueError, match='header.weight'):
        gradient_error(ref, {n: v for n, v in other.items()
                             if n != 'header.weight'})


def toy():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))


def grads(model, x, y, bf16):
    model.zero_grad()
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
        out = model(x)
    nn.functional.cross_entropy(out.float(), y).backward()
    return out.dtype, {n: p.grad.clone() for n, p in model.named_parameters()}


def test_modules_in_fp32_match_fp32_and_are_restored():
    model = toy()
    x = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 1, 2, 3])
    _, reference = grads(model, x, y, False)
    dtype, plain = grads(model, x, y, True)
    assert dtype == torch.bfloat16
    assert gradient_error(reference, plain)['all'] > 1e-3
    with modules_in_fp32(model, (nn.Conv2d, nn.BatchNorm2d, nn.Linear)) as n:
        assert n == 5
        dtype, kept = grads(model, x, y, True)
    assert dtype == torch.float32
    for name in reference:
        torch.testing.assert_close(kept[name], reference[name])
    # Only the classifier: its output is fp32, the convolutions stay bf16.
    with modules_in_fp32(model, (nn.Linear, )):
        dtype, head = grads(model, x, y, True)
    assert dtype == torch.float32
    assert gradient_error(reference, head)['all'] > 1e-3
    assert all('forward' not in vars(m) for m in model.modules())
    assert grads(model, x, y, True)[0] == torch.bfloat16


class ListHead(nn.Module):
    """Takes its features as a list and a keyword, as decode heads do."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, feats, scale=None):
        return self.conv(feats[0]) * scale['value']


def test_modules_in_fp32_casts_tensors_in_lists_and_keywords():
    head = ListHead()
    x = torch.randn(1, 3, 4, 4).bfloat16()
    scale = dict(value=torch.ones(()).bfloat16())
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert head([x], scale=scale).dtype == torch.bfloat16
        with modules_in_fp32(head, (ListHead, )):
            assert head([x], scale=scale).dtype == torch.float32


def test_modules_in_fp32_restores_a_forward_set_on_the_instance():
    model = toy()
    own = model[8].forward
    model[8].forward = own
    with modules_in_fp32(model, (nn.Linear, )):
        assert model[8].forward is not own
    assert model[8].forward is own


def tool_rows(tool, capsys, *argv) -> dict:
    """The tool's table: ``{variant: [modules, loss, all, ..., cosine]}``."""
    tool.main(list(argv))
    lines = capsys.readouterr().out.splitlines()
    # mmengine's checkpoint loader prints a line first.
    first = [line.startswith('2 batches of the train set; fp32 loss')
             for line in lines].index(True)
    return {line.split(' | ')[0][2:]: line.strip('| ').split(' | ')[1:]
            for line in lines[first + 3:]}


def test_tool_on_a_segmentation_checkpoint(load_script, tiny_seg_config,
                                           tiny_seg_checkpoint, capsys):
    tool = load_script('tools/analysis_tools/bf16_gradient_error.py')
    config = str(tiny_seg_config)
    rows = tool_rows(tool, capsys, config, tiny_seg_checkpoint,
                     '--num-batches', '2', '--keep-fp32', 'Conv2d',
                     '--channels-last')
    assert list(rows) == ['bf16', 'bf16, Conv2d in fp32']
    # mmcv's Conv2d (a subclass of torch's) and torch's, all of them.
    assert int(rows['bf16'][0]) == 0
    assert int(rows['bf16, Conv2d in fp32'][0]) == 13
    errors = {name: float(row[2]) for name, row in rows.items()}
    assert 0 < errors['bf16, Conv2d in fp32'] < errors['bf16'] < 1
    assert all(0.5 < float(row[-1]) <= 1 for row in rows.values())
    # The whole model in fp32, same layout: the fp32 computation itself,
    # dropout masks included.
    rows = tool_rows(tool, capsys, config, tiny_seg_checkpoint,
                     '--num-batches', '2', '--keep-fp32', 'EncoderDecoder',
                     '--cfg-options', 'model.backbone.drop_rate=0.5')
    row = rows['bf16, EncoderDecoder in fp32']
    assert int(row[0]) == 1 and float(row[2]) == 0 and float(row[-1]) == 1


@pytest.mark.parametrize('argv, message', [
    (['--keep-fp32', 'Conv2d,Nonsense'], "'Nonsense' is neither a module"),
    (['--num-batches', '0'], '--num-batches=0'),
])
def test_tool_refuses_bad_input_in_one_line(load_script, tiny_seg_config,
                                            tiny_seg_checkpoint, argv,
                                            message):
    tool = load_script('tools/analysis_tools/bf16_gradient_error.py')
    with pytest.raises(ConfigError, match=message):
        tool.main([str(tiny_seg_config), tiny_seg_checkpoint, *argv])


def test_tool_names_a_missing_checkpoint(load_script, tiny_seg_config,
                                         tmp_path):
    tool = load_script('tools/analysis_tools/bf16_gradient_error.py')
    with pytest.raises(ConfigError, match='none.pth.*does not exist'):
        tool.main([str(tiny_seg_config), str(tmp_path / 'none.pth')])
