"""Frame-to-frame (F2F, Ehret et al. 2019): fine-tune a pretrained single-frame denoiser on one video.

The network's output for frame t, warped onto frame t-1 by the optical flow, should match the *noisy*
frame t-1: ``L = || M (W_{t-1<-t} f(y_t) - y_{t-1}) ||_1 / |M|``. The noise of y_{t-1} is independent of
y_t, so (like Noise2Noise, with a median-seeking L1) the minimiser is the clean frame when the noise's
median is its mean (symmetric noise); for skewed noise (low-count Poisson) ``warp_loss="l2"`` squares the
difference and seeks the mean. The mask M drops occluded and badly aligned pixels, where the warped
output and the target do not show the same scene.

Batch kind ``"video_warp"`` (produced by :mod:`selfrestore.video`):

* ``frames`` (N, T, C, H, W): the network's input stack (T = 1 for F2F)
* ``target`` (N, C, H, W): the noisy neighbour frame
* ``flow``   (N, 2, H, W): backward flow of the target towards the input's middle frame
  (``warp(f(input), flow)`` is aligned with ``target``; see :mod:`selfrestore.flow`)
* ``mask``   (N, 1, H, W): 1 where the pixel is visible and well aligned
"""
from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor, nn

from ..corruption import Corruption
from ..errors import UserError
from ..flow import warp
from ..registry import METHODS
from .base import Method, masked_mean


def masked_l1(prediction: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean of |prediction - target| over the valid pixels (and all channels), in float32."""
    return masked_mean((prediction.float() - target.float()).abs(), mask)


def masked_l2(prediction: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean of (prediction - target)^2 over the valid pixels (and all channels), in float32."""
    return masked_mean((prediction.float() - target.float()) ** 2, mask)


#: the warped losses: L1 (the papers'; median-seeking, robust to flow errors the mask misses) and L2
#: (mean-seeking: the unbiased choice for skewed noise such as low-count Poisson, whose median is below
#: its mean, so L1 learns a darkened image)
WARP_LOSSES = {"l1": masked_l1, "l2": masked_l2}


def warped_loss(output: Tensor, batch: dict[str, Tensor], kind: str = "l1") -> Tensor:
    """The F2F / MF2F loss: masked L1 (or L2) between the warped output and the noisy target frame."""
    return WARP_LOSSES[kind](warp(output.float(), batch["flow"].float()), batch["target"], batch["mask"])


def warped_l1(output: Tensor, batch: dict[str, Tensor]) -> Tensor:
    """The F2F / MF2F loss of the papers: masked L1 between the warped output and the noisy target frame."""
    return warped_loss(output, batch, "l1")


#: the ``warp_loss`` option shared by F2F and MF2F
WARP_LOSS_OPTION = {"choices": tuple(WARP_LOSSES), "default": "l1",
                    "help": "f2f/mf2f: l1 (the papers') or l2 (mean-seeking: for skewed noise, e.g. low-count "
                            "Poisson)"}


def check_warp_loss(kind: str) -> str:
    """``kind`` if it names a warped loss, else a UserError listing them: F2F and MF2F check their option alike."""
    if kind not in WARP_LOSSES:
        raise UserError(f"unknown warped loss {kind!r}; use one of: {', '.join(WARP_LOSSES)}")
    return kind


@METHODS.register("f2f")
class FrameToFrame(Method):
    """F2F: a single-frame network fine-tuned with the warped L1 loss against the previous noisy frame."""

    name = "f2f"
    batch_kind = "video_warp"
    default_net = "unet"
    #: offsets (relative to the restored frame) of the network's input frames at inference
    input_offsets: ClassVar[tuple[int, ...]] = (0,)
    cli_options = {"warp_loss": WARP_LOSS_OPTION}

    def __init__(self, noise: Corruption | None = None, warp_loss: str = "l1", **options: Any):
        super().__init__(noise, warp_loss=check_warp_loss(warp_loss), **options)
        self.warp_loss = warp_loss

    def training_offsets(self, target_offset: int) -> tuple[int, ...]:
        """Input frames of a training sample whose noisy target is at ``target_offset`` (+-1)."""
        return (0,)

    def loss(self, net: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        return warped_loss(net(batch["frames"][:, 0]), batch, self.warp_loss)
