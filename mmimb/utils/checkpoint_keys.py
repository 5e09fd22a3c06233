"""What a pretrained checkpoint holds, read before it is loaded, so that a
file of the wrong layout stops with a message that says how to fix it
(mmengine's ``Pretrained`` initialisation stops with a bare
``AssertionError: backbone. is not in the pretrained model``)."""
import os.path as osp
from typing import Optional, Set

import torch

from .errors import ConfigError

CONVERTER = 'tools/model_converters/sam2mmpretrain.py'


def checkpoint_prefixes(checkpoint: str) -> Optional[Set[str]]:
    """The first components of the state-dict keys (``'backbone.'``, ...).

    A local file is memory-mapped, so that only its index is read (about a
    millisecond for SAM ViT-B); other sources go through mmengine's loader.

    Returns:
        set or None: ``None`` if the file cannot be read without running
        its pickled code (a full training checkpoint); mmengine then reads
        it as usual.
    """
    try:
        if osp.isfile(checkpoint):
            loaded = torch.load(checkpoint, map_location='cpu', mmap=True,
                                weights_only=True)
        else:
            from mmengine.runner import CheckpointLoader
            loaded = CheckpointLoader.load_checkpoint(
                checkpoint, map_location='cpu')
    # Whatever cannot be read here is left to mmengine's loader.
    except Exception:
        return None
    if not isinstance(loaded, dict):
        return None
    state_dict = loaded.get('state_dict', loaded)
    return {str(k).split('.')[0] + '.' for k in state_dict}


def check_checkpoint_prefix(checkpoint: str, prefix: str,
                            field: str) -> None:
    """Check that ``checkpoint`` holds weights under ``prefix``.

    Args:
        checkpoint: The file (or URL) of a ``Pretrained`` init_cfg.
        prefix: Its ``prefix`` (``'backbone.'``, ``'decode_head.'``).
        field: The config field of the part it initialises (for the
            message), e.g. ``'model.decode_head'``.

    Raises:
        ConfigError: Naming the file, what it holds and how to fix it: an
            official SAM checkpoint to convert, an encoder-only file for a
            decoder, or another layout.
    """
    prefix = prefix if prefix.endswith('.') else prefix + '.'
    found = checkpoint_prefixes(checkpoint)
    if found is None or prefix in found:
        return
    option = f'--cfg-options {field}.init_cfg.checkpoint=PATH'
    if 'image_encoder.' in found:
        raise ConfigError(
            f'{field}.init_cfg.checkpoint={checkpoint!r} is an official '
            'Segment Anything checkpoint (image_encoder.*, mask_decoder.* '
            f'keys), not converted: run `python {CONVERTER} {checkpoint} '
            'checkpoints/sam_vit-b_mmpretrain.pth` and pass the converted '
            f'file ({option}; the DFA configs load it into model.backbone '
            'and model.decode_head)')
    if prefix == 'decode_head.' and 'backbone.' in found:
        raise ConfigError(
            f'{field}.init_cfg.checkpoint={checkpoint!r} has no decoder '
            f"weights (no 'decode_head.' keys; it holds {sorted(found)}), "
            "e.g. mmpretrain's released encoder-only SAM file or one "
            'converted with --encoder-only. Re-convert the official SAM '
            f'checkpoint with `python {CONVERTER} sam_vit_b_01ec64.pth '
            f'{checkpoint}` (it writes the decoder too), or set '
            f'{field}.init_cfg=None to train the decoder from scratch')
    raise ConfigError(
        f'{field}.init_cfg.checkpoint={checkpoint!r} has no {prefix!r} keys '
        f'(it holds {sorted(found)}); pass a checkpoint with them '
        f'({option}) or set {field}.init_cfg.prefix to the one it has')
