"""SelfIR (Zhang, Xu, Liu, Yan & Zuo, NeurIPS 2022): self-supervised restoration from blurry + noisy pairs.

A blurry long exposure B (little noise, motion blur) and a noisy short exposure N (sharp, strong noise) of
one scene go into one network D(B, N) -> I_hat. Training never sees a clean image:

* Neighbor2Neighbor sub-sampling of BOTH inputs with the same cells (g1, g2 from :mod:`.subsample`);
* reconstruction (paper eq. 3):   L_rec = || D(g1(B), g1(N)) - g2(N) ||^2
* regularisation (eq. 4), with a full-resolution pass I_full = D(B, N) computed without gradient:
      L_reg = || D(g1(B), g1(N)) - g2(N) - (g1(I_full) - g2(I_full)) ||^2,   weight gamma = 2 (fixed, as the
  official code; Nb2Nb's linear ramp is not used);
* auxiliary loss on sharp areas of B (eq. 6-7): the sub-sampled estimate g1-output and g1(B) are cut into
  non-overlapping ``mask_patch`` x ``mask_patch`` patches (48 in the paper, on 128 px sub-images); a patch
  is "sharp in B" when SSIM(I_hat, B) >= eps_s (0.99) and var(B) - var(I_hat) > eps_v (1e-5): the blurry
  shot then carries the detail with almost no noise, and L_aux = sum m ||I_hat - g1(B)||^2 / (sum m + 1)
  (weight ``aux_weight`` = 1). The "self-supervised denoising of N" used for the mask is the network's own
  no-grad sub-sampled output (clamped to [0, 1]), as in the official code. The mask here is binary.

The network is the plain N2N U-Net with ``in_channels = 2C``: ``restore(net, obs)`` takes
``obs = cat([blurry, noisy], 1)``, so the generic tiled inference works unchanged.
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..corruption import Corruption
from ..errors import UserError
from ..registry import METHODS
from .base import Method, check_non_negative
from .subsample import neighbour_indices, subsample

LUMA = (0.2989, 0.5870, 0.1140)


# ------------------------------------------------------------------------------- blurry+noisy plumbing
class BlurryNoisyMethod(Method):
    """Shared parts of every method that consumes ``"blurry_noisy"`` batches (SelfIR and its baselines):
    the two-input convention, the ``fit`` data options and the data source built from them."""

    batch_kind: ClassVar[str] = "blurry_noisy"
    maps_own_data = True  #: (its sources map float counts and dim data: training_map)
    default_net: ClassVar[str] = "unet"
    #: which inputs the network sees: "both" (2C channels: blurry, noisy), "blurry" or "noisy" (C channels)
    inputs: ClassVar[str] = "both"
    data_options: ClassVar[dict[str, dict[str, Any]]] = {
        "blurry": {"metavar": "DIR", "default": None,
                   "help": "blurry+noisy methods (selfir...): folder of blurry long exposures, matched by file "
                           "name with --noisy (or one blurry file with one noisy file); an unreadable pair is "
                           "reported and left out"},
        "noisy": {"metavar": "DIR", "default": None,
                  "help": "blurry+noisy methods: folder of noisy short exposures (same names as --blurry), or a "
                          "file"},
        "kernels": {"metavar": "FILE", "default": None,
                    "help": "with --synthetic: blur kernels (.mat/.npy). Blurry+noisy methods (selfir...): half of "
                            "the pairs use them, half random camera-shake trajectories (default: all random), "
                            "every kernel centred on its centroid; deblurring (deblur_l1, reblur): every pair "
                            "uses them, as they are (default: random camera shake)"},
        "blur_noise": {"type": float, "default": 1.0, "metavar": "S",
                       "help": "with --synthetic: std of the light noise added to the blurry images (0-255 scale)"},
        "misalign": {"type": int, "default": 0, "metavar": "PX",
                     "help": "selfir with --synthetic: shift the noisy shot by up to PX pixels (hand shake)"},
    }

    def __init__(self, noise: Corruption | None = None, width: int | None = None, depth: int | None = None,
                 **options: Any):
        net_size = {k: v for k, v in (("width", width), ("depth", depth)) if v is not None}
        super().__init__(noise, **net_size, **options)
        self.net_size = net_size

    def net_kwargs(self, channels: int) -> dict[str, Any]:
        factor = 2 if self.inputs == "both" else 1
        return {"in_channels": factor * channels, "out_channels": channels, **self.net_size}

    @staticmethod
    def net_input(blurry: Tensor, noisy: Tensor) -> Tensor:
        return torch.cat([blurry, noisy], dim=1)

    def select(self, obs: Tensor) -> Tensor:
        """The part of ``obs = cat([blurry, noisy])`` this method's network reads."""
        if self.inputs == "both":
            return obs
        c = obs.shape[1] // 2
        return obs[:, :c] if self.inputs == "blurry" else obs[:, c:]

    def restore(self, net: nn.Module, obs: Tensor, **extra: Tensor) -> Tensor:
        if obs.shape[1] % 2:
            raise UserError(f"{self.name}: restoration needs a blurry and a noisy image "
                            f"(restore --blurry B --noisy N)")
        return net(self.select(obs))

    def make_source(self, args: Any, noise: Corruption | None) -> Any:
        """``--blurry DIR --noisy DIR`` (real pairs, or two files) or clean DATA with ``--synthetic --noise ...``."""
        from ..data.blurry_noisy import RealBlurryNoisy, SyntheticBlurryNoisy

        if getattr(self, "eps_s", 0.0) > 1:  # an SSIM never exceeds 1: no area would count as sharp (checked for
            # training only: a model file trained so still restores)
            raise UserError(f"{self.name}: --eps-s is an SSIM threshold, at most 1 (default 0.99), got {self.eps_s:g}")
        blurry_dir, noisy_dir = getattr(args, "blurry", None), getattr(args, "noisy", None)
        if blurry_dir or noisy_dir:
            if not (blurry_dir and noisy_dir):
                raise UserError(f"method {self.name}: give both --blurry DIR and --noisy DIR")
            if self.needs_clean:
                raise UserError(f"method {self.name} trains on clean targets (a supervised baseline): it needs "
                                f"clean DATA and --synthetic")
            for option, given in (("--misalign", bool(getattr(args, "misalign", 0))),
                                  ("--kernels", getattr(args, "kernels", None) is not None),
                                  ("--blur-noise", getattr(args, "blur_noise", None) is not None)):
                if given:  # options of the synthetic pairs: ignored by real ones, so said, not silently dropped
                    raise UserError(f"{option} shapes the pairs made with --synthetic; real pairs are trained as "
                                    "they are (leave it out)")
            return RealBlurryNoisy(blurry_dir, noisy_dir, getattr(args, "channels", None),
                                   mapped=getattr(args, "maps_method_data", True),
                                   dim=getattr(args, "maps_dim_data", True), quiet=getattr(args, "quiet", False),
                                   seed=getattr(args, "seed", 0))
        if not getattr(args, "synthetic", False) or not getattr(args, "data", None):
            raise UserError(f"method {self.name} trains on blurry+noisy pairs: give --blurry DIR --noisy DIR, "
                            f"or clean images with --synthetic --noise gauss5_50 [--kernels FILE]")
        if noise is None:
            raise UserError("--synthetic needs --noise for the noisy short exposure (e.g. --noise gauss5_50)")
        from ..corruption.blur import CameraShake, load_kernels
        from ..data.images import load_images
        from ..io import to_channels

        blur_noise = 1.0 if getattr(args, "blur_noise", None) is None else args.blur_noise
        check_non_negative("selfir", blur_noise=blur_noise)
        kernel_file = getattr(args, "kernels", None)
        kernels = load_kernels(kernel_file) if kernel_file else None
        # half recorded kernels (when given), half random shake of 5-22 px in 25 px; every kernel centred on
        # its centroid: the long exposure is aligned with the short one on average
        blur_model = CameraShake(kernels, kernel_size=25, length=(5.0, 22.0), anxiety=0.6,
                                 file_fraction=0.5 if kernels else 0.0, centre=True,
                                 sigma=blur_noise)
        # the clean images and the (blurry, noisy) pair made from each, all held while the pairs are made
        images = load_images(args.data, args.channels, copies=3)
        if args.channels is None:
            c = max(img.shape[2] for img in images)
            images = [to_channels(img, c) for img in images]
        return SyntheticBlurryNoisy(images, blur_model, noise, seed=getattr(args, "seed", 0),
                                    misalign_px=int(getattr(args, "misalign", 0) or 0),
                                    keep_clean=self.needs_clean)


# ------------------------------------------------------------------------------------ sharp-area mask
def _gray(x: Tensor) -> Tensor:
    if x.shape[1] == 3:
        w = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x * w).sum(1, keepdim=True)
    return x.mean(1, keepdim=True)


def _patches(x: Tensor, size: int) -> Tensor:
    """(N, 1, H, W) -> (N * P, 1, size, size): the non-overlapping patches (border remainder dropped)."""
    n = x.shape[0]
    cols = F.unfold(x, kernel_size=size, stride=size)  # (N, size*size, P)
    return cols.transpose(1, 2).reshape(n * cols.shape[2], 1, size, size)


def _gaussian_window(size: int, sigma: float, like: Tensor) -> Tensor:
    r = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).view(1, 1, size, size)


def patch_ssim(a: Tensor, b: Tensor, window: int = 11, sigma: float = 1.5) -> Tensor:
    """Mean SSIM (Gaussian window, 'valid') of each pair of single-channel patches (P, 1, s, s) -> (P,)."""
    size = min(window, a.shape[-1]) | 1
    if size > a.shape[-1]:
        size -= 2
    w = _gaussian_window(size, sigma, a)
    mu_a, mu_b = F.conv2d(a, w), F.conv2d(b, w)
    var_a = F.conv2d(a * a, w) - mu_a**2
    var_b = F.conv2d(b * b, w) - mu_b**2
    cov = F.conv2d(a * b, w) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return ssim_map.mean(dim=(1, 2, 3))


def sharp_area_mask(estimate: Tensor, blurry: Tensor, patch: int = 48, eps_s: float = 0.99,
                    eps_v: float = 1e-5) -> Tensor:
    """Binary (N, 1, H, W) mask of the patches where the blurry image is sharp (paper eq. 6).

    A ``patch`` x ``patch`` patch (non-overlapping grid; the border remainder is 0) is selected when the
    SSIM between the (denoised) ``estimate`` and ``blurry`` is >= ``eps_s`` and var(blurry) - var(estimate)
    > ``eps_v``, both on luminance. Blur lowers the variance of a textured patch, so a blurred region
    fails the variance test even where it is flat enough for a high SSIM.
    """
    n, _, h, w = estimate.shape
    size = max(1, min(int(patch), h, w))
    est = _gray(estimate.float().clamp(0, 1))
    blr = _gray(blurry.float())
    pe, pb = _patches(est, size), _patches(blr, size)
    ssim_value = patch_ssim(pe, pb)
    var_e = pe.flatten(1).var(dim=1)
    var_b = pb.flatten(1).var(dim=1)
    keep = ((ssim_value >= eps_s) & (var_b - var_e > eps_v)).to(estimate.dtype)
    per_patch = keep.view(n, -1, 1).expand(n, -1, size * size).transpose(1, 2)  # (N, size*size, P)
    hh, ww = h // size * size, w // size * size
    mask = F.fold(per_patch, output_size=(hh, ww), kernel_size=size, stride=size)
    return F.pad(mask, (0, w - ww, 0, h - hh))


def masked_mse(estimate: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """sum m (estimate - target)^2 / (sum m + 1), per image and channel, averaged (the official norm)."""
    err = ((estimate.float() - target.float()) ** 2 * mask).sum(dim=(2, 3))
    return (err / (mask.sum(dim=(2, 3)) + 1.0)).mean()


# -------------------------------------------------------------------------------------------- SelfIR
@METHODS.register("selfir")
class SelfIR(BlurryNoisyMethod):
    name: ClassVar[str] = "selfir"
    patch_multiple: ClassVar[int] = 2  # the half-size sub-images go through the net
    needs_independent_noise: ClassVar[bool] = True  # neighbour sub-sampling of the noisy shot, as Nb2Nb
    cli_options: ClassVar[dict[str, dict[str, Any]]] = {
        "aux": {"type": int, "default": 1, "choices": [0, 1],
                "help": "selfir: 1 = use the auxiliary loss on sharp areas of the blurry image, 0 = ablation"},
        "gamma_reg": {"type": float, "default": 2.0, "help": "selfir: weight of the regularisation loss"},
        "eps_s": {"type": float, "default": 0.99, "help": "selfir: SSIM threshold of the sharp-area mask"},
        "eps_v": {"type": float, "default": 1e-5, "help": "selfir: variance-gap threshold of the sharp-area mask"},
        "mask_patch": {"type": int, "default": 48,
                       "help": "selfir: patch size of the sharp-area mask, on the sub-sampled images"},
        "aux_weight": {"type": float, "default": 1.0, "help": "selfir: weight of the auxiliary loss"},
    }

    def __init__(self, noise: Corruption | None = None, aux: int | bool = 1, gamma_reg: float = 2.0,
                 eps_s: float = 0.99, eps_v: float = 1e-5, mask_patch: int = 48, aux_weight: float = 1.0,
                 **options: Any):
        check_non_negative("selfir", gamma_reg=gamma_reg, aux_weight=aux_weight, eps_s=eps_s, eps_v=eps_v)
        if mask_patch < 2:
            raise UserError(f"selfir: mask_patch must be >= 2, got {mask_patch}")
        super().__init__(noise, aux=int(bool(aux)), gamma_reg=float(gamma_reg), eps_s=float(eps_s),
                         eps_v=float(eps_v), mask_patch=int(mask_patch), aux_weight=float(aux_weight), **options)
        self.aux, self.gamma_reg = bool(aux), float(gamma_reg)
        self.eps_s, self.eps_v = float(eps_s), float(eps_v)
        self.mask_patch, self.aux_weight = int(mask_patch), float(aux_weight)
        self.last_terms: dict[str, float] = {}  #: the three loss terms of the last step (diagnostics)

    def describe(self) -> str:
        return "selfir" if self.aux else "selfir (no L_aux)"

    def loss(self, net: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        blurry, noisy = batch["blurry"], batch["noisy"]
        self.check_patch(net, noisy)
        idx1, idx2 = neighbour_indices(noisy)
        blurry1 = subsample(blurry, idx1)
        noisy1, noisy2 = subsample(noisy, idx1), subsample(noisy, idx2)
        out = net(self.net_input(blurry1, noisy1)).float()
        diff = out - noisy2.float()
        rec = torch.mean(diff**2)
        total = rec
        reg = torch.zeros(())
        if self.gamma_reg > 0:
            with torch.no_grad():
                full = net(self.net_input(blurry, noisy)).float()
                expected = subsample(full, idx1) - subsample(full, idx2)
            reg = torch.mean((diff - expected) ** 2)
            total = total + self.gamma_reg * reg
        aux = torch.zeros(())
        if self.aux and self.aux_weight > 0:
            with torch.no_grad():
                mask = sharp_area_mask(out.detach(), blurry1, self.mask_patch, self.eps_s, self.eps_v)
            aux = masked_mse(out, blurry1, mask)
            total = total + self.aux_weight * aux
            self.last_terms["mask_fraction"] = float(mask.mean())
        self.last_terms.update(rec=float(rec.detach()), reg=float(reg.detach()), aux=float(aux.detach()))
        return total
