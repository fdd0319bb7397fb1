"""Does a trained network restore a region the same way whatever the size of the input around it?

A network whose receptive field is wider than its training patches can learn to lean on the patch borders
(the zero padding of its convolutions): on whole images, where interior pixels never see a border, it then
restores worse. Seen in Table 1 runs of the blind-spot net (stops 12-13): one model scored 27 dB on a 128 px
crop given alone and 15 dB on the same crop inside the whole image.

The check needs no clean image. It restores the central ``side`` x ``side`` region of a noisy
``2 side`` x ``2 side`` patch twice, alone and inside the whole patch, and compares the two results away from
the region's edges (``margin`` px, where the added context may rightly change them), relative to how much the
restoration changes the input there:

    drift = rms(R(region) - R(patch)[region]) / rms(R(patch)[region] - noisy[region])   (interior only)

Calibration (``benchmarks/results/size_check_calibration.md``: the 21 gauss25 models of Table 1, 4 BSDS500
train images): the 19 size-stable ones (Laine19 nets, fixed and mixed patches, and the N2C / N2N / N2V / Nb2Nb
U-Nets) give 0.0004-0.0066, the two Laine19 nets known to lean on the borders 0.16 and 0.52;
``DRIFT_LIMIT`` sits between.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from .data.base import DataSource
    from .methods.base import Method

#: above this, the network's output depends on the input size (see the module docstring for the calibration)
DRIFT_LIMIT = 0.05
MARGIN = 16


def size_drift(method: Method, net: nn.Module, noisy: Tensor, side: int, margin: int = MARGIN) -> float:
    """Mean drift over the patches of ``noisy`` (N, C, >= 2 side, >= 2 side); see the module docstring."""
    if side <= 2 * margin:
        raise ValueError(f"side {side} leaves no interior inside a {margin} px margin")
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    top = side // 2
    inner = (slice(None), slice(None), slice(margin, side - margin), slice(margin, side - margin))
    drifts = []
    try:
        with torch.no_grad():
            for patch in noisy[:, :, :2 * side, :2 * side].float():
                whole = patch[None].to(device)
                region = whole[..., top:top + side, top:top + side]
                alone = method.restore(net, region).float()
                inside = method.restore(net, whole).float()[..., top:top + side, top:top + side]
                change = (inside - region)[inner].pow(2).mean().sqrt()
                drifts.append(float((alone - inside)[inner].pow(2).mean().sqrt() / change.clamp_min(1e-6)))
    finally:
        net.train(was_training)
    return float(np.mean(drifts))


def check_applies(source: DataSource, net: nn.Module) -> bool:
    """Whether the check applies at all: single-image data, and a receptive field that reaches past the margin."""
    return source.kind in ("single", "pair") and getattr(net, "receptive_field", 0) > MARGIN


def smallest_side(multiple: int) -> int:
    """The smallest region side the check can use with a network whose input sides are multiples of ``multiple``
    (an interior must be left inside the margin)."""
    return (2 * MARGIN // multiple + 1) * multiple


def fitting_side(source: DataSource, side: int, multiple: int) -> int:
    """The region side the check can use on ``source``: ``side``, or less where no training image holds a
    ``2 side`` px patch (the largest half-side that fits, a multiple of ``multiple``, the network's input size
    multiple). A patch padded by mirroring a small image would test the padding, not the network on real
    context."""
    images = next(iter(getattr(source, "fields", {}).values()), None)
    if not images:
        return side
    largest = max(min(image.shape[:2]) for image in images)
    return side if largest >= 2 * side else largest // 2 // multiple * multiple


def check_training_result(method: Method, net: nn.Module, source: DataSource, side: int, patches: int = 4,
                          seed: int = 0) -> float | None:
    """The drift of a freshly trained single-image network on ``patches`` patches of its own (noisy)
    training data, or None where the check does not apply (other batch kinds, a receptive field that cannot
    reach past the margin, a patch too small for the margin). The patches come from the images that hold a
    ``2 side`` px patch (callers shrink ``side`` with :func:`fitting_side` so that one does)."""
    if not check_applies(source, net) or side <= 2 * MARGIN:
        return None
    from .data.images import PatchSource

    if isinstance(source, PatchSource):
        first = next(iter(source.fields.values()))
        large = {i for i, image in enumerate(first) if min(image.shape[:2]) >= 2 * side}
        if not large:
            return None
        source = source.subset(large.__contains__)
    batch = source.batch(np.random.default_rng(seed), patches, 2 * side)
    return size_drift(method, net, batch["noisy"], side)


TRAIN_AGAIN = ("Fine-tune it briefly on mixed patch sizes (the same fit command with --init THIS_MODEL "
               "--patch-sizes auto --steps 100 --lr 1e-4 -o NEW_MODEL: 80 such steps repaired a Table 1 model that "
               "failed this check) or train again with another --seed")
#: the advice for a network that failed although it trained on mixed patch sizes already
TRAIN_AGAIN_MIXED = "Train it again with another --seed"


def drift_warning(drift: float, side: int, advice: str | None = None, sides: Sequence[int] = ()) -> str:
    """The warning printed when ``drift`` exceeds ``DRIFT_LIMIT``, for a network trained on ``side`` px
    patches, or on the mixed ``sides`` (then the advice is not to train on mixed sizes: it did)."""
    mixed = len(set(sides)) > 1
    trained = "/".join(map(str, sorted(set(sides)))) if mixed else str(side)
    advice = advice or (TRAIN_AGAIN_MIXED if mixed else TRAIN_AGAIN)
    return (f"this network's output depends on the size of its input (size check: {drift:.2f}, sound networks "
            f"stay below {DRIFT_LIMIT}): trained on {trained} px patches, it has learned to lean on the patch "
            f"borders and will restore whole images worse than crops. {advice}")


def recorded_warning(header: dict) -> str | None:
    """The warning for a model file whose training ended with a failed size check (``fit`` records it)."""
    check = header.get("size_check") or {}
    if check.get("drift", 0.0) > check.get("limit", float("inf")):
        sides = (header.get("train_config") or {}).get("patch_sizes") or ()
        return drift_warning(float(check["drift"]), int(check.get("trained_side", check.get("side", 0))),
                             sides=[int(s) for s in sides if isinstance(s, (int, float))])
    return None
