"""An MMSegmentation segmentor built for inference, and its logits for a
batch of RGB tiles.

Tiles go through the model's own ``test_step``, so its data preprocessor
(BGR/RGB conversion, normalisation, test-time padding), its inference mode
(``whole`` or ``slide``) and its post-processing (padding removed, logits
resized to the tile) are the ones used in testing. The config's
``test_pipeline`` is not applied: a whole-slide run reads tiles at the
requested mpp, which stands for the pipeline's resizing.
"""
import contextlib
import hashlib
import os.path as osp
import re
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.config import Config

from mmimb.engine.config_check import (ConfigError, check_type,
                                       dataset_classes, infer_scope)
from mmimb.utils import resolve_auto_class_freq


def _decode_head(model):
    head = model.decode_head
    return head[-1] if isinstance(head, torch.nn.ModuleList) else head


def resolve_device(device: Optional[str]) -> torch.device:
    """``device`` as a torch device; None picks the GPU when there is one.

    Raises:
        ConfigError: For an unknown device or a GPU that is not there.
    """
    if device is None:
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ConfigError(f'--device {device!r}: expected cpu, cuda or '
                          'cuda:N')
    if dev.type == 'cuda' and not torch.cuda.is_available():
        raise ConfigError(f'--device {device}: no CUDA GPU is available')
    if dev.type not in ('cpu', 'cuda'):
        raise ConfigError(f'--device {device}: expected cpu, cuda or cuda:N')
    return dev


def init_segmentor(config: Union[str, Config],
                   checkpoint: Optional[str] = None,
                   device: Union[str, torch.device] = 'cpu',
                   cfg_options: Optional[dict] = None):
    """Build an MMSegmentation segmentor from a config, load its weights
    strictly and put it in eval mode on ``device``.

    ``class_freq='auto'`` entries (filled from the training set by mmimb's
    runner) get a uniform placeholder: the trained values come from the
    checkpoint, where DFA's prior is a buffer, and the losses, the only
    modules keeping class statistics outside the checkpoint, play no part
    in inference.

    Returns:
        tuple: The model and the checkpoint's ``dataset_meta`` (or None),
        with the config's class names filled in when the checkpoint has none.

    Raises:
        ConfigError: For a missing config or checkpoint, a config that is not
            an MMSegmentation one, or a checkpoint that does not fit it.
    """
    from mmengine.runner import CheckpointLoader
    from mmengine.runner.checkpoint import load_state_dict
    from mmseg.apis import init_model
    import mmimb  # noqa: F401  (registers mmimb's components)

    if isinstance(config, str):
        if not osp.isfile(config):
            raise ConfigError(f'config file {config!r} does not exist')
        config = Config.fromfile(config)
    cfg = config.copy()
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    scope = infer_scope(cfg)
    if scope != 'mmseg':
        raise ConfigError(f'default_scope={scope!r}: whole-slide inference '
                          'needs an MMSegmentation segmentor config')
    from mmseg.registry import DATASETS, MODELS
    check_type(MODELS, cfg.model.get('type'), 'model', scope)
    head = cfg.model.get('decode_head')
    head = head[-1] if isinstance(head, (list, tuple)) else head
    num_classes = (head or {}).get('num_classes')
    if num_classes:
        resolve_auto_class_freq(cfg.model,
                                lambda: [1.0 / num_classes] * num_classes)
    try:
        model = init_model(cfg, None, device='cpu')
    except Exception as e:
        raise ConfigError(f'cannot build the model of the config: '
                          f'{type(e).__name__}: {str(e).splitlines()[0]}')
    meta = None
    if checkpoint is not None:
        if not osp.isfile(checkpoint):
            raise ConfigError(f'checkpoint {checkpoint!r} does not exist')
        try:
            ckpt = CheckpointLoader.load_checkpoint(
                checkpoint, 'cpu', logger='silent')
        except Exception as e:
            raise ConfigError(f'cannot read checkpoint {checkpoint}: '
                              f'{type(e).__name__}: '
                              f'{str(e).splitlines()[0][:200]}')
        state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) \
            else None
        if not isinstance(state, dict):
            raise ConfigError(f'checkpoint {checkpoint} holds no state dict')
        state = {re.sub(r'^module\.', '', k): v for k, v in state.items()}
        try:
            load_state_dict(model, state, strict=True, logger='silent')
        except RuntimeError as e:
            lines = [line.strip() for line in str(e).splitlines()
                     if line.strip()]
            raise ConfigError(
                f'checkpoint {checkpoint} does not fit the model of the '
                f'config: {"; ".join(lines[1:] or lines)[:400]}')
        meta = (ckpt.get('meta') or {}).get('dataset_meta')
    names = (meta or {}).get('classes')
    loader = cfg.get('test_dataloader') or {}
    if not names and loader.get('dataset'):
        names = dataset_classes(loader['dataset'], DATASETS, scope)
        if names:
            meta = dict(meta or {}, classes=tuple(names))
    model.to(device)
    model.eval()
    return model, meta


def num_classes_of(model) -> Tuple[int, int]:
    """(label count, output channels) of a segmentor; a single sigmoid
    channel gives two labels."""
    head = _decode_head(model)
    return int(head.num_classes), int(head.out_channels)


def model_fingerprint(model) -> str:
    """SHA-1 of the model's weights and buffers (names, shapes, values)."""
    digest = hashlib.sha1()
    for name, value in model.state_dict().items():
        digest.update(f'{name}{tuple(value.shape)}{value.dtype}'.encode())
        digest.update(value.detach().cpu().contiguous().view(-1).view(
            torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def tiles_to_inputs(tiles: Sequence[np.ndarray]) -> List[torch.Tensor]:
    """RGB uint8 (H, W, 3) tiles as the uint8 BGR (3, H, W) tensors that
    mmseg's loading transforms produce (they read images with OpenCV)."""
    return [
        torch.from_numpy(np.ascontiguousarray(t[..., ::-1].transpose(2, 0, 1)))
        for t in tiles
    ]


def autocast(device: torch.device, enabled: bool):
    """float16 autocast on a GPU, bfloat16 on the CPU; a no-op when off."""
    if not enabled:
        return contextlib.nullcontext()
    dtype = torch.float16 if device.type == 'cuda' else torch.bfloat16
    return torch.autocast(device.type, dtype=dtype)


def predict_logits(model, inputs: Sequence[torch.Tensor],
                   amp: bool = False) -> List[torch.Tensor]:
    """Float32 logits (C, H, W) of each input, on the model's device,
    through ``model.test_step`` (for one sigmoid channel: probabilities).

    Args:
        model: An MMSegmentation segmentor in eval mode.
        inputs: Equal-size uint8 BGR (3, H, W) tensors
            (:func:`tiles_to_inputs`).
        amp: Autocast (float16 on a GPU, bfloat16 on the CPU).
    """
    from mmseg.structures import SegDataSample
    samples = []
    for x in inputs:
        shape = tuple(x.shape[1:])
        samples.append(
            SegDataSample(
                metainfo=dict(img_shape=shape, ori_shape=shape,
                              pad_shape=shape)))
    device = next(model.parameters()).device
    with torch.no_grad(), autocast(device, amp):
        out = model.test_step(dict(inputs=list(inputs), data_samples=samples))
    return [s.seg_logits.data.float() for s in out]
