"""MMImbRunner keeps two runners built in the same second apart."""
import os.path as osp
import time

from mmengine.config import Config

from mmimb.engine.launch import build_runner


def test_runners_of_one_second_log_apart(tiny_seg_config, tmp_path,
                                         monkeypatch):
    now = 1e9  # a second no other runner of this test session has
    monkeypatch.setattr(time, 'time', lambda: now)
    runners = []
    for name in ('a', 'b'):
        cfg = Config.fromfile(str(tiny_seg_config))
        cfg.work_dir = str(tmp_path / name)
        runners.append(build_runner(cfg, 'train'))
    first, second = runners
    stamp = time.strftime('%Y%m%d_%H%M%S', time.localtime(now))
    assert first.timestamp == stamp
    assert second.timestamp == f'{stamp}_1'
    assert second.log_dir == osp.join(tmp_path, 'b', f'{stamp}_1')
    assert second.message_hub is not first.message_hub
    assert second.logger is not first.logger
    assert second.visualizer is not first.visualizer
    assert second.visualizer._vis_backends['LocalVisBackend']._save_dir \
        .startswith(second.log_dir)
