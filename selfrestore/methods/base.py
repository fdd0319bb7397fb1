"""The self-supervision method interface: what a method consumes, how it trains, how it restores.

A ``batch`` is a dict of tensors. Keys by batch kind (all images (N, C, H, W) in [0, 1] scale):

* ``"single"``        : ``noisy``                       one corrupted observation per scene
* ``"pair"``          : ``noisy``, ``noisy2``           two independent corruptions of one scene
* ``"blurry_noisy"``  : ``blurry``, ``noisy``           a blurry long exposure + a noisy short one
* ``"frames"``        : ``frames`` (N, T, C, H, W)      consecutive video frames
* ``"burst"``         : ``frames`` (N, T, C, H, W)      raw burst frames (+ ``affines`` (N, T, 2, 3) estimated
                                                          on the noisy frames)
* ``"blurry"``        : ``blurry``                      blurry images (+ ``clean`` for supervised deblurring)
* ``"video_warp"``    : ``frames``, ``target``, ``flow``, ``mask``   a video stack with the flow and occlusion
                                                          mask towards the neighbouring noisy frame (F2F/MF2F)

Optional keys: ``clean`` (present only for the supervised reference and for validation; a self-supervised
method must never read it in ``loss``), ``noise_params`` (dict of per-image tensors drawn by the
corruption model, e.g. ``{"sigma": (N,)}``, for methods told the noise level is known).
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..corruption import Corruption
from ..errors import UserError


class Method:
    """Base class. Subclasses register with ``@METHODS.register("name")`` in their own file."""

    name: ClassVar[str] = "method"
    batch_kind: ClassVar[str] = "single"
    needs_clean: ClassVar[bool] = False  #: True only for the supervised reference (benchmarks)
    #: whether :meth:`make_source` maps float counts and dim data to [0, 1] itself (``intensity_map.training_map``
    #: with ``args.maps_method_data``): ``fit`` records it, so a resumed run keeps the scale it began with
    maps_own_data: ClassVar[bool] = False
    default_net: ClassVar[str] = "unet"
    #: whether fine-tuning on the test images themselves ("restore --adapt N") is sound for this method
    supports_adaptation: ClassVar[bool] = False
    #: whether the method needs the noise of neighbouring pixels to be independent (blind-spot and
    #: neighbour sub-sampling methods): ``fit`` then checks the data for correlated noise first
    needs_independent_noise: ClassVar[bool] = False
    #: a denoiser of additive noise whose network returns about the local mean of its input in flat areas
    #: (trained on unclipped noise): ``restore`` may then undo the bias of noise clipped at 0 and 1
    #: (:mod:`selfrestore.corruption.clipping`). Not deblurring or multi-input methods.
    corrects_clipped_noise: ClassVar[bool] = False
    #: extra command-line options of this method: name -> argparse keyword arguments (type, default,
    #: help, choices). ``selfrestore fit`` adds them as ``--name`` and passes them to the constructor.
    cli_options: ClassVar[dict[str, dict[str, Any]]] = {}
    #: extra ``fit`` options that say where this method's own kind of data comes from (e.g. ``--blurry``
    #: DIR); unlike ``cli_options`` they are not passed to the constructor but read by :meth:`make_source`.
    data_options: ClassVar[dict[str, dict[str, Any]]] = {}
    #: training patch sides must be multiples of this times the network's ``size_multiple`` (2 for the
    #: neighbour sub-samplers, whose half-size sub-images must still fit the network)
    patch_multiple: ClassVar[int] = 1
    #: what a model file of this method trained without ``--noise`` used for the noise (``selfrestore models``)
    noise_when_not_given: ClassVar[str] = "not given (the method does not need a noise model)"
    #: training progress in [0, 1), set by the driver before each step (for schedules such as Nb2Nb's gamma)
    progress: float = 0.0

    def __init__(self, noise: Corruption | None = None, **options: Any):
        self.noise = noise
        self.options = options

    # --- network -----------------------------------------------------------------------------------
    def net_kwargs(self, channels: int) -> dict[str, Any]:
        """Constructor arguments for the network, given the number of image channels."""
        return {"in_channels": channels, "out_channels": channels}

    # --- training ----------------------------------------------------------------------------------
    def loss(self, net: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        """A scalar loss computed without clean data (unless ``needs_clean``)."""
        raise NotImplementedError

    def patch_side_multiple(self, net: nn.Module) -> int:
        """What every training patch side must be a multiple of, for this method with this network."""
        inner = getattr(net, "module", net)  # a DDP-wrapped net keeps its attributes on .module
        return self.patch_multiple * int(getattr(net, "size_multiple", getattr(inner, "size_multiple", 1)))

    def check_patch(self, net: nn.Module, x: Tensor) -> None:
        """Raise a UserError if the batch ``x`` (N, C, H, W) has sides this method cannot train on."""
        multiple = self.patch_side_multiple(net)
        if x.shape[-2] % multiple or x.shape[-1] % multiple:
            raise UserError(f"{self.name}: patch sides must be multiples of {multiple}, got "
                            f"{x.shape[-2]}x{x.shape[-1]}")

    def make_source(self, args: Any, noise: Corruption | None) -> Any | None:
        """A DataSource built from the ``fit`` options (an argparse namespace holding ``data``,
        ``synthetic``, ``seed``, ``channels``, ``maps_method_data`` (map float counts to [0, 1], and with
        ``maps_dim_data`` dim 16-bit data too: each False on ``--resume`` of a run begun before that) and this
        method's ``data_options``), for methods whose data the generic image sources cannot give. None: use
        the generic sources (noisy images, pairs)."""
        return None

    # --- inference ---------------------------------------------------------------------------------
    def restore(self, net: nn.Module, obs: Tensor, **extra: Tensor) -> Tensor:
        """Estimate the clean image from one observation (N, C, H, W). Default: run the network."""
        return net(obs)

    def config(self) -> dict[str, Any]:
        """What must be stored in a checkpoint to rebuild this method."""
        return {"name": self.name, "noise": self.noise.name if self.noise else None, **self.options}

    def describe(self) -> str:
        return self.name


def check_non_negative(method: str, **values: float) -> None:
    """A one-line user error unless every option is a finite number >= 0 (nan passed ``value < 0`` checks)."""
    import math

    for name, value in values.items():
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise UserError(f"{method}: {name} must be a finite number >= 0, got {value}")


def l2(a: Tensor, b: Tensor) -> Tensor:
    """Mean squared error in float32 (robust under autocast)."""
    return torch.mean((a.float() - b.float()) ** 2)


def masked_mean(per_pixel: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``per_pixel`` (N, C, H, W) over the pixels where ``mask`` (N, 1, H, W) is 1 and all channels,
    in float32 (0 when nothing is valid)."""
    total = (per_pixel.float() * mask.float()).sum()
    return total / (mask.float().sum() * per_pixel.shape[1]).clamp_min(1.0)
