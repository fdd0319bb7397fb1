"""The random neighbour sub-sampler of Neighbor2Neighbor (Huang et al. 2021, sec. 3.2), reusable.

Each image is cut into 2x2 cells. For every cell, one pixel goes to the first sub-image g1(y) and one of its
two *adjacent* pixels (horizontal or vertical neighbour, never the diagonal one) to the second, g2(y). Both
sub-images are (H/2, W/2); their pixels are neighbours in the original image but carry independent noise.

The choice is returned as index maps so the *same* g1 / g2 can be applied to other images (Nb2Nb applies
them to the network's full-resolution output; SelfIR to its own branches):

>>> idx1, idx2 = neighbour_indices(y)            # doctest: +SKIP
>>> sub1, sub2 = subsample(y, idx1), subsample(y, idx2)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

# cell positions: 0 = (0, 0), 1 = (0, 1), 2 = (1, 0), 3 = (1, 1); the 8 ordered adjacent pairs
ADJACENT_PAIRS = torch.tensor([[0, 1], [0, 2], [1, 0], [1, 3], [2, 0], [2, 3], [3, 1], [3, 2]])


def neighbour_indices(x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Random (g1, g2) cell-position maps, each (N, H/2, W/2) int64 in 0..3, one draw per image and cell.
    Odd trailing rows / columns are ignored."""
    n, _, h, w = x.shape
    if h < 2 or w < 2:
        raise ValueError(f"neighbour sub-sampling needs images of at least 2x2, got {h}x{w}")
    choice = torch.randint(0, len(ADJACENT_PAIRS), (n, h // 2, w // 2), generator=generator)
    pairs = ADJACENT_PAIRS[choice]  # (N, H/2, W/2, 2)
    return pairs[..., 0].to(x.device), pairs[..., 1].to(x.device)


def subsample(x: Tensor, index: Tensor) -> Tensor:
    """Pick, in every 2x2 cell of x (N, C, H, W), the pixel at cell position ``index`` (N, H/2, W/2)."""
    n, c, h, w = x.shape
    x = x[:, :, : h - h % 2, : w - w % 2]
    cells = F.pixel_unshuffle(x, 2).view(n, c, 4, h // 2, w // 2)  # channel layout c * 4 + (2 i + j)
    gather = index.view(n, 1, 1, h // 2, w // 2).expand(n, c, 1, h // 2, w // 2)
    return cells.gather(2, gather).squeeze(2)


def neighbour_pair(x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """(g1(x), g2(x)) with a fresh random choice."""
    idx1, idx2 = neighbour_indices(x, generator)
    return subsample(x, idx1), subsample(x, idx2)
