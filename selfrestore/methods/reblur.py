"""Deblurring with the reblurring loss (Nah, Son, Lee & Lee, "Clean Images are Hard to Reblur", ICLR 2022).

Two networks: the deblurring network M_D (the method's ``net``, a U-Net by default) and the small
reblurring module M_R (:class:`~selfrestore.nets.reblur.ReblurNet`), which the method owns.

* ``deblur_l1``: the supervised baseline, M_D trained with ||M_D(B) - S||_1 (B blurry, S sharp).
* ``reblur``: two players updated in turn at every step (paper Sec. 3):

  - M_R (``extra_loss``, M_D fixed), with L = M_D(B):
    L_blur = ||M_R(L) - B||_1 (learn to amplify the blur M_D left, back to the input's blur) and
    L_sharp = ||M_R(S') - S'||_1 (a sharp image has no blur to amplify: M_R must leave it alone), where
    S' = S, or S' = M_D(S) with ``sharp_input="deblurred"`` (the variant that shows M_R the kind of sharp
    image M_D produces, as at test time where the pseudo-sharp image is a network output);
  - M_D (``loss``, M_R fixed): ||L - S||_1 + weight * ||M_R(L) - M_R(S)||_1, the supervised reblurring
    loss: the blur M_R can still find in L must match what it finds in the sharp image.

  At test time, :meth:`Reblur.adapt` runs the paper's self-supervised adaptation
  (:mod:`selfrestore.adapt_deblur`) from the blurry inputs alone.

How two networks fit the generic driver (no driver change beyond two optional hooks): the method exposes
its auxiliary network through ``extra_modules()`` (the driver moves it to the device, puts its parameters
in the optimiser and saves it in the checkpoint as ``extra.reblur.*``; ``load_extra_modules`` rebuilds it
when a model file is loaded). ``loss`` returns the sum of the two players' objectives, each one blind to
the other player's weights (M_R is frozen inside M_D's term, M_D's outputs are detached inside M_R's
term), so a single backward pass and a single Adam step update M_D on its loss and M_R on its own: the
two updates of one step of the paper's alternation, taken simultaneously from the same state.
"""
from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, ClassVar, Iterator, Sequence

import torch
from torch import Tensor, nn

from ..corruption import blur as _blur  # noqa: F401  (registers the "blur..." noise names)
from ..nets.reblur import ReblurNet
from ..registry import METHODS
from .base import Method, check_non_negative

if TYPE_CHECKING:
    import numpy as np


def l1(a: Tensor, b: Tensor) -> Tensor:
    """Mean absolute error in float32 (robust under autocast)."""
    return torch.mean(torch.abs(a.float() - b.float()))


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[nn.Module]:
    """Run ``module`` as a fixed function: gradients flow through it to its input, not into its weights."""
    flags = [p.requires_grad for p in module.parameters()]
    for p in module.parameters():
        p.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in zip(module.parameters(), flags):
            p.requires_grad_(flag)


def _on_device(module: nn.Module, like: Tensor) -> nn.Module:
    """Move ``module`` (in place, keeping its Parameter objects) to ``like``'s device if needed."""
    param = next(module.parameters(), None)
    if param is not None and param.device != like.device:
        module.to(like.device)
    return module


def _as_tensor(image: Any) -> Tensor:
    """(H, W, C) NumPy array -> (1, C, H, W) tensor; tensors pass through."""
    if torch.is_tensor(image):
        return image
    import numpy as np

    return torch.from_numpy(np.ascontiguousarray(np.asarray(image, dtype=np.float32).transpose(2, 0, 1)))[None]


@METHODS.register("deblur_l1")
class DeblurL1(Method):
    """Supervised deblurring baseline M_D with the L1 loss (needs sharp targets: benchmarks only)."""

    name = "deblur_l1"
    batch_kind = "blurry"
    maps_own_data = True  #: (its sources map float counts and dim data: training_map)
    needs_clean = True
    default_net = "unet_residual"  #: M_D(B) = B + U(B) (selfrestore.nets.reblur.ResidualUNet)
    supports_adaptation = True  #: through a fresh reblurring module (see :meth:`adapt`)

    data_options: ClassVar[dict[str, dict[str, Any]]] = {
        "kernels": {"metavar": "FILE", "default": None,
                    "help": "deblurring, with --synthetic: blur kernels (.mat/.npy, e.g. "
                            "../shared/data/blur_kernels/...); default: random camera-shake trajectories"},
        "blur_noise": {"type": float, "default": 1.0, "metavar": "S",
                       "help": "deblurring, with --synthetic: std of the light noise added to the blurry "
                               "images (0-255 scale; of the [0, 1] range fit maps float counts and dim 16-bit "
                               "data to); not with --noise blurN_gaussS, which names its own"},
    }

    def loss(self, net: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        return l1(net(batch["blurry"]), batch["clean"])

    # --- data from the command line -----------------------------------------------------------------
    def make_source(self, args: Any, noise: Any) -> Any:
        """``--pairs BLURRY_DIR SHARP_DIR`` (real pairs matched by name) or sharp DATA with ``--synthetic``
        (blurred on the fly by ``--noise blur...`` or by ``--kernels`` / random camera shake)."""
        from ..corruption.blur import Blur, load_kernels
        from ..data.blur_pairs import RealBlurPairs, SyntheticBlurPairs
        from ..errors import UserError

        scale = {"mapped": getattr(args, "maps_method_data", True), "dim": getattr(args, "maps_dim_data", True),
                 "quiet": getattr(args, "quiet", False), "seed": getattr(args, "seed", 0)}  # float counts, dim data
        if getattr(args, "pairs", None):
            return RealBlurPairs(*args.pairs, channels=getattr(args, "channels", None), **scale)
        if not getattr(args, "synthetic", False) or not args.data:
            raise UserError(f"method {self.name} learns deblurring from (blurry, sharp) pairs: give "
                            f"--pairs BLURRY_DIR SHARP_DIR, or sharp images with --synthetic "
                            f"(blurred with --kernels FILE or random camera shake)")
        resumed = bool(getattr(args, "resumed_run", False))  # a run begun before the refusals: as it was begun
        if getattr(args, "redraw", None) and not resumed:  # it would be recorded as if it changed something
            raise UserError(f"--redraw: method {self.name} already blurs its synthetic data anew for every patch "
                            "(supervised data augmentation); leave --redraw out")
        from ..data.images import load_images

        blur_noise = 1.0 if getattr(args, "blur_noise", None) is None else args.blur_noise
        check_non_negative("reblur", blur_noise=blur_noise)
        if isinstance(noise, Blur):
            if args.kernels:
                raise UserError("give either --noise blur... or --kernels, not both")
            if getattr(args, "blur_noise", None) is not None and not resumed:  # it was recorded, the name's used
                raise UserError(f"--noise {noise.name} names its own noise (blurN_gaussS: std S); --blur-noise "
                                f"goes with --kernels or random camera shake: give one of the two, not both")
            corruption = noise
        else:
            if noise is not None:
                raise UserError(f"--noise {noise.name}: deblurring needs a blur model (e.g. --noise blur31_gauss1) "
                                f"or --kernels FILE")
            kernels = load_kernels(args.kernels) if args.kernels else None
            corruption = Blur(kernels=kernels, sigma=blur_noise)
        images = load_images(args.data, args.channels)
        return SyntheticBlurPairs(images, corruption, **scale)

    # --- auxiliary networks (none here) -------------------------------------------------------------
    def extra_modules(self, channels: int | None = None) -> dict[str, nn.Module]:
        """Networks trained alongside ``net`` (optimised through ``loss``, saved in the checkpoint)."""
        return {}

    # --- test-time adaptation -----------------------------------------------------------------------
    def reblur_module(self, channels: int) -> tuple[nn.Module, bool]:
        """(M_R for test-time adaptation, whether it was trained): a fresh one here."""
        return ReblurNet(channels), False

    def adapt(self, net: nn.Module, blurry: Sequence[Tensor | np.ndarray], steps: int,
              **settings: Any) -> dict[str, list[float]]:
        """Self-supervised test-time adaptation of ``net`` (in place) on blurry images (tensors (1, C, H, W)
        or (C, H, W), or (H, W, C) arrays as ``restore --adapt`` passes them); ``settings`` go to
        :class:`selfrestore.adapt_deblur.AdaptConfig` (those not given: its defaults, the setting validated in
        benchmarks/results/reblur_table.md, for a model with a trained M_R). Returns the loss history. Without a
        trained M_R (a deblur_l1 model), a fresh one is first fitted alone (``warmup``, default 50 steps) and
        learns at ``lr_reblur`` FRESH_REBLUR_LR unless told otherwise: the validated 1e-5 is for a trained M_R,
        and fits a fresh one slowly."""
        from ..adapt_deblur import AdaptConfig, adapt_deblur

        param = next(net.parameters())
        blurry = [_as_tensor(b).to(param.device) for b in blurry]
        reblur_net, trained = self.reblur_module(blurry[0].shape[-3])
        if not trained:
            settings.setdefault("warmup", 50)
            settings.setdefault("lr_reblur", FRESH_REBLUR_LR)
        return adapt_deblur(net, reblur_net, blurry, AdaptConfig(steps=steps, **settings))


#: M_R's learning rate in test-time adaptation when it starts untrained (a deblur_l1 model): the rate used before
#: stop 42; at the validated 1e-5 a fresh M_R learnt a toy blur in its 50 warm-up steps far less (an ad hoc probe)
FRESH_REBLUR_LR = 1e-4


@METHODS.register("reblur")
class Reblur(DeblurL1):
    """M_D trained with L1 + the supervised reblurring loss, alternating with M_R updates (Nah et al. 2022).

    Options: ``reblur_weight`` (of the reblurring loss, default 1), ``reblur_blocks`` (1 or 2 residual
    blocks in M_R), ``reblur_features`` (M_R width), ``reblur_sharp_input`` ("sharp": L_sharp on S;
    "deblurred": on M_D(S)), ``reblur_lr_scale`` (M_R's learning rate as a multiple of M_D's).
    """

    name = "reblur"
    cli_options: ClassVar[dict[str, dict[str, Any]]] = {
        "reblur_weight": {"type": float, "default": 1.0, "help": "reblur: weight of the reblurring loss"},
        "reblur_blocks": {"type": int, "choices": [1, 2], "default": 1,
                          "help": "reblur: residual blocks in the reblurring module M_R"},
        "reblur_features": {"type": int, "default": 32, "help": "reblur: feature maps of M_R"},
        "reblur_sharp_input": {"choices": ["sharp", "deblurred"], "default": "sharp",
                               "help": "reblur: M_R's L_sharp on the sharp image S or on M_D(S)"},
        "reblur_lr_scale": {"type": float, "default": 1.0,
                            "help": "reblur: M_R's learning rate as a multiple of M_D's (a fresh M_R next to a "
                                    "pre-trained M_D must catch up, or the reblurring loss stays a copy of L1)"},
    }

    def __init__(self, noise=None, reblur_weight: float = 1.0, reblur_blocks: int = 1, reblur_features: int = 32,
                 reblur_sharp_input: str = "sharp", reblur_lr_scale: float = 1.0, **options: Any):
        if reblur_sharp_input not in ("sharp", "deblurred"):
            raise ValueError(f"reblur_sharp_input must be 'sharp' or 'deblurred', not {reblur_sharp_input!r}")
        if int(reblur_blocks) not in (1, 2):
            raise ValueError("reblur_blocks must be 1 or 2 (the paper's M_R sizes)")
        if not float(reblur_lr_scale) > 0:
            raise ValueError("reblur_lr_scale must be > 0")
        if int(reblur_features) < 1:
            raise ValueError(f"reblur_features must be >= 1, got {reblur_features}")
        check_non_negative("reblur", reblur_weight=reblur_weight)
        super().__init__(noise, reblur_weight=float(reblur_weight), reblur_blocks=int(reblur_blocks),
                         reblur_features=int(reblur_features), reblur_sharp_input=reblur_sharp_input,
                         reblur_lr_scale=float(reblur_lr_scale), **options)
        self.lr_scales = {"reblur": float(reblur_lr_scale)}  #: read by the training driver
        self.weight = float(reblur_weight)
        self.sharp_input = reblur_sharp_input
        self.reblur_net: ReblurNet | None = None

    def net_kwargs(self, channels: int) -> dict[str, Any]:
        self._channels = channels  # M_R is built for the same number of channels as M_D
        return super().net_kwargs(channels)

    def extra_modules(self, channels: int | None = None) -> dict[str, nn.Module]:
        if self.reblur_net is None:
            channels = channels or getattr(self, "_channels", None) or 3
            self.reblur_net = ReblurNet(channels, features=self.options["reblur_features"],
                                        blocks=self.options["reblur_blocks"])
        return {"reblur": self.reblur_net}

    def load_extra_modules(self, tensors: dict[str, Tensor]) -> None:
        """Rebuild M_R from a model file's ``extra.reblur.*`` tensors."""
        prefix = "extra.reblur."
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        if not state:
            return
        self.reblur_net = None
        module = self.extra_modules(int(state["head.weight"].shape[1]))["reblur"]
        module.load_state_dict(state)
        module.to(state["head.weight"].device)

    def _reblur(self, like: Tensor) -> ReblurNet:
        if self.reblur_net is None:
            self.extra_modules(like.shape[1])
        return _on_device(self.reblur_net, like)

    def _sharp_reference(self, net: nn.Module, sharp: Tensor) -> Tensor:
        if self.sharp_input == "deblurred":
            with torch.no_grad():
                return net(sharp).detach()
        return sharp

    def terms(self, net: nn.Module, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """The loss terms of one step: ``l1`` and ``reblur`` (M_D's, with M_R frozen), ``blur`` and
        ``sharp`` (M_R's, with M_D's outputs detached)."""
        blurry, sharp = batch["blurry"], batch["clean"]
        reblur = self._reblur(blurry)
        deblurred = net(blurry)
        with frozen(reblur):
            with torch.no_grad():
                target = reblur(sharp)
            reblur_term = l1(reblur(deblurred), target)
        reference = self._sharp_reference(net, sharp)
        return {"l1": l1(deblurred, sharp), "reblur": reblur_term,
                "blur": l1(reblur(deblurred.detach()), blurry), "sharp": l1(reblur(reference), reference)}

    def loss(self, net: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        """M_D's objective L1 + weight * ||M_R(L) - M_R(S)||_1 plus M_R's objective L_blur + L_sharp;
        their gradients touch disjoint parameters (see the module docstring)."""
        t = self.terms(net, batch)
        return t["l1"] + self.weight * t["reblur"] + t["blur"] + t["sharp"]

    def reblur_module(self, channels: int) -> tuple[nn.Module, bool]:
        """A copy of the trained M_R (adapting to one image set leaves the model unchanged)."""
        import copy

        if self.reblur_net is None:
            return super().reblur_module(channels)
        return copy.deepcopy(self.reblur_net), True
