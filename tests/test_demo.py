"""`make demo`'s tool: a short run prints where everything went, and it is
there."""
import json
from pathlib import Path

from toolrun import check_ok, run_tool


def test_demo_writes_and_reports_its_outputs(tmp_path):
    result = run_tool('tools/demo.py', '--work-dir', tmp_path,
                      '--num-images', '2', '--cfg-options',
                      'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
                      'val_dataloader.dataset.num_samples=4')
    check_ok(result)
    lines = result.stdout.splitlines()
    lines = lines[next(i for i, line in enumerate(lines)
                       if line.startswith('demo finished')):]
    reported = {
        line.split(':', 1)[0].strip(): line.split(':', 1)[1].strip()
        for line in lines if line.startswith('  ') and ':' in line
    }
    for key in ('log', 'checkpoint', 'metrics', 'predictions'):
        assert Path(reported[key]).is_file(), key
    metrics = json.loads(Path(reported['metrics']).read_text())
    assert {'mIoU', 'mDice'} <= set(metrics)
    assert Path(reported['predictions']).read_bytes()[:4] == b'\x89PNG'
    assert 'DFAHead' in lines[0]
    assert any('learned DFA bias per class' in line for line in lines)
