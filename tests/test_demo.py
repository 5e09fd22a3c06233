"""`make demo`'s tool: a short run of each bias mode prints per-class IoU
side by side and where everything went, and it is there."""
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
    assert 'DFAHead' in lines[0] and '2 iterations per bias mode' in lines[0]
    header = lines[1].split()
    assert header[:3] == ['class', 'freq', 'difficulty']
    assert header[3:] == ['IoU', 'none', 'IoU', 'learned']
    table = {line.split()[0]: line.split()[1:] for line in lines[2:9]}
    assert list(table) == ['stroma', 'tumor', 'fat', 'lymphocytes',
                           'necrosis', 'mucin', 'mean']
    # Measured difficulty: the hard pair 0.20, the medium pair 0.08.
    assert table['necrosis'][1] == table['tumor'][1] == '0.20'
    assert table['mucin'][1] == '0.08' and table['stroma'][1] == '0.00'
    reported = {
        line.split(':', 1)[0].strip(): line.split(':', 1)[1].strip()
        for line in lines if line.startswith('  ') and ':' in line
    }
    for key in ('none log', 'none checkpoint', 'learned log',
                'learned checkpoint', 'metrics', 'predictions'):
        assert Path(reported[key]).is_file(), key
    metrics = json.loads(Path(reported['metrics']).read_text())
    assert set(metrics) == {'none', 'learned'}
    assert len(metrics['learned']['iou']) == 6
    iou = [float(v) for v in table['mean'][-2:]]
    assert iou == [round(100 * sum(m['iou']) / 6, 2)
                   for m in metrics.values()]
    assert Path(reported['predictions']).read_bytes()[:4] == b'\x89PNG'
    assert any('final DFA bias per class' in line for line in lines)
