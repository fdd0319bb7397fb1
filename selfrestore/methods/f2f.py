"""Frame-to-frame (F2F, Ehret et al. 2019): fine-tune a pretrained single-frame denoiser on one video.

The network's output for frame t, warped onto frame t-1 by the optical flow, should match the *noisy*
frame t-1: ``L = || M (W_{t-1<-t} f(y_t) - y_{t-1}) ||_1 / |M|``. The noise of y_{t-1} is independent of
y_t, so (like Noise2Noise, with a median-seeking L1) the minimiser is the clean frame; the mask M drops
occluded and badly aligned pixels, where the warped output and the target do not show the same scene.

Batch kind ``"video_warp"`` (produced by :mod:`selfrestore.video`):

* ``frames`` (N, T, C, H, W): the network's input stack (T = 1 for F2F)
* ``target`` (N, C, H, W): the noisy neighbour frame
* ``flow``   (N, 2, H, W): backward flow of the target towards the input's middle frame
  (``warp(f(input), flow)`` is aligned with ``target``; see :mod:`selfrestore.flow`)
* ``mask``   (N, 1, H, W): 1 where the pixel is visible and well aligned
"""
from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn

from ..flow import warp
from ..registry import METHODS
from .base import Method


def masked_l1(prediction: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean of |prediction - target| over the valid pixels (and all channels), in float32."""
    diff = (prediction.float() - target.float()).abs() * mask.float()
    return diff.sum() / (mask.float().sum() * prediction.shape[1]).clamp_min(1.0)


def warped_l1(output: Tensor, batch: dict[str, Tensor]) -> Tensor:
    """The F2F / MF2F loss: masked L1 between the warped output and the noisy target frame."""
    return masked_l1(warp(output.float(), batch["flow"].float()), batch["target"], batch["mask"])


@METHODS.register("f2f")
class FrameToFrame(Method):
    """F2F: a single-frame network fine-tuned with the warped L1 loss against the previous noisy frame."""

    name = "f2f"
    batch_kind = "video_warp"
    default_net = "unet"
    #: offsets (relative to the restored frame) of the network's input frames at inference
    input_offsets: ClassVar[tuple[int, ...]] = (0,)

    def training_offsets(self, target_offset: int) -> tuple[int, ...]:
        """Input frames of a training sample whose noisy target is at ``target_offset`` (+-1)."""
        return (0,)

    def loss(self, net: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        return warped_l1(net(batch["frames"][:, 0]), batch)
