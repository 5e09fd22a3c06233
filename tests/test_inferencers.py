"""mmimb configs and checkpoints in the upstream inferencers: mmseg's
``MMSegInferencer`` with a DFA config, mmpretrain's
``ImageClassificationInferencer`` with a CSBA config. Each prediction is
compared with the model's own ``test_step`` on the same image."""
import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.apis import ImageClassificationInferencer
from mmpretrain.registry import MODELS as CLS_MODELS
from mmseg.apis import MMSegInferencer
from mmseg.registry import MODELS as SEG_MODELS
from mmseg.structures import SegDataSample
from toolrun import ROOT

from mmimb.datasets import EBHISegDataset
from mmimb.engine import resolve_config

DFA_CONFIG = (ROOT / 'configs' / 'dfa' /
              'dfa_mit-b0_1xb8-300it_ebhi-seg-224x224.py')
CSBA_CONFIG = (ROOT / 'configs' / 'csba' /
               'csba-ce_resnet32_1xb128-200e_cifar10-lt-if100.py')


def save_checkpoint(model, dataset_meta, path):
    # What mmengine's runner saves, the dataset's meta included.
    torch.save(
        dict(
            state_dict=model.state_dict(),
            meta=dict(dataset_meta=dataset_meta)), path)


@pytest.fixture(scope='module')
def dfa_run(tmp_path_factory):
    """The config as the runner writes it into its work dir (class_freq
    counted from a two-image training set in the converter's layout) and a
    checkpoint of that model."""
    tmp = tmp_path_factory.mktemp('dfa')
    rng = np.random.default_rng(0)
    for folder in ('img_dir/train', 'ann_dir/train'):
        (tmp / 'data' / folder).mkdir(parents=True)
    for i in range(2):
        cv2.imwrite(str(tmp / 'data' / 'img_dir' / 'train' / f'{i}.png'),
                    rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
        cv2.imwrite(str(tmp / 'data' / 'ann_dir' / 'train' / f'{i}.png'),
                    rng.integers(0, 7, (64, 64), dtype=np.uint8))
    cfg = Config.fromfile(str(DFA_CONFIG))
    cfg.train_dataloader.dataset.data_root = str(tmp / 'data')
    config = tmp / 'config.py'
    resolve_config(cfg).dump(str(config))
    init_default_scope('mmseg')
    model = SEG_MODELS.build(Config.fromfile(str(config)).model)
    save_checkpoint(model, EBHISegDataset.METAINFO, tmp / 'model.pth')
    return config, tmp / 'model.pth'


def test_mmseg_inferencer_with_a_dfa_config(dfa_run, tmp_path):
    config, checkpoint = dfa_run
    inferencer = MMSegInferencer(
        model=str(config), weights=str(checkpoint), device='cpu')
    assert type(inferencer.model.decode_head).__name__ == 'DFAHead'
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    result = inferencer(image, out_dir=str(tmp_path / 'out'))
    labels = result['predictions']
    assert labels.shape == (128, 128)
    # The model itself, on the same (BGR) image.
    sample = SegDataSample(
        metainfo=dict(img_shape=(128, 128), ori_shape=(128, 128)))
    with torch.no_grad():
        expected, = inferencer.model.test_step(
            dict(
                inputs=[torch.from_numpy(image).permute(2, 0, 1)],
                data_samples=[sample]))
    np.testing.assert_array_equal(labels,
                                  expected.pred_sem_seg.data[0].numpy())
    overlays = list((tmp_path / 'out' / 'vis').glob('*.jpg'))
    assert len(overlays) == 1


def test_dfa_config_before_training_names_the_missing_statistics(tmp_path):
    # The original config has class_freq='auto', which only mmimb's runner
    # resolves: the inferencer gets a one-line reason, not a wrong prior.
    with pytest.raises(ValueError, match="class_freq='auto'"):
        MMSegInferencer(model=str(DFA_CONFIG), device='cpu')


def test_mmpretrain_inferencer_with_a_csba_config(tmp_path):
    cfg = Config.fromfile(str(CSBA_CONFIG))
    init_default_scope('mmpretrain')
    model = CLS_MODELS.build(cfg.model)
    classes = cfg.val_dataloader.dataset.metainfo.classes
    save_checkpoint(model, dict(classes=classes), tmp_path / 'model.pth')
    inferencer = ImageClassificationInferencer(
        model=str(CSBA_CONFIG),
        pretrained=str(tmp_path / 'model.pth'),
        device='cpu')
    assert type(inferencer.model.neck).__name__ == 'CSBANeck'
    image = np.random.default_rng(1).integers(
        0, 256, (32, 32, 3), dtype=np.uint8)
    result, = inferencer(image)
    assert result['pred_class'] in classes
    with torch.no_grad():
        expected, = inferencer.model.test_step(
            dict(inputs=[torch.from_numpy(image).permute(2, 0, 1)]))
    np.testing.assert_allclose(
        result['pred_scores'], expected.pred_score.numpy(), rtol=1e-5)
    assert result['pred_label'] == int(expected.pred_label)
