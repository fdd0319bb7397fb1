"""Synthetic video sequences made from one still image with a known, smooth camera motion.

Each frame t is the still image seen through a small window whose position follows a smooth affine path
(translation + optional rotation / zoom), so the exact backward optical flow between consecutive frames
is known in closed form. Tests use it to check flow estimation, warping and occlusion masks, and video
fine-tuning, without any real video on disk.

Coordinates: a frame pixel p = (x, y) maps to canvas point ``A_t @ [x, y, 1]`` (``A_t`` is 2x3). The
backward flow of frame t towards frame t-1 (``flow[t]``) is ``A_{t-1}^{-1} A_t p - p``: where the content
of pixel p of frame t sits in frame t-1. So ``warp(frame[t-1], flow[t]) ~= frame[t]`` (see
:func:`selfrestore.flow.warp`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass
class MotionSequence:
    """Clean frames (T, H, W, C) float32 in [0, 1] and backward flows (T, H, W, 2) (flow[0] is zero)."""

    frames: np.ndarray
    flows: np.ndarray
    affines: np.ndarray  #: (T, 2, 3) frame -> canvas maps


def _affine(tx: float, ty: float, angle: float, scale: float, centre: tuple[float, float]) -> np.ndarray:
    """2x3 map frame -> canvas: rotate/zoom about the window centre, then translate."""
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    cx, cy = centre
    linear = np.array([[c, -s], [s, c]])
    offset = np.array([cx + tx, cy + ty]) - linear @ np.array([cx, cy])
    return np.concatenate([linear, offset[:, None]], axis=1)


def _compose_inverse(a_prev: np.ndarray, a_cur: np.ndarray) -> np.ndarray:
    """The 2x3 map A_prev^{-1} A_cur (frame t pixel -> frame t-1 pixel)."""
    full_prev = np.vstack([a_prev, [0, 0, 1]])
    full_cur = np.vstack([a_cur, [0, 0, 1]])
    return (np.linalg.inv(full_prev) @ full_cur)[:2]


def _sample(image: np.ndarray, affine: np.ndarray, height: int, width: int, order: int) -> np.ndarray:
    """Frame pixel (x, y) takes the canvas value at affine @ (x, y, 1) (spline interpolation, reflect)."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    cx = affine[0, 0] * xs + affine[0, 1] * ys + affine[0, 2]
    cy = affine[1, 0] * xs + affine[1, 1] * ys + affine[1, 2]
    channels = [ndimage.map_coordinates(image[..., c], [cy, cx], order=order, mode="reflect")
                for c in range(image.shape[2])]
    return np.clip(np.stack(channels, axis=-1), 0.0, 1.0).astype(np.float32)


def make_motion_sequence(image: np.ndarray, frames: int = 5, size: tuple[int, int] | None = None,
                         speed: float = 1.5, rotation: float = 0.0, zoom: float = 0.0,
                         seed: int = 0, order: int = 3) -> MotionSequence:
    """A sequence of ``frames`` windows of ``size`` (H, W) moving smoothly over ``image`` (H, W[, C]).

    ``speed`` is the mean translation in pixels per frame (direction drawn from ``seed``, slowly
    turning), ``rotation`` the rotation per frame in radians, ``zoom`` the relative scale change per
    frame. The window starts at the image centre; content near the edges comes from outside the previous
    frame's view, which is what occlusion masks must flag.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        image = image[..., None]
    if image.max() > 1.0:
        image = image / 255.0
    full_h, full_w = image.shape[:2]
    height, width = size if size is not None else (full_h // 2, full_w // 2)
    rng = np.random.default_rng(seed)
    heading = rng.uniform(0, 2 * np.pi)
    turn = rng.uniform(-0.2, 0.2)
    start = ((full_w - width) / 2.0, (full_h - height) / 2.0)
    centre = ((width - 1) / 2.0, (height - 1) / 2.0)
    affines, tx, ty = [], start[0], start[1]
    for t in range(frames):
        if t > 0:
            direction = heading + turn * t
            tx += speed * np.cos(direction)
            ty += speed * np.sin(direction)
        affines.append(_affine(tx, ty, rotation * t, (1.0 + zoom) ** t, centre))
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    out_frames, flows = [], [np.zeros((height, width, 2), np.float32)]
    for t, a in enumerate(affines):
        out_frames.append(_sample(image, a, height, width, order))
        if t > 0:
            m = _compose_inverse(affines[t - 1], a)
            fx = m[0, 0] * xs + m[0, 1] * ys + m[0, 2] - xs
            fy = m[1, 0] * xs + m[1, 1] * ys + m[1, 2] - ys
            flows.append(np.stack([fx, fy], axis=-1).astype(np.float32))
    return MotionSequence(np.stack(out_frames), np.stack(flows), np.stack(affines))


class MotionClips:
    """Data source of short noisy clips cut from still images with random smooth translations.

    Kind ``"frames"``: ``frames`` (N, T, C, P, P) corrupted by ``corruption`` (drawn afresh each batch:
    this source is for *supervised* (pre)training of multi-frame networks, e.g. the gauss25 starting
    point of MF2F) and ``clean`` (N, C, P, P), the clean middle frame. Each clip moves by a random
    velocity of up to ``max_speed`` px/frame plus a little jitter, sampled bicubically.
    """

    kind = "frames"

    def __init__(self, images: list[np.ndarray], corruption, frames: int = 5, max_speed: float = 3.0,
                 seed: int = 0):
        self.images = [np.asarray(im, np.float32) if np.asarray(im).ndim == 3 else np.asarray(im, np.float32)[..., None]
                       for im in images]
        self.channels = self.images[0].shape[2]
        self.corruption, self.frames, self.max_speed, self.seed = corruption, frames, max_speed, seed

    def batch(self, rng: np.random.Generator, batch_size: int, patch_size: int) -> dict:
        import torch
        import torch.nn.functional as F

        half = self.frames // 2
        margin = int(np.ceil(self.max_speed * half + 3))
        size = patch_size + 2 * margin
        clips, centres = [], []
        for _ in range(batch_size):
            image = self.images[rng.integers(len(self.images))]
            h, w = image.shape[:2]
            if h < size or w < size:
                image = np.pad(image, ((0, max(0, size - h)), (0, max(0, size - w)), (0, 0)), mode="reflect")
                h, w = image.shape[:2]
            y0, x0 = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
            crop = torch.from_numpy(np.ascontiguousarray(image[y0:y0 + size, x0:x0 + size].transpose(2, 0, 1)))
            velocity = rng.uniform(-self.max_speed, self.max_speed, 2)
            grids = []
            for k in range(self.frames):
                shift = (k - half) * velocity + (rng.normal(0, 0.2, 2) if k != half else 0.0)
                ys, xs = torch.meshgrid(torch.arange(patch_size, dtype=torch.float32) + margin + shift[1],
                                        torch.arange(patch_size, dtype=torch.float32) + margin + shift[0],
                                        indexing="ij")
                grids.append(torch.stack([2 * xs / (size - 1) - 1, 2 * ys / (size - 1) - 1], dim=-1))
            sampled = F.grid_sample(crop[None].expand(self.frames, -1, -1, -1), torch.stack(grids),
                                    mode="bicubic", padding_mode="reflection", align_corners=True)
            clips.append(sampled.clamp(0, 1))
            centres.append(crop[:, margin:margin + patch_size, margin:margin + patch_size])
        clean = torch.stack(clips)  # (N, T, C, P, P)
        generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
        n, t, c, p, _ = clean.shape
        noisy = self.corruption.sample(clean.reshape(n * t, c, p, p), generator).reshape(n, t, c, p, p)
        return {"frames": noisy, "clean": torch.stack(centres)}
