"""The four-rotation half-plane blind-spot U-Net of Laine et al. 2019 ("High-Quality Self-Supervised Deep
Image Denoising", section 3 and appendix), in plain torch.

How the blind spot is built:

* Every 3x3 convolution of a *branch* is offset downwards by one row (pad two rows on top, none below), so an
  output row sees only its own row and the rows above it. Every 2x2 max-pool is preceded by a one-row shift
  down, for the same reason. Nearest upsampling keeps the property.
* At the end of the branch the features are shifted down by one more row, so the output at a pixel sees only
  the half-plane strictly *above* it.
* The input is run through the same branch (shared weights) in four rotations (0/90/180/270 degrees); each
  output is rotated back, so the four branches see the half-planes above, left of, below and right of the
  pixel. Their union is everything except the pixel itself. They are concatenated on the channel axis and
  combined by 1x1 convolutions, which cannot reintroduce the pixel.

The net returns ``out_channels`` maps; what they mean (a mean, a covariance factor) is up to the method
(:mod:`selfrestore.methods.laine19` and the head helpers at the end of this file).

For unknown noise levels the same module can carry a small *non-blind* noise-level estimator (as the paper
does): ``noise_outputs`` > 0 appends that many channels, constant over each image, holding an unconstrained
noise parameter per image (``noise_estimator="per_image"``: a plain U-Net branch averaged over the image;
``"global"``: one learned scalar for the whole data set), starting from ``noise_init`` and scaled by
``noise_gain``. Those channels are not blind-spot outputs.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..registry import NETS

ROTATIONS = (0, 1, 2, 3)  # multiples of 90 degrees
Trim = tuple[int, int, int, int]  #: rows / columns left out at the (top, bottom, left, right) of an output
NO_TRIM: Trim = (0, 0, 0, 0)
COMBINE_BAND_PIXELS = 65536  #: inference combines the branches' features in bands of about this many pixels


def _act() -> nn.Module:
    return nn.LeakyReLU(0.1, inplace=True)


def shift_down(x: Tensor, rows: int = 1) -> Tensor:
    """Move the content ``rows`` rows down (zero rows enter on top, the bottom rows fall off)."""
    return F.pad(x, (0, 0, rows, 0))[:, :, : x.shape[2], :]


class HalfPlaneConv(nn.Module):
    """A 3x3 convolution whose receptive field is the own row and the rows above (``blind=True``), or an
    ordinary zero-padded 3x3 convolution (``blind=False``).

    The blind version pads ``2r`` zero rows on top only, then convolves with no vertical padding: output row
    i covers input rows i-2r .. i. Padding first (a contiguous copy) is faster on CPU than the fused
    alternative (pad both sides inside the convolution, then crop): the cropped view is strided, and the
    activation and convolution backward passes on strided tensors leave the fast path (3x slower steps,
    measured with bf16 + channels_last).
    """

    def __init__(self, cin: int, cout: int, blind: bool, kernel: int = 3):
        super().__init__()
        r = kernel // 2
        self.blind, self.rows = blind, 2 * r
        self.conv = nn.Conv2d(cin, cout, kernel, padding=(0, r) if blind else r)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.pad(x, (0, 0, self.rows, 0)) if self.blind else x)


class UNetBody(nn.Module):
    """The Noise2Noise U-Net trunk (encoder ``width`` maps, decoder ``2 * width``) without its output layers,
    built from half-plane layers when ``blind``. Returns ``2 * width`` feature maps at full resolution."""

    def __init__(self, in_channels: int, width: int, depth: int, blind: bool):
        super().__init__()
        if depth < 1:
            raise ValueError("depth must be >= 1")
        self.blind, self.depth = blind, depth
        w, d = width, 2 * width

        def conv(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(HalfPlaneConv(cin, cout, blind), _act())

        self.enc0 = nn.Sequential(conv(in_channels, w), conv(w, w))
        self.enc = nn.ModuleList([conv(w, w) for _ in range(depth)])  # enc2..enc(depth), bottleneck last
        self.dec = nn.ModuleList()
        for level in range(depth - 1, 0, -1):
            cin = (w if level == depth - 1 else d) + w
            self.dec.append(nn.Sequential(conv(cin, d), conv(d, d)))
        self.dec0 = nn.Sequential(conv((d if depth > 1 else w) + in_channels, d), conv(d, d))

    def down(self, x: Tensor) -> Tensor:
        if self.blind:
            x = shift_down(x)
        return F.max_pool2d(x, 2)

    @staticmethod
    def up(x: Tensor) -> Tensor:
        return F.interpolate(x, scale_factor=2.0, mode="nearest")

    def forward(self, x: Tensor) -> Tensor:
        skips = [x]
        h = self.down(self.enc0(x))
        for i in range(self.depth - 1):
            skips.append(h)
            h = self.down(self.enc[i](h))
        h = self.enc[self.depth - 1](h)
        for block in self.dec:
            h = block(torch.cat([self.up(h), skips.pop()], dim=1))
        return self.dec0(torch.cat([self.up(h), skips.pop()], dim=1))


@NETS.register("blindspot")
class BlindSpotUNet(nn.Module):
    """Four-rotation blind-spot U-Net. ``width`` 48 and ``depth`` 5 give the paper's network.

    Attributes used by the drivers: ``size_multiple`` (input sides must be multiples of it) and
    ``receptive_field`` (an upper bound, in pixels, on how far an output pixel can see).
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, width: int = 48, depth: int = 5,
                 noise_outputs: int = 0, noise_estimator: str = "per_image", noise_init: float = 0.0,
                 noise_gain: float = 1.0):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.width, self.depth = width, depth
        self.size_multiple = 2**depth
        self.receptive_field = blindspot_receptive_radius(depth)
        # the context a tile carries under --tile-context auto: at 128 px laine19-gauss25's tiles moved 2.9% of a
        # Kodak mosaic's 8-bit values by up to 3.4 levels; at 256, none of a gradient's by over 0.04
        # (benchmarks/results/tile_context.md)
        self.auto_context = 256
        self.blind_spot = True  # restoration pads with zeros: mirrored copies of a pixel would leak into its own prior
        self.takes_trim = True  # forward(x, trim) leaves out a tile's context (restore.tiled_apply's ``trims``)
        self.branch = UNetBody(in_channels, width, depth, blind=True)
        d = 2 * width
        self.combine = nn.Sequential(
            nn.Conv2d(4 * d, 4 * d, 1), _act(),
            nn.Conv2d(4 * d, d, 1), _act(),
            nn.Conv2d(d, out_channels, 1),
        )
        nn.init.kaiming_normal_(self.combine[-1].weight, a=1.0)  # linear output layer
        self.noise_outputs = noise_outputs
        self.noise_estimator = noise_estimator if noise_outputs else None
        self.noise_gain = float(noise_gain)
        if noise_outputs:
            start = float(noise_init) / self.noise_gain
            if noise_estimator == "per_image":
                self.noise_net = nn.Sequential(UNetBody(in_channels, width, depth, blind=False),
                                               nn.Conv2d(d, noise_outputs, 1))
                nn.init.zeros_(self.noise_net[-1].weight)  # start from the same value for every image
                nn.init.constant_(self.noise_net[-1].bias, start)
            elif noise_estimator == "global":
                self.noise_param = nn.Parameter(torch.full((noise_outputs,), start))
            else:
                raise ValueError(f"noise_estimator must be 'per_image' or 'global', not {noise_estimator!r}")

    def branch_features(self, x: Tensor, trim: Trim = NO_TRIM) -> list[Tensor]:
        """Run the half-plane branch on the four rotations and return the four rotated-back feature maps
        (each N, 2 * width, H, W; with ``trim``, only those of the pixels it leaves, see :meth:`forward`).

        The paper stacks the rotations in the batch; one pass per rotation computes the same thing (shared
        weights) and is faster on CPU (smaller activations stay in cache: 1.4 s vs 1.8 s per training step
        at batch 4, 128 px) and needs a quarter of the activation memory at once.

        A branch's outputs never depend on the rows below them (half-plane convolutions, shifted pools,
        nearest upsampling: all causal downwards), so each rotation is run without the trimmed side it never
        looks at (whole multiples of ``size_multiple`` of it, keeping the pooling grids): the same values,
        computed on up to a quarter fewer pixels for a tile with context on all four sides."""
        fmt = _memory_format(x)  # rot90 returns strided views: keep one layout so the convs stay on the fast path
        feats = []
        for k in ROTATIONS:
            top, bottom, left, right = rotated_trim(trim, k)
            rotated = torch.rot90(x, k, dims=(2, 3))
            unseen = bottom // self.size_multiple * self.size_multiple  # rows no kept output looks at
            f = shift_down(self.branch(rotated[:, :, :rotated.shape[2] - unseen].contiguous(memory_format=fmt)))
            feats.append(torch.rot90(f[:, :, top:f.shape[2] - (bottom - unseen), left:f.shape[3] - right], -k,
                                     dims=(2, 3)))
        return feats

    def branches(self, x: Tensor, trim: Trim = NO_TRIM) -> Tensor:
        """The four branches' features concatenated on the channel axis (N, 4 * 2 * width, H, W)."""
        return torch.cat(self.branch_features(x, trim), dim=1).contiguous(memory_format=_memory_format(x))

    def forward(self, x: Tensor, trim: Trim = NO_TRIM) -> Tensor:
        """The ``out_channels`` maps of (N, C, H, W) ``x``; ``trim`` (top, bottom, left, right): that many rows
        and columns at x's borders are left out of the result (a tile's context, whose outputs a tiled
        restoration throws away): (N, out_channels, H - top - bottom, W - left - right), equal to the
        untrimmed result's middle, the branches run on less of x and the 1x1 combination on the kept pixels
        only."""
        _, _, h, w = x.shape
        if h % self.size_multiple or w % self.size_multiple:
            raise ValueError(f"blindspot net: input {h}x{w} is not a multiple of {self.size_multiple}")
        top, bottom, left, right = trim
        if min(trim) < 0 or top + bottom >= h or left + right >= w:
            raise ValueError(f"blindspot net: trim {trim} leaves nothing of a {h}x{w} input")
        if torch.is_grad_enabled():
            out = self.combine(self.branches(x, trim))
        else:  # inference: the per-pixel 1x1 combination band by band; the concatenated features and the first
            # combining layer (4 * 2 * width channels each) never exist at full size: ~40% less peak memory
            feats, fmt = self.branch_features(x, trim), _memory_format(x)
            kept_h, kept_w = feats[0].shape[2:]
            rows = max(1, COMBINE_BAND_PIXELS // max(1, kept_w))
            out = torch.cat([self.combine(torch.cat([f[:, :, band:band + rows] for f in feats], dim=1)
                                          .contiguous(memory_format=fmt)) for band in range(0, kept_h, rows)], dim=2)
            del feats
        if self.noise_outputs:  # measured on the whole input, as untrimmed
            out = torch.cat([out, self.noise_maps(x)[:, :, top:h - bottom, left:w - right].to(out.dtype)], dim=1)
        return out

    def noise_maps(self, x: Tensor) -> Tensor:
        """Unconstrained per-image noise parameters, broadcast to (N, noise_outputs, H, W). They are scaled
        by ``noise_gain`` so that Adam, whose steps are bounded by the learning rate, can move them fast."""
        n, _, h, w = x.shape
        if self.noise_estimator == "global":
            values = self.noise_param.view(1, -1).expand(n, -1)
        else:
            values = self.noise_net(x).float().mean(dim=(2, 3))
        return (self.noise_gain * values).reshape(n, -1, 1, 1).expand(n, self.noise_outputs, h, w)


def rotated_trim(trim: Trim, k: int) -> Trim:
    """``trim`` (top, bottom, left, right) of an image as seen in its ``torch.rot90(x, k, dims=(2, 3))``: one
    quarter turn counter-clockwise brings the right side to the top, the top to the left."""
    for _ in range(k % 4):
        top, bottom, left, right = trim
        trim = (right, left, top, bottom)
    return trim


def _memory_format(x: Tensor) -> torch.memory_format:
    return torch.channels_last if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) \
        and not x.is_contiguous() else torch.contiguous_format


def blindspot_receptive_radius(depth: int) -> int:
    """Upper bound on how far (in pixels, any direction) an output pixel of the blind-spot net can see.

    Along the deepest path, in a branch: a half-plane 3x3 conv at scale s reaches 2s rows up, a shifted
    2x2 pool at input scale s reaches 2s, a nearest upsample from scale s at most s, and the final shift 1.
    Sideways reach is smaller than upward reach, and rotation makes every direction the "up" of one branch.
    """
    r = 2 * (2 * 1) + 2 * 1                      # enc0 (two convs) + pool at scale 1
    for level in range(1, depth):                # conv + pool at scales 2 .. 2**(depth-1)
        r += 2 * 2**level + 2 * 2**level
    r += 2 * 2**depth                            # bottleneck conv
    for level in range(depth - 1, -1, -1):       # upsample from scale 2**(level+1) + two convs at 2**level
        r += 2**(level + 1) + 2 * (2 * 2**level)
    return r + 1                                 # final one-row shift


# --- output heads: how the net's channels parameterise the per-pixel prior N(mu, Sigma) ------------------

HEADS = ("mu", "diag", "full")


def head_channels(head: str, channels: int) -> int:
    """Number of output maps for a head: the mean, plus the entries of an upper-triangular factor A
    (diagonal only for "diag"; all C(C+1)/2 for "full"), with Sigma = A^T A."""
    if head == "mu":
        return channels
    if head == "diag":
        return 2 * channels
    if head == "full":
        return channels + channels * (channels + 1) // 2
    raise ValueError(f"head must be one of {', '.join(HEADS)}, not {head!r}")


def triangular_indices(channels: int) -> list[tuple[int, int]]:
    """(row, col) of the upper-triangular factor entries, in the order the net emits them."""
    return [(i, j) for i in range(channels) for j in range(i, channels)]


def split_head(out: Tensor, head: str, channels: int) -> tuple[Tensor, Tensor | None]:
    """Split net output (N, K, H, W) into the mean (N, C, H, W) and the prior covariance
    Sigma = A^T A as (N, C, C, H, W) in float32 (None for the "mu" head). Positive semi-definite by
    construction; the methods add the noise covariance before inverting anything."""
    mu = out[:, :channels].float()
    if head == "mu":
        return mu, None
    n, _, h, w = out.shape
    factor = out.new_zeros((n, channels, channels, h, w), dtype=torch.float32)
    params = out[:, channels:head_channels(head, channels)].float()
    if head == "diag":
        idx = torch.arange(channels)
        factor[:, idx, idx] = params
    else:
        for k, (i, j) in enumerate(triangular_indices(channels)):
            factor[:, i, j] = params[:, k]
    with torch.autocast(out.device.type, enabled=False):  # keep the covariance in float32 under autocast
        sigma = torch.einsum("nkihw,nkjhw->nijhw", factor, factor)  # A^T A
    return mu, sigma
