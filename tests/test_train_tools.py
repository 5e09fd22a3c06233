"""tools/train.py and tools/test.py end to end on a segmentation config."""
import pickle

import cv2
import pytest
from toolrun import check_ok, derived_config, run_tool

from mmimb.datasets import TissueGenerator


@pytest.fixture
def files_config(tmp_path, tiny_seg_config):
    """The tiny config reading PNG files in mmseg's layout."""
    root = tmp_path / 'data'
    generator = TissueGenerator(img_size=32, seed=3)
    for split in ('train', 'val'):
        (root / 'img_dir' / split).mkdir(parents=True)
        (root / 'ann_dir' / split).mkdir(parents=True)
        for i in range(4):
            img, label = generator(i)
            cv2.imwrite(str(root / 'img_dir' / split / f'{i}.png'),
                        img[..., ::-1])
            cv2.imwrite(str(root / 'ann_dir' / split / f'{i}.png'), label)
    dataset = f"""dict(
    _delete_=True,
    type='BaseSegDataset',
    data_root={str(root)!r},
    metainfo=dict(classes=('stroma', 'tumor', 'lymphocytes', 'necrosis',
                           'fat')),
    img_suffix='.png',
    seg_map_suffix='.png',
    data_prefix=dict(img_path='img_dir/{{split}}',
                     seg_map_path='ann_dir/{{split}}'),
    pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations'),
        dict(type='PackSegInputs')
    ])"""
    body = (f"train_dataloader = dict(dataset={dataset.format(split='train')})"
            f"\nval_dataloader = dict(dataset={dataset.format(split='val')})"
            '\ntest_dataloader = val_dataloader\n')
    return derived_config(tmp_path, tiny_seg_config, body)


def test_train_then_test_with_show_dir_and_out(tmp_path, files_config):
    work = tmp_path / 'work'
    check_ok(
        run_tool('tools/train.py', files_config, '--work-dir', work,
                 '--cfg-options', 'train_cfg.max_iters=2'))
    result = run_tool('tools/test.py', files_config, work / 'iter_2.pth',
                      '--work-dir', work, '--show-dir', 'painted', '--out',
                      tmp_path / 'preds.pkl')
    check_ok(result)
    assert 'mIoU' in result.stdout + result.stderr
    assert len(list((work / 'painted').glob('vis_data/vis_image/*.png'))) == 4
    with open(tmp_path / 'preds.pkl', 'rb') as f:
        predictions = pickle.load(f)
    assert len(predictions) == 4
    assert predictions[0]['pred_sem_seg']['data'].shape[-2:] == (32, 32)


def test_test_tool_rejects_missing_checkpoint(tiny_seg_config, tmp_path):
    result = run_tool('tools/test.py', tiny_seg_config, tmp_path / 'x.pth')
    assert result.returncode == 2
    assert 'x.pth' in result.stderr and 'does not exist' in result.stderr


def test_show_dir_on_generated_data_is_refused(tiny_seg_config, tmp_path):
    (tmp_path / 'x.pth').write_bytes(b'')
    result = run_tool('tools/test.py', tiny_seg_config, tmp_path / 'x.pth',
                      '--show-dir', 'v')
    assert result.returncode == 2
    assert 'generates its images' in result.stderr
