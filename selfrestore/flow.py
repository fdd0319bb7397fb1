"""Optical flow on noisy frames, differentiable backward warping, and occlusion masks.

Convention (used everywhere in the package): the *backward flow* of a ``target`` frame towards a
``source`` frame is a field ``flow`` (H, W, 2) in pixels, (dx, dy) order, such that the content of target
pixel p sits at p + flow(p) in the source; hence ``warp(source, flow) ~= target``.

Flow is estimated with OpenCV. DIS (Kroeger et al. 2016) is the default: on noisy input, after a light
Gaussian pre-smoothing, it is as accurate as TV-L1 (Zach et al. 2007) and about two orders of magnitude
faster; see ``benchmarks/flow_dis_vs_tvl1.py`` and its table in ``benchmarks/results/``. TV-L1 is
available when OpenCV's contrib modules are installed (``cv2.optflow``), Farneback always.

Occlusions are pixels whose content is not visible in the source: they are detected by forward-backward
consistency (Sundaram et al. 2010: ``|w_b + w_f(p + w_b)|^2 <= a (|w_b|^2 + |w_f(p + w_b)|^2) + b``),
by samples falling outside the source frame, and by a large warping residual (Ehret et al. 2019).
A warp loss must ignore them, otherwise it teaches the network to hallucinate.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .errors import UserError

FLOW_METHODS = ("dis", "tvl1", "farneback")


def _cv2():
    try:
        import cv2
    except ImportError:  # pragma: no cover - depends on the environment
        raise UserError("optical flow needs OpenCV: pip install opencv-python-headless") from None
    return cv2


def to_gray8(frame: np.ndarray, smooth_sigma: float = 0.0) -> np.ndarray:
    """(H, W[, C]) float image in [0, 1] -> uint8 luminance, optionally Gaussian-smoothed (noise)."""
    cv2 = _cv2()
    frame = np.asarray(frame, dtype=np.float32)
    if frame.ndim == 3:
        frame = frame.mean(axis=2) if frame.shape[2] != 3 else frame @ np.array([0.299, 0.587, 0.114],
                                                                                  np.float32)
    if smooth_sigma > 0:
        frame = cv2.GaussianBlur(frame, (0, 0), smooth_sigma)
    return np.clip(frame * 255.0 + 0.5, 0, 255).astype(np.uint8)


class FlowEstimator:
    """Backward optical flow between two frames with an OpenCV method.

    ``method``: "dis" (default), "tvl1" (needs opencv-contrib) or "farneback". ``smooth_sigma`` blurs the
    frames before estimation (helps TV-L1 on noise, not DIS). ``preset`` is DIS's: OpenCV's "ultrafast",
    "fast", "medium", or "noisy" (default): medium with 16x16 patches every 8 px and a strongly
    regularised variational refinement, which halves the error of "medium" on noisy frames at the
    same speed (benchmarks/results/flow_dis_vs_tvl1.md).
    """

    def __init__(self, method: str = "dis", smooth_sigma: float = 0.0, preset: str = "noisy"):
        cv2 = _cv2()
        if method not in FLOW_METHODS:
            raise UserError(f"unknown flow method {method!r}; use one of: {', '.join(FLOW_METHODS)}")
        self.method, self.smooth_sigma, self.preset = method, smooth_sigma, preset
        if method == "dis":
            presets = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
                       "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                       "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
                       "noisy": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}
            if preset not in presets:
                raise UserError(f"unknown DIS preset {preset!r}; use one of: {', '.join(presets)}")
            self._impl = cv2.DISOpticalFlow_create(presets[preset])
            if preset == "noisy":
                self._impl.setPatchSize(16)
                self._impl.setPatchStride(8)
                self._impl.setVariationalRefinementAlpha(100.0)
                self._impl.setVariationalRefinementIterations(10)
        elif method == "tvl1":
            if not hasattr(cv2, "optflow"):
                raise UserError("flow method 'tvl1' needs OpenCV's contrib modules "
                                "(pip install opencv-contrib-python-headless); use 'dis' instead")
            self._impl = cv2.optflow.DualTVL1OpticalFlow_create()
        else:
            self._impl = cv2.FarnebackOpticalFlow_create(numLevels=5, pyrScale=0.5, winSize=15,
                                                         numIters=3, polyN=5, polySigma=1.2)

    def __call__(self, target: np.ndarray, source: np.ndarray) -> np.ndarray:
        """Flow (H, W, 2) float32 with ``warp(source, flow) ~= target``; frames (H, W[, C]) in [0, 1]."""
        a = to_gray8(target, self.smooth_sigma)
        b = to_gray8(source, self.smooth_sigma)
        if a.shape != b.shape:
            raise UserError(f"frames differ in size: {a.shape} vs {b.shape}")
        # OpenCV's calc(prev, next) returns w with prev(p) ~= next(p + w): exactly our backward flow.
        flow = self._impl.calc(a, b, None)
        return np.ascontiguousarray(flow, dtype=np.float32)


def flow_to_tensor(flow: np.ndarray) -> Tensor:
    """(H, W, 2) or (N, H, W, 2) NumPy flow -> (N, 2, H, W) float32 tensor."""
    t = torch.from_numpy(np.ascontiguousarray(flow, dtype=np.float32))
    if t.dim() == 3:
        t = t.unsqueeze(0)
    return t.permute(0, 3, 1, 2).contiguous()


def _targets(flow: Tensor) -> tuple[Tensor, Tensor]:
    """Pixel coordinates (x, y) of p + flow(p), each (N, H, W)."""
    _, _, h, w = flow.shape
    ys, xs = torch.meshgrid(torch.arange(h, device=flow.device, dtype=flow.dtype),
                            torch.arange(w, device=flow.device, dtype=flow.dtype), indexing="ij")
    return xs + flow[:, 0], ys + flow[:, 1]


def _sampling_grid(flow: Tensor) -> Tensor:
    """Normalised grid_sample coordinates of p + flow(p) (align_corners=True convention)."""
    h, w = flow.shape[-2:]
    x, y = _targets(flow)
    gx = 2.0 * x / max(w - 1, 1) - 1.0
    gy = 2.0 * y / max(h - 1, 1) - 1.0
    return torch.stack([gx, gy], dim=-1)


def warp(image: Tensor, flow: Tensor, mode: str = "bilinear") -> Tensor:
    """Backward warping: ``out(p) = image(p + flow(p))`` (bilinear, differentiable in image and flow).

    image (N, C, H, W), flow (N, 2, H, W) in pixels. Samples outside the frame take the nearest border
    value; :func:`inside_mask` says where that happened.
    """
    if image.shape[-2:] != flow.shape[-2:]:
        raise ValueError(f"image {tuple(image.shape)} and flow {tuple(flow.shape)} differ in size")
    grid = _sampling_grid(flow.to(image.dtype))
    return F.grid_sample(image, grid, mode=mode, padding_mode="border", align_corners=True)


def inside_mask(flow: Tensor) -> Tensor:
    """(N, 1, H, W) float mask: 1 where p + flow(p) lies inside the source frame."""
    h, w = flow.shape[-2:]
    x, y = _targets(flow)
    ok = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    return ok.unsqueeze(1).to(flow.dtype)


def consistency_mask(flow_bw: Tensor, flow_fw: Tensor, alpha: float = 0.01, beta: float = 0.5) -> Tensor:
    """Forward-backward check (Sundaram et al. 2010), (N, 1, H, W), 1 = consistent.

    ``flow_bw`` goes target -> source, ``flow_fw`` source -> target. Following w_b then w_f must come back
    to the start: ``|w_b + w_f(p + w_b)|^2 <= alpha (|w_b|^2 + |w_f(p + w_b)|^2) + beta``.
    """
    fw_at = warp(flow_fw, flow_bw)
    loop = ((flow_bw + fw_at) ** 2).sum(1, keepdim=True)
    bound = alpha * ((flow_bw ** 2).sum(1, keepdim=True) + (fw_at ** 2).sum(1, keepdim=True)) + beta
    return (loop <= bound).to(flow_bw.dtype)


def residual_mask(target: Tensor, warped: Tensor, threshold: float = 0.05, window: int = 5,
                  relative: float | None = 2.5) -> Tensor:
    """(N, 1, H, W), 1 where the local mean absolute warping residual is small.

    The channel-mean |target - warped| is box-averaged over ``window`` x ``window`` pixels so that the
    residual noise of (pre-denoised) frames does not flag every pixel. A pixel is kept when its residual
    is below ``threshold`` or below ``relative`` times the frame's median residual: frames pre-denoised
    by a network that does not match the noise keep a lot of residual noise everywhere, and only
    outliers (occlusions, flow failures) should be dropped.
    """
    residual = (target - warped).abs().mean(1, keepdim=True)
    if window > 1:
        residual = F.avg_pool2d(residual, window, stride=1, padding=window // 2, count_include_pad=False)
    bound = torch.full((residual.shape[0], 1, 1, 1), float(threshold), dtype=residual.dtype,
                       device=residual.device)
    if relative is not None:
        median = residual.flatten(1).median(dim=1).values.view(-1, 1, 1, 1)
        bound = torch.maximum(bound, relative * median)
    return (residual <= bound).to(target.dtype)


def occlusion_mask(flow_bw: Tensor, flow_fw: Tensor | None = None, target: Tensor | None = None,
                   source: Tensor | None = None, residual_threshold: float | None = 0.05,
                   alpha: float = 0.01, beta: float = 0.5, residual_relative: float | None = 2.5) -> Tensor:
    """Valid-pixel mask (N, 1, H, W) for a warp loss: 1 = visible in the source and well aligned.

    Combines :func:`inside_mask`, :func:`consistency_mask` (when ``flow_fw`` is given) and
    :func:`residual_mask` of ``warp(source, flow_bw)`` against ``target`` (when both are given and
    ``residual_threshold`` is not None; ``residual_relative`` as in :func:`residual_mask`). Pass
    pre-denoised frames for the residual test.
    """
    mask = inside_mask(flow_bw)
    if flow_fw is not None:
        mask = mask * consistency_mask(flow_bw, flow_fw, alpha, beta)
    if target is not None and source is not None and residual_threshold is not None:
        mask = mask * residual_mask(target, warp(source, flow_bw), residual_threshold,
                                    relative=residual_relative)
    return mask
