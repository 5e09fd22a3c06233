"""tools/analysis_tools/class_difficulty.py (and the per-class scores of
mmimb.evaluation it writes) and plot_dfa_bias.py."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mmimb.engine.config_check import ConfigError
from mmimb.models import DFABias
from mmimb.models.layers import difficulty_prior
from mmimb.evaluation import class_scores, label_ignore_index
from tools.analysis_tools.class_difficulty import main as class_difficulty
from tools.analysis_tools.plot_dfa_bias import main as plot_dfa_bias

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / 'tests' / 'data' / 'configs' / 'tiny_dfa_synthetic.py'


def test_class_scores_by_hand():
    # intersection, union, prediction, label areas of 3 classes
    areas = torch.tensor([[5., 0., 2.], [10., 4., 2.], [6., 4., 2.],
                          [9., 0., 2.]])
    scores = class_scores(areas, ['a', 'b', 'c'])
    assert scores['dice'] == pytest.approx([10 / 15, 0.0, 1.0])
    assert scores['iou'] == pytest.approx([0.5, 0.0, 1.0])
    areas[2:, 1] = 0
    with pytest.raises(ConfigError, match=r"\['b'\] occur neither"):
        class_scores(areas, ['a', 'b', 'c'])


def test_class_difficulty_writes_the_hcfa_prior(tmp_path):
    from mmimb.cli.train import main as train
    from mmimb.cli.train import parse_args
    from mmimb.engine import build_runner, load_config
    work = tmp_path / 'work'
    options = ['model.decode_head.bias_mode=none']
    train([str(TINY), '--work-dir', str(work), '--cfg-options', *options])
    out = tmp_path / 'dice.json'
    result = class_difficulty([
        str(TINY), str(work / 'iter_4.pth'), '--out', str(out),
        '--work-dir', str(tmp_path / 'eval'), '--cfg-options', *options
    ])
    written = json.loads(out.read_text())
    assert written['classes'] == [
        'stroma', 'tumor', 'lymphocytes', 'necrosis', 'fat'
    ]
    assert written['dice'] == result['dice']

    # independent count: predict the validation images again, one by one
    cfg = load_config(str(TINY),
                      parse_args([str(TINY), '--cfg-options', *options]))
    cfg.work_dir, cfg.load_from = str(tmp_path / 'check'), None
    runner = build_runner(cfg, 'test')
    runner.load_checkpoint(str(work / 'iter_4.pth'))
    preds, labels = [], []
    for batch in runner.test_dataloader:
        for sample in runner.model.eval().test_step(batch):
            preds.append(sample.pred_sem_seg.data.numpy().ravel())
            labels.append(sample.gt_sem_seg.data.numpy().ravel())
    pred, label = np.concatenate(preds), np.concatenate(labels)
    for c, dice in enumerate(written['dice']):
        inter = np.sum((pred == c) & (label == c))
        expected = 2 * inter / (np.sum(pred == c) + np.sum(label == c))
        assert dice == pytest.approx(expected)

    bias = DFABias(5, 'fixed', prior='difficulty', class_dice=str(out))
    assert torch.allclose(bias()[0],
                          difficulty_prior(written['dice']).float())


def test_plot_dfa_bias(tmp_path):
    run = tmp_path / 'run' / '20260101_000000' / 'vis_data'
    run.mkdir(parents=True)
    rows = [dict(step=i, loss=1.0, **{
        'dfa_bias/tumor': -0.1 * i,
        'dfa_bias/necrosis': 0.2 * i,
        'dfa_bias_centred/tumor': -0.15 * i,
        'dfa_bias_centred/necrosis': 0.15 * i,
        'dfa_bias/layers.1/tumor': 0.5,
    }) for i in (10, 20, 30)]
    (run / 'scalars.json').write_text('\n'.join(map(json.dumps, rows)))
    out = tmp_path / 'bias.png'
    series = plot_dfa_bias([str(tmp_path / 'run'), '--out', str(out)])
    assert series['dfa_bias/necrosis'] == [(10, 2.0), (20, 4.0), (30, 6.0)]
    assert series['dfa_bias_centred/tumor'][-1] == (30, -4.5)
    assert series['dfa_bias/layers.1/tumor'][0] == (10, 0.5)
    assert out.stat().st_size > 1000
    (run / 'scalars.json').write_text(json.dumps(dict(step=1, loss=1.0)))
    with pytest.raises(ConfigError, match='DFABiasLoggerHook'):
        plot_dfa_bias([str(run / 'scalars.json')])


def test_ignore_index_comes_from_the_decode_head_then_the_dataset():
    from types import SimpleNamespace as NS

    from mmseg.datasets import BaseSegDataset
    from mmseg.models.decode_heads import FCNHead
    dataset = BaseSegDataset(lazy_init=True, ignore_index=7)
    head = FCNHead(in_channels=4, channels=4, num_classes=3, num_convs=1,
                   ignore_index=9)
    assert label_ignore_index(NS(decode_head=head), dataset) == 9
    assert label_ignore_index(NS(), dataset) == 7
    assert label_ignore_index(NS(), NS(metainfo={})) == 255
