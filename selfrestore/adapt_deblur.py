"""Self-supervised test-time adaptation of a deblurring network (Nah et al. 2022, Sec. 3.3, Algorithm 1).

At test time there is no sharp image, only the blurry inputs B. Each iteration alternates:

1. **M_R update** (M_D fixed). L = M_D(B) is the current deblurred image and L* = M_D(L) a pseudo-sharp
   image (deblurring the deblurred image once more). M_R learns to rebuild the blur of the input from L and
   to leave the pseudo-sharp image unchanged:  ||M_R(L) - B||_1 + ||M_R(L*) - L*||_1.
2. **M_D update** (M_R fixed) with the self-supervised reblurring loss ||M_R(L) - sg(L)||_1 (sg: stop-
   gradient): a clean image is hard to reblur, so M_D is pushed towards outputs in which M_R finds no blur
   left to amplify.

Iterations run on random crops of the inputs (``patch_size``, or the smallest input's side when that is less,
one side for all: :func:`crop_side`; ``None`` uses the whole images), so one adaptation can cover one image or a
whole folder; an image smaller than the network's size multiple is padded by repeating its edge. ``warmup``
M_R-only iterations come first: needed when M_R starts untrained (a model trained with plain L1), harmless
otherwise. The defaults of :class:`AdaptConfig` are the setting benchmarks/results/reblur_table.md validated.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from .methods.reblur import frozen, l1


#: the validated setting (steps, lr(M_D), lr(M_R), anchor weight): the lowest validation LPIPS of
#: benchmarks/reblur_table.py's grid ("20,1e-5,1e-5,1": 0.3109, against 0.3207 without adaptation and 0.3271 for
#: "20,1e-5,1e-4,0", the defaults before, which made images worse), and the setting of its reported
#: test-time-adaptation rows (benchmarks/results/reblur_table.md)
VALIDATED_SETTING = "20,1e-5,1e-5,1"


@dataclass
class AdaptConfig:
    """Settings of one adaptation; the defaults are :data:`VALIDATED_SETTING` (what ``restore --adapt`` and
    ``Reblur.adapt`` use)."""

    steps: int = 20                 #: alternations (one M_R update + one M_D update each)
    warmup: int = 0                 #: M_R-only updates before the alternation
    lr_deblur: float = 1e-5         #: Adam learning rate for M_D (small: adaptation, not retraining)
    lr_reblur: float = 1e-5         #: Adam learning rate for M_R
    patch_size: int | None = 128    #: crop size per iteration; None: whole images (one at a time)
    batch_size: int = 4             #: crops per iteration
    consistency: float = 1.0        #: weight of ||M_R(L) - B||_1 in the M_D update (a data anchor; 0: the paper)
    seed: int = 0
    progress: bool = False          #: a progress bar over the warm-up and the alternations


def _as_batch(image: Tensor) -> Tensor:
    return image if image.dim() == 4 else image.unsqueeze(0)


def _at_least(image: Tensor, side: int) -> Tensor:
    """``image`` (1, C, H, W) padded at its bottom and right by repeating its edge to sides of at least
    ``side``: an image smaller than the network's size multiple still gives a training crop (it gave an empty
    one, and the network a shape error)."""
    h, w = image.shape[-2:]
    if h >= side and w >= side:
        return image
    return torch.nn.functional.pad(image, (0, max(0, side - w), 0, max(0, side - h)), mode="replicate")


def crop_side(images: Sequence[Tensor], patch_size: int, multiple: int) -> int:
    """The one crop side of every adaptation batch: ``patch_size``, or the smallest side among ``images`` when
    that is less, rounded down to the network's size ``multiple`` (at least one multiple: the images are padded to
    it). One side for all: crops of different sides cannot be stacked into a batch (a 96x61 image next to a
    96x96 one stopped ``restore --adapt`` with a RuntimeError in torch.cat); over all the images, not the ones a
    batch happens to draw, so that the random draws stay those of the uniform-size case."""
    smallest = min(min(image.shape[-2:]) for image in images)
    side = min(patch_size, smallest)
    return max(multiple, side - side % multiple)


def _crops(images: list[Tensor], config: AdaptConfig, rng: np.random.Generator, side: int) -> Tensor:
    """A batch of random ``side`` x ``side`` crops (one whole image when ``patch_size`` is None)."""
    if config.patch_size is None:
        return images[int(rng.integers(len(images)))]
    crops = []
    for _ in range(config.batch_size):
        img = images[int(rng.integers(len(images)))]
        h, w = img.shape[-2:]
        y, x = int(rng.integers(h - side + 1)), int(rng.integers(w - side + 1))
        crops.append(img[..., y:y + side, x:x + side])
    return torch.cat(crops)


def adapt_deblur(deblur_net: nn.Module, reblur_net: nn.Module, blurry: Sequence[Tensor],
                 config: AdaptConfig | None = None) -> dict[str, list[float]]:
    """Adapt ``deblur_net`` (M_D, in place) and ``reblur_net`` (M_R, in place) to blurry images alone.

    ``blurry``: tensors (1, C, H, W) or (C, H, W), on the networks' device. With ``patch_size=None`` the
    image sides must be multiples of the network's ``size_multiple``. Returns the per-iteration losses
    ``{"reblur": [...], "self": [...]}`` (``self`` is the self-supervised reblurring loss before each
    M_D update).
    """
    config = config or AdaptConfig()
    images = [_as_batch(b).detach() for b in blurry]
    if not images:
        raise ValueError("no images to adapt to")
    device = images[0].device
    reblur_net.to(device)
    multiple = int(getattr(deblur_net, "size_multiple", 1))
    images = [_at_least(image, multiple) for image in images]
    side = crop_side(images, config.patch_size, multiple) if config.patch_size is not None else 0
    rng = np.random.default_rng(config.seed)
    opt_d = torch.optim.Adam(deblur_net.parameters(), lr=config.lr_deblur)
    opt_r = torch.optim.Adam(reblur_net.parameters(), lr=config.lr_reblur)
    was_training = deblur_net.training, reblur_net.training
    deblur_net.train()
    reblur_net.train()
    history: dict[str, list[float]] = {"reblur": [], "self": []}
    from tqdm import tqdm

    bar = tqdm(total=config.warmup + config.steps, desc="adapt (reblurring)", unit="step", disable=not config.progress)
    try:
        for it in range(config.warmup + config.steps):
            bar.update(1)
            b = _crops(images, config, rng, side)
            # 1. M_R update: rebuild the input blur from L, keep the pseudo-sharp L* = M_D(L) unchanged
            with torch.no_grad():
                deblurred = deblur_net(b)
                pseudo_sharp = deblur_net(deblurred)
            loss_r = l1(reblur_net(deblurred), b) + l1(reblur_net(pseudo_sharp), pseudo_sharp)
            opt_r.zero_grad(set_to_none=True)
            loss_r.backward()
            opt_r.step()
            history["reblur"].append(float(loss_r.detach()))
            if it < config.warmup:
                continue
            # 2. M_D update with the self-supervised reblurring loss ||M_R(L) - sg(L)||
            deblurred = deblur_net(b)
            with frozen(reblur_net):
                reblurred = reblur_net(deblurred)
                loss_self = l1(reblurred, deblurred.detach())
                loss_d = loss_self + config.consistency * l1(reblurred, b) if config.consistency else loss_self
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            history["self"].append(float(loss_self.detach()))
            bar.set_postfix(loss=f"{history['self'][-1]:.4g}", refresh=False)
    finally:
        bar.close()
        deblur_net.train(was_training[0])
        reblur_net.train(was_training[1])
    return history
