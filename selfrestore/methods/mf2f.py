"""Multi-frame-to-frame (MF2F, Dewil et al. 2021): F2F for a multi-frame network (FastDVDnet-style).

The network restores frame t from the stack (y_{t-2}, ..., y_{t+2}). Trained naively with the F2F loss
against y_{t-1}, it would see its target in its own input and learn to copy the noise. So at training
time the input stack *excludes the target frame*:

* ``"shifted"``: the target's slot is skipped and the stack extends one frame further on that side,
  e.g. target t-1 -> (y_{t-3}, y_{t-2}, y_t, y_{t+1}, y_{t+2});
* ``"dilated"``: every other frame, (y_{t-4}, y_{t-2}, y_t, y_{t+2}, y_{t+4}), which excludes both
  neighbours (motion between stack frames is twice that of the normal stack).

At inference the normal stack is used. The loss is the masked warped L1 (or L2) of
:mod:`selfrestore.methods.f2f`.
``mf2c`` is the supervised reference (clean middle frame as target) used to pretrain the network on
gauss25 and as the benchmark's upper bound.
"""
from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor, nn

from ..corruption import Corruption
from ..errors import UserError
from ..registry import METHODS
from .base import Method, l2
from .f2f import WARP_LOSS_OPTION, check_warp_loss, warped_loss

STACKS = ("shifted", "dilated")


@METHODS.register("mf2f")
class MultiFrameToFrame(Method):
    name = "mf2f"
    batch_kind = "video_warp"
    default_net = "fastdvd"
    input_offsets: ClassVar[tuple[int, ...]] = (-2, -1, 0, 1, 2)
    cli_options = {"stack": {"choices": STACKS, "default": "shifted",
                             "help": "training stack that excludes the target frame"},
                   "warp_loss": WARP_LOSS_OPTION}

    def __init__(self, noise: Corruption | None = None, stack: str = "shifted", warp_loss: str = "l1",
                 **options: Any):
        if stack not in STACKS:
            raise UserError(f"unknown MF2F stack {stack!r}; use one of: {', '.join(STACKS)}")
        super().__init__(noise, stack=stack, warp_loss=check_warp_loss(warp_loss), **options)
        self.stack, self.warp_loss = stack, warp_loss

    def net_kwargs(self, channels: int) -> dict[str, Any]:
        return {"in_channels": channels, "out_channels": channels, "frames": 5}

    def training_offsets(self, target_offset: int) -> tuple[int, ...]:
        """Input offsets for a sample whose noisy target is at ``target_offset`` (-1 or +1)."""
        if self.stack == "dilated":
            return (-4, -2, 0, 2, 4)
        if target_offset < 0:
            return (-3, -2, 0, 1, 2)
        return (-2, -1, 0, 2, 3)

    def loss(self, net: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        return warped_loss(net(batch["frames"].flatten(1, 2)), batch, self.warp_loss)


@METHODS.register("mf2c")
class MultiFrameSupervised(Method):
    """Supervised multi-frame reference: L2 to the clean middle frame (batch kind ``"frames"`` with
    ``frames`` (N, 5, C, H, W) noisy and ``clean`` (N, C, H, W))."""

    name = "mf2c"
    batch_kind = "frames"
    needs_clean = True
    default_net = "fastdvd"
    input_offsets: ClassVar[tuple[int, ...]] = (-2, -1, 0, 1, 2)

    def net_kwargs(self, channels: int) -> dict[str, Any]:
        return {"in_channels": channels, "out_channels": channels, "frames": 5}

    def loss(self, net: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        return l2(net(batch["frames"].flatten(1, 2)), batch["clean"])
