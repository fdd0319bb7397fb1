"""The self-supervised DSA data term: re-projection onto another frame reproduces that frame from the clean
image, and, unlike the same-grid loss, it constrains the detail inside the s x s blocks of the estimate."""
import numpy as np
import torch
import torch.nn.functional as F

from selfrestore.burst.geometry import compose_affine, identity_affine, invert_affine, rigid_affine
from selfrestore.burst.reprojection import rebase_affines, reproject, reprojection_error
from selfrestore.burst.synthesis import BurstConfig, synthesize_burst


def _smooth_image(size=96, seed=0):
    base = torch.rand(1, 3, size // 8, size // 8, generator=torch.Generator().manual_seed(seed))
    return F.interpolate(base, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)


def test_reprojecting_the_clean_reference_predicts_every_frame():
    burst = synthesize_burst(_smooth_image(), BurstConfig(frames=4, scale=2, blur_sigma=0.5, noise=None),
                             torch.Generator().manual_seed(0))
    frames, clean, motion = burst["frames"], burst["clean"], burst["motion"]
    for j in range(1, 4):
        low, valid = reproject(clean, motion[:, j], 2, 0.5)
        assert valid.mean() > 0.5
        assert ((low - frames[:, j]).abs() * valid).max() < 1e-4
        same_grid, _ = reproject(clean, motion[:, 0], 2, 0.5)
        assert ((same_grid - frames[:, j]).abs() * valid).max() > 1e-2


def test_rebase_affines_to_another_reference():
    a = torch.stack([identity_affine(), rigid_affine(0.3, -0.2, 0.01, (10, 10)),
                     rigid_affine(-0.4, 0.5, -0.02, (10, 10))])[None]
    rebased = rebase_affines(a, torch.tensor([2]))
    assert torch.allclose(rebased[0, 2], identity_affine(), atol=1e-6)
    # frame_1(B_1 p) ~ frame_2(p): B_1 = A_1 A_2^-1
    assert torch.allclose(rebased[0, 1], compose_affine(a[0, 1], invert_affine(a[0, 2])), atol=1e-6)


def _sub_block_gradient(dx: float, dy: float) -> float:
    """Norm of the loss gradient w.r.t. the estimate, projected on perturbations of zero mean in every 2x2
    block (the null space of plain 2x2 pooling), for a target frame shifted by (dx, dy) low-resolution px."""
    g = torch.Generator().manual_seed(1)
    sr = torch.rand(1, 1, 32, 32, generator=g).requires_grad_(True)
    target = torch.rand(1, 1, 16, 16, generator=g)
    affine = identity_affine(1)
    affine[0, 0, 2], affine[0, 1, 2] = dx, dy
    reprojection_error(sr, target, affine, scale=2, blur_sigma=0.0, border=2).backward()
    grad = sr.grad
    block_mean = F.interpolate(F.avg_pool2d(grad, 2), scale_factor=2, mode="nearest")
    return float((grad - block_mean).norm())


def test_reprojection_loss_sees_sub_block_detail_only_on_another_phase():
    assert _sub_block_gradient(0.0, 0.0) < 1e-6  # same grid: the detail inside each block is unconstrained
    assert _sub_block_gradient(0.5, 0.0) > 1e-2  # half a low-resolution pixel: it is constrained
    assert _sub_block_gradient(0.5, 0.5) > 1e-2


def test_l2_data_term_draws_the_estimate_to_the_targets_mean_and_l1_to_their_median():
    """With skewed noise (exponential, mean 0.3, median 0.3 ln 2) on many target frames, the constant
    estimate that minimises the re-projection error is the targets' median under l1 and their mean under l2."""
    g = torch.Generator().manual_seed(0)
    targets = 0.2 + torch.empty(64, 1, 16, 16).exponential_(1 / 0.3, generator=g)
    affine = identity_affine(64)
    levels = torch.linspace(0.3, 0.6, 301)

    def best(norm):
        errors = [float(reprojection_error(torch.full((64, 1, 32, 32), float(c)), targets, affine, scale=2,
                                           border=2, norm=norm)) for c in levels]
        return float(levels[int(np.argmin(errors))])

    assert abs(best("l1") - (0.2 + 0.3 * np.log(2))) < 0.01
    assert abs(best("l2") - 0.5) < 0.01
