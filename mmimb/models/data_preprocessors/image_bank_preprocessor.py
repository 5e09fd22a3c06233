"""CIFAR-style augmentation of a whole batch on its device, and a data
preprocessor that takes batches of sample indices into an image bank kept on
the device (:class:`~mmimb.datasets.ImageBankDataset`)."""
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from mmpretrain.models.utils import ClsDataPreprocessor
from mmpretrain.registry import MODELS
from torch import Tensor


def random_crop_flip(images: Tensor,
                     padding: int,
                     flip_prob: float = 0.5,
                     pad_val: int = 0,
                     generator: Optional[torch.Generator] = None) -> Tensor:
    """Pad, randomly crop back to size and randomly flip every image of a
    batch, on the batch's device.

    Each image is padded by ``padding`` pixels of value ``pad_val`` on all
    four sides, cut back to its size at an offset drawn uniformly from
    ``{0, ..., 2 * padding}`` for rows and columns independently, and then
    mirrored left-right with probability ``flip_prob``: the distribution of
    mmpretrain's ``RandomCrop(crop_size=(H, W), padding=padding,
    pad_val=pad_val)`` followed by ``RandomFlip(prob=flip_prob,
    direction='horizontal')`` (tests/test_image_bank.py compares the two).

    Args:
        images: (B, C, H, W), any dtype (uint8 before normalisation, so that
            the padding is ``pad_val`` in pixel units as on the CPU).
        padding: Pixels added on each side; 0 crops nothing.
        flip_prob: Probability of a horizontal flip.
        pad_val: Value of the padded pixels.
        generator: Random generator on the batch's device; default: torch's
            global one (seeded by mmengine's ``randomness``).

    Returns:
        Tensor: (B, C, H, W), same dtype and device.
    """
    if images.dim() != 4:
        raise ValueError('random_crop_flip: expected images of shape '
                         f'(B, C, H, W), got {tuple(images.shape)}')
    if isinstance(padding, bool) or not isinstance(padding, int) \
            or padding < 0:
        raise ValueError(f'random_crop_flip: padding={padding!r}, expected '
                         'a non-negative int')
    if not 0.0 <= flip_prob <= 1.0:
        raise ValueError(f'random_crop_flip: flip_prob={flip_prob}, '
                         'expected a probability in [0, 1]')
    batch, _, height, width = images.shape
    device = images.device
    span = 2 * padding + 1
    dy = torch.randint(0, span, (batch, ), device=device, generator=generator)
    dx = torch.randint(0, span, (batch, ), device=device, generator=generator)
    flip = torch.rand(batch, device=device, generator=generator) < flip_prob
    padded = F.pad(images, (padding, ) * 4, value=pad_val) if padding \
        else images
    rows = dy[:, None] + torch.arange(height, device=device)
    cols = torch.arange(width, device=device).expand(batch, width)
    # The flip mirrors the cropped window: output column x reads window
    # column W - 1 - x.
    cols = torch.where(flip[:, None], width - 1 - cols, cols) + dx[:, None]
    index = torch.arange(batch, device=device)[:, None, None]
    # Advanced indices on both sides of the channel slice: (B, H, W, C).
    out = padded[index, :, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()


def _sample_indices(inputs) -> Optional[Tensor]:
    """The batch as a (B,) index tensor if it is one (ImageBankDataset
    items, collated by ``default_collate`` or ``pseudo_collate``)."""
    if isinstance(inputs, (list, tuple)) and inputs and all(
            torch.is_tensor(x) and x.dim() == 0 for x in inputs):
        inputs = torch.stack(list(inputs))
    if torch.is_tensor(inputs) and inputs.dim() == 1 and not (
            inputs.is_floating_point() or inputs.is_complex()
            or inputs.dtype in (torch.bool, torch.uint8)):
        return inputs
    return None


@MODELS.register_module()
class ImageBankClsDataPreprocessor(ClsDataPreprocessor):
    """:class:`mmpretrain.models.ClsDataPreprocessor` that augments on the
    device and reads images from a bank held there.

    A batch whose ``inputs`` are sample indices (the items of
    :class:`~mmimb.datasets.ImageBankDataset`) is gathered from the bank of
    decoded uint8 images that :class:`~mmimb.engine.ImageBankHook` put on
    the model's device, one bank for training and one for evaluation. In
    training, every batch (gathered, or images stacked by the data loader)
    then gets :func:`random_crop_flip` before the usual colour conversion
    and normalisation, so the CPU neither decodes nor augments: for
    CIFAR-10-LT that replaces ``RandomCrop(32, padding=4)`` and
    ``RandomFlip(0.5)`` of the CPU pipeline. Validation and test batches are
    not augmented.

    Example::

        data_preprocessor = dict(
            type='ImageBankClsDataPreprocessor', crop_padding=4,
            flip_prob=0.5, num_classes=10, mean=..., std=..., to_rgb=True)

    (``configs/_base_/datasets/cifar10_lt_if100_bank.py`` sets it up with
    the dataset and the hook.)

    Args:
        crop_padding: Padding of the random crop in training; 0 crops
            nothing.
        flip_prob: Probability of a horizontal flip in training.
        pad_val: Value of padded pixels (before normalisation).
        **kwargs: :class:`ClsDataPreprocessor` arguments (``mean``, ``std``,
            ``to_rgb``, ``num_classes``, ...).
    """

    MODES = ('train', 'eval')

    def __init__(self,
                 crop_padding: int = 0,
                 flip_prob: float = 0.0,
                 pad_val: int = 0,
                 **kwargs):
        super().__init__(**kwargs)
        # Checked once here rather than at the first batch.
        random_crop_flip(torch.zeros(1, 1, 1, 1), crop_padding, flip_prob)
        self.crop_padding = crop_padding
        self.flip_prob = flip_prob
        self.pad_val = pad_val
        # Not buffers: the bank stays out of checkpoints.
        self._banks: Dict[str, Tensor] = {}
        self._sources: Dict[str, Tensor] = {}

    def set_bank(self, mode: str, images: Tensor) -> None:
        """Hold ``images`` ((N, C, H, W) uint8, row i = sample index i) on
        this preprocessor's device for ``mode`` (``'train'`` or
        ``'eval'``); the same tensor again is not copied again."""
        if mode not in self.MODES:
            raise ValueError(f'set_bank: mode {mode!r}, expected one of '
                             f'{self.MODES}')
        if not torch.is_tensor(images) or images.dim() != 4 \
                or images.dtype != torch.uint8:
            raise ValueError('set_bank: expected a uint8 tensor (N, C, H, '
                             f'W), got {getattr(images, "dtype", images)}'
                             f' {tuple(getattr(images, "shape", ()))}')
        if self._sources.get(mode) is images:
            return
        self._sources[mode] = images
        self._banks[mode] = images.to(self.device).contiguous()

    def forward(self, data: dict, training: bool = False) -> dict:
        inputs = data['inputs']
        indices = _sample_indices(inputs)
        if indices is not None:
            mode = 'train' if training else 'eval'
            bank = self._banks.get(mode)
            if bank is None:
                raise RuntimeError(
                    f'{type(self).__name__}: the batch holds sample indices '
                    f'(ImageBankDataset) but no {mode} image bank is set; '
                    "add custom_hooks=[dict(type='ImageBankHook')]")
            if bank.device != self.device:
                bank = self._banks[mode] = bank.to(self.device)
            # Checked where the loader made them (the CPU), so that a GPU
            # bank costs no synchronisation.
            if indices.numel() and (int(indices.min()) < 0
                                    or int(indices.max()) >= len(bank)):
                raise IndexError(
                    f'{type(self).__name__}: sample index out of the {mode} '
                    f'bank of {len(bank)} images (indices '
                    f'{int(indices.min())}..{int(indices.max())}); the '
                    'hook bound another dataset than the one that is read')
            inputs = bank[indices.to(self.device)]
        elif training and isinstance(inputs, (list, tuple)) and inputs:
            inputs = torch.stack([self.cast_data(x) for x in inputs])
        if training and torch.is_tensor(inputs) and (self.crop_padding
                                                     or self.flip_prob):
            inputs = random_crop_flip(
                self.cast_data(inputs), self.crop_padding, self.flip_prob,
                self.pad_val)
        if inputs is not data['inputs']:
            data = dict(data, inputs=inputs)
        return super().forward(data, training)
