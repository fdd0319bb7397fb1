"""Optical flow, warping and occlusion masks on synthetic sequences with known motion."""
import numpy as np
import pytest
import torch

pytest.importorskip("cv2")

from selfrestore.data.synthetic_motion import make_motion_sequence  # noqa: E402
from selfrestore.errors import UserError  # noqa: E402
from selfrestore.flow import (FlowEstimator, consistency_mask, flow_to_tensor, inside_mask,  # noqa: E402
                              occlusion_mask, warp)


def still_image() -> np.ndarray:
    from skimage import data, transform

    return transform.resize(data.astronaut(), (256, 256), anti_aliasing=True).astype(np.float32)


def to_tensor(frame: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(frame).permute(2, 0, 1).unsqueeze(0)


def test_warp_integer_shift_is_exact():
    image = torch.rand(1, 3, 20, 24)
    flow = torch.zeros(1, 2, 20, 24)
    flow[:, 0], flow[:, 1] = 3.0, -2.0  # target(p) = source(p + (3, -2))
    out = warp(image, flow)
    assert torch.allclose(out[..., 2:, :-3], image[..., :-2, 3:], atol=1e-5)
    valid = inside_mask(flow)
    assert valid[..., 2:, :-3].min() == 1 and valid[..., :, -3:].max() == 0 and valid[..., :2, :].max() == 0


def test_warp_of_known_smooth_motion_reconstructs_the_frame():
    seq = make_motion_sequence(still_image(), frames=3, size=(96, 96), speed=2.3, rotation=0.01, seed=1)
    prev, cur = to_tensor(seq.frames[1]), to_tensor(seq.frames[2])
    flow = flow_to_tensor(seq.flows[2])
    warped = warp(prev, flow)
    valid = inside_mask(flow).bool().expand_as(cur)
    err_warped = (warped - cur).abs()[valid].mean()
    err_unwarped = (prev - cur).abs()[valid].mean()
    assert err_warped < 0.015, err_warped
    assert err_warped < err_unwarped / 4


def test_warp_is_differentiable_in_image_and_flow():
    image = torch.rand(1, 1, 8, 8, requires_grad=True)
    flow = (0.3 * torch.ones(1, 2, 8, 8)).requires_grad_()
    warp(image, flow).sum().backward()
    assert image.grad.abs().sum() > 0 and flow.grad.abs().sum() > 0


@pytest.mark.parametrize("sigma", [25, 50])
def test_dis_flow_is_accurate_on_noisy_frames(sigma):
    seq = make_motion_sequence(still_image(), frames=2, size=(128, 128), speed=2.7, seed=3)
    rng = np.random.default_rng(0)
    noisy = seq.frames + rng.normal(0, sigma / 255, seq.frames.shape).astype(np.float32)
    flow = FlowEstimator("dis")(noisy[1], noisy[0])
    epe = np.linalg.norm(flow - seq.flows[1], axis=-1)[8:-8, 8:-8].mean()
    zero_epe = np.linalg.norm(seq.flows[1], axis=-1).mean()
    assert epe < 0.4, epe
    assert zero_epe > 2.0


def test_occlusion_mask_flags_disoccluded_borders():
    seq = make_motion_sequence(still_image(), frames=2, size=(128, 128), speed=4.0, seed=5)
    estimate = FlowEstimator("dis")
    flow_bw = flow_to_tensor(estimate(seq.frames[1], seq.frames[0]))  # frame 1 -> frame 0
    flow_fw = flow_to_tensor(estimate(seq.frames[0], seq.frames[1]))  # frame 0 -> frame 1
    mask = occlusion_mask(flow_bw, flow_fw, to_tensor(seq.frames[1]), to_tensor(seq.frames[0]))[0, 0]
    truly_outside = inside_mask(flow_to_tensor(seq.flows[1]))[0, 0] == 0
    assert truly_outside.sum() > 200  # the motion does uncover a border band
    assert mask[truly_outside].mean() < 0.1  # nearly all disoccluded pixels are flagged
    assert mask[~truly_outside].mean() > 0.9  # and nearly all visible ones are kept


def test_consistency_mask_flags_inconsistent_flows():
    flow_bw = torch.zeros(1, 2, 16, 16)
    flow_fw = torch.zeros(1, 2, 16, 16)
    flow_fw[..., 4:8, 4:8] = 5.0  # the forward flow disagrees in one block
    mask = consistency_mask(flow_bw, flow_fw)
    assert mask[..., 4:8, 4:8].max() == 0 and mask.sum() == 16 * 16 - 16


def test_unknown_flow_method_is_a_user_error():
    with pytest.raises(UserError):
        FlowEstimator("raft")


def test_residual_mask_drops_outliers_even_when_residual_noise_is_high():
    from selfrestore.flow import residual_mask

    torch.manual_seed(0)
    target = torch.rand(1, 3, 64, 64)
    warped = target + 0.1 * torch.randn_like(target)  # mismatched pre-denoiser: residual noise everywhere
    warped[..., 20:36, 20:36] = 1.0 - target[..., 20:36, 20:36]  # an occluder: a real misalignment
    mask = residual_mask(target, warped, threshold=0.05)[0, 0]
    assert mask[22:34, 22:34].max() == 0  # the outlier block is dropped
    assert mask[40:, :].mean() > 0.95  # the noisy but aligned pixels are kept
    assert residual_mask(target, warped, threshold=0.05, relative=None)[0, 0][40:, :].mean() < 0.05


def test_occlusion_mask_passes_the_relative_residual_bound_through():
    flow = torch.zeros(1, 2, 48, 48)
    target = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    source = target + 0.1 * torch.randn(1, 3, 48, 48, generator=torch.Generator().manual_seed(1))
    relative = occlusion_mask(flow, flow, target, source, 0.05)
    absolute = occlusion_mask(flow, flow, target, source, 0.05, residual_relative=None)
    assert relative.mean() > 0.9 and absolute.mean() < 0.1
