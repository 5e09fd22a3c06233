"""The offline gradient conflict tool on a checkpoint, and the plot tool on
what the hook and the tool saved."""
import numpy as np
import pytest
import torch

from mmimb.analysis import gradient_conflict
from mmimb.engine.config_check import ConfigError


@pytest.fixture
def tool(load_script):
    return lambda name: load_script(f'tools/analysis_tools/{name}.py')


def test_offline_tool_on_a_segmentation_checkpoint(tool, tiny_seg_config,
                                                   tiny_seg_checkpoint,
                                                   tmp_path, capsys):
    out = tmp_path / 'out'
    tool('gradient_conflict').main([
        str(tiny_seg_config), tiny_seg_checkpoint, '--num-batches', '2',
        '--out', str(out)
    ])
    printed = capsys.readouterr().out
    assert 'conflict_fraction' in printed
    assert '100.0% of the' in printed
    assert sorted(p.name for p in out.iterdir()) == [
        'gradient_conflict.npz', 'heatmap.png', 'layers.png'
    ]
    with np.load(out / 'gradient_conflict.npz') as data:
        assert data['matrix'].shape == (5, 5)
        assert int(data['num_batches']) == 2
        # 2 batches of 4 images of 32 x 32 pixels, none ignored.
        assert data['counts'].sum() == 2 * 4 * 32 * 32
        assert len(data['class_names']) == 5


def test_offline_tool_names_a_missing_checkpoint(tool, tiny_seg_config,
                                                 tmp_path):
    with pytest.raises(ConfigError, match='does not exist'):
        tool('gradient_conflict').main(
            [str(tiny_seg_config), str(tmp_path / 'none.pth')])


def test_plot_tool_draws_heatmaps_layers_and_evolution(tool, tmp_path,
                                                       capsys):
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(),
        torch.nn.Linear(4 * 4 * 4, 3))
    x, y = torch.randn(9, 3, 6, 6), torch.arange(9) % 3
    for iteration in (0, 10, 20):
        gradient_conflict(model, x, y).to_npz(
            str(tmp_path / f'iter_{iteration}.npz'), iteration=iteration)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.1 * torch.randn_like(p))
    out = tmp_path / 'figures'
    tool('plot_gradient_conflict').main([
        str(tmp_path), '--out', str(out), '--class-names', 'a', 'b', 'c',
        '--iterations', '0', '20'
    ])
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        'evolution.png', 'heatmap_iter_0.png', 'heatmap_iter_20.png',
        'layers_iter_0.png', 'layers_iter_20.png'
    ]
    assert all((out / n).stat().st_size > 1000 for n in names)
    with pytest.raises(ConfigError, match='2 names for 3 classes'):
        tool('plot_gradient_conflict').main(
            [str(tmp_path), '--class-names', 'a', 'b'])


def test_plot_tool_compares_runs_one_curve_each(tool, tmp_path, capsys):
    """Two runs analysed at different iterations: one curve per run, each
    over its own iterations, not one list merged by iteration."""
    from mmimb.analysis.plot import load_results, plot_runs
    torch.manual_seed(0)
    x, y = torch.randn(9, 3, 6, 6), torch.arange(9) % 3
    for run, iterations in (('base', (0, 10, 20)), ('csba', (0, 5))):
        model = torch.nn.Sequential(
            torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(),
            torch.nn.Linear(4 * 4 * 4, 3))
        for iteration in iterations:
            gradient_conflict(model, x, y).to_npz(
                str(tmp_path / run / f'iter_{iteration}.npz'),
                iteration=iteration)
    out = tmp_path / 'figures'
    tool('plot_gradient_conflict').main(
        [str(tmp_path / 'base'), str(tmp_path / 'csba'), '--out', str(out)])
    assert sorted(p.name for p in out.iterdir()) == [
        'evolution.png', 'heatmap_base_iter_20.png', 'heatmap_csba_iter_5.png',
        'layers_base_iter_20.png', 'layers_csba_iter_5.png'
    ]
    runs = {run: load_results(sorted(
        str(p) for p in (tmp_path / run).glob('*.npz')))
        for run in ('base', 'csba')}
    fig = plot_runs(runs, str(tmp_path / 'check.png'))
    for ax in fig.axes:
        lines = {line.get_label(): list(line.get_xdata()) for line in
                 ax.lines if not line.get_label().startswith('_')}
        assert lines == {'base': [0, 10, 20], 'csba': [0, 5]}
    with pytest.raises(ConfigError, match='1 names for 2 runs'):
        tool('plot_gradient_conflict').main(
            [str(tmp_path / 'base'), str(tmp_path / 'csba'), '--labels', 'a'])
