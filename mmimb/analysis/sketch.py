"""Seeded CountSketch of class gradients.

Each layer's gradient ``g`` (P entries) is mapped to ``S g`` with
``(S g)[b] = sum over i with h(i) = b of s(i) g[i]``, for a hash
``h: [P] -> [k]`` and signs ``s(i) = +-1`` drawn from a generator seeded by
``seed`` and the layer name, so every batch and every process sketches with
the same ``S``. ``S`` is linear: sums over batches and all-reduces commute
with it.

Error bound (for the inner products the cosines are made of). For any
vectors u, v, ``E <Su, Sv> = <u, v>`` and
``Var <Su, Sv> = (1/k) sum_{i != j} (u_i^2 v_j^2 + u_i v_i u_j v_j)
<= (|u|^2 |v|^2 + <u, v>^2) / k <= 2 |u|^2 |v|^2 / k``; the same holds for
the whole model, whose sketch is the layers' sketches side by side. For unit
u, v with cosine rho, Chebyshev's inequality applied to ``<Su, Sv>``,
``|Su|^2`` and ``|Sv|^2`` gives, with probability at least
``1 - 6 / (k t^2)``, ``|cos(Su, Sv) - rho| <= 2 t / (1 - t)`` for
``0 < t < 1``; e.g. ``k = 4096, t = 0.05``: error <= 0.105 with probability
>= 0.41, and the typical error is about ``sqrt(2 / k)`` = 0.022. A layer with
at most ``k`` parameters is kept exactly.
"""
import zlib
from typing import Optional, Tuple

import torch
from torch import Tensor


def sketch_hash(size: int, dim: int, seed: int, name: str,
                device=None) -> Tuple[Tensor, Tensor]:
    """The bucket (int64) and sign (+-1) of each of ``size`` entries, drawn
    from a generator seeded by ``seed`` and ``name``."""
    gen = torch.Generator().manual_seed(
        (seed * 1000003 + zlib.crc32(name.encode())) % (1 << 63))
    bucket = torch.randint(0, dim, (size, ), generator=gen)
    sign = torch.randint(0, 2, (size, ), generator=gen).float() * 2 - 1
    return bucket.to(device), sign.to(device)


def count_sketch(grads: Tensor, dim: int, seed: int, name: str,
                 hashed: Optional[Tuple[Tensor, Tensor]] = None) -> Tensor:
    """Sketch each row of ``grads``.

    Args:
        grads: Shape (K, P).
        dim: Sketch size k.
        seed: Seed shared by every call that must sketch alike.
        name: Layer name, mixed into the seed so layers hash independently.
        hashed: :func:`sketch_hash` of this layer, to reuse it.

    Returns:
        Tensor: Shape (K, min(P, k)); ``grads`` itself when P <= k.
    """
    if dim < 1:
        raise ValueError(f'sketch_dim={dim}; expected a positive size')
    size = grads.shape[1]
    if size <= dim:
        return grads
    bucket, sign = hashed or sketch_hash(size, dim, seed, name, grads.device)
    return grads.new_zeros(grads.shape[0], dim).index_add_(
        1, bucket, grads * sign)
