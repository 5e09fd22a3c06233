"""Random Fourier-feature position encoding of an image grid (SAM)."""
import math
from typing import Tuple

import torch
from torch import Tensor, nn


class RandomFourierPositionEncoding(nn.Module):
    """Position encoding with random spatial frequencies, as SAM's prompt
    encoder uses for its dense image positional embedding.

    Coordinates of pixel centres are scaled to [-1, 1] and projected by a
    fixed Gaussian matrix; the encoding is ``[sin, cos]`` of the projection.
    It works for any grid size. The buffer name matches SAM's
    ``prompt_encoder.pe_layer`` so that its matrix loads by name.

    Args:
        embed_dims: Output width (even).
        scale: Standard deviation of the Gaussian frequencies.

    Shape:
        ``forward((h, w))`` returns (embed_dims, h, w).
    """

    def __init__(self, embed_dims: int, scale: float = 1.0):
        super().__init__()
        if embed_dims % 2:
            raise ValueError(f'embed_dims must be even, got {embed_dims}')
        self.register_buffer('positional_encoding_gaussian_matrix',
                             scale * torch.randn(2, embed_dims // 2))

    def forward(self, size: Tuple[int, int]) -> Tensor:
        h, w = size
        matrix = self.positional_encoding_gaussian_matrix
        # Coordinates in the matrix's dtype, so that the encoding follows the
        # module (``.double()``, ``.half()``).
        y = (torch.arange(h, device=matrix.device, dtype=matrix.dtype) +
             0.5) / h
        x = (torch.arange(w, device=matrix.device, dtype=matrix.dtype) +
             0.5) / w
        coords = torch.stack(torch.meshgrid(x, y, indexing='xy'), dim=-1)
        coords = (2 * coords - 1) @ matrix * (2 * math.pi)
        return torch.cat([coords.sin(), coords.cos()], dim=-1).permute(2, 0, 1)
