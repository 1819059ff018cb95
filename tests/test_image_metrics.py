"""PSNR and SSIM beside the MSE: closed forms, a direct SSIM formula, torchmetrics as a second opinion."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import dsc
from dsc.eval.image_metrics import (
    MAX_PSNR_DB,
    image_summary,
    mse_per_image,
    psnr_db,
    ssim_per_image,
    unit_pixels,
)


def _halves(n: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Digit-like [n, 1, 28, 14] images in [0, 1] and noisy copies of them (float64)."""
    generator = torch.Generator().manual_seed(seed)
    clean = torch.rand(n, 1, 28, 14, generator=generator, dtype=torch.float64).pow(3)
    noisy = (clean + 0.1 * torch.randn(clean.shape, generator=generator, dtype=torch.float64)).clamp(0, 1)
    return clean, noisy


def test_psnr_is_the_closed_form_of_hand_made_images():
    reference = torch.zeros(3, 1, 4, 4, dtype=torch.float64)
    image = reference.clone()
    image[0] += 0.1  # mse 0.01: 20 dB
    image[1, 0, 0, 0] = 0.5  # mse 0.25 / 16: 10 log10(64) dB
    mse = mse_per_image(image, reference)  # image 2 is exact: capped
    assert mse.tolist() == pytest.approx([0.01, 0.25 / 16, 0.0])
    assert psnr_db(mse).tolist() == pytest.approx([20.0, 10 * math.log10(64), MAX_PSNR_DB])
    assert psnr_db(torch.tensor(0.04), peak=2.0).item() == pytest.approx(20.0)  # peak^2 / mse = 100
    with pytest.raises(dsc.InvalidArgumentError, match="non-negative"):
        psnr_db(torch.tensor([-1.0]))


def test_mean_per_image_psnr_is_at_least_the_psnr_of_the_mean_mse():
    mse = torch.tensor([0.001, 0.01, 0.05, 0.2], dtype=torch.float64)
    mean_psnr = psnr_db(mse).mean().item()
    assert mean_psnr == pytest.approx(np.mean([30.0, 20.0, 10 * math.log10(20), 10 * math.log10(5)]))
    assert mean_psnr >= -10 * math.log10(mse.mean().item())  # Jensen


def test_ssim_is_one_for_identical_images_lower_with_noise_and_symmetric():
    clean, noisy = _halves()
    assert torch.allclose(ssim_per_image(clean, clean), torch.ones(6, dtype=torch.float64))
    forward, backward = ssim_per_image(noisy, clean), ssim_per_image(clean, noisy)
    assert torch.allclose(forward, backward) and bool((forward < 0.99).all())
    noisier = (clean + 0.3 * torch.randn_like(clean)).clamp(0, 1)
    assert bool((ssim_per_image(noisier, clean) < forward).all())


def test_ssim_agrees_with_torchmetrics_on_the_valid_window_positions():
    """torchmetrics pads by reflection and averages the whole map; SSIM as published (and
    pytorch_msssim) averages the window positions inside the image, 18 x 4 on a 28 x 14 half."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    clean, noisy = _halves()
    _, full = structural_similarity_index_measure(noisy, clean, data_range=1.0, reduction="none",
                                                  return_full_image=True)
    inside = full[..., 5:-5, 5:-5]
    assert inside.shape[-2:] == (18, 4)
    assert torch.allclose(ssim_per_image(noisy, clean), inside.flatten(1).mean(1), atol=1e-6)


def test_ssim_matches_the_formula_on_a_single_window():
    """An 11 x 11 image has one window position: SSIM is Wang et al.'s formula with the
    Gaussian-weighted means, variances and covariance, written out here in numpy (float64;
    pytorch_msssim builds its window in float32, hence the tolerance)."""
    rng = np.random.default_rng(1)
    x, y = rng.random((11, 11)), rng.random((11, 11))
    g = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    mx, my = (w * x).sum(), (w * y).sum()
    vx, vy, cxy = (w * x * x).sum() - mx**2, (w * y * y).sum() - my**2, (w * x * y).sum() - mx * my
    c1, c2 = 0.01**2, 0.03**2
    expected = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    got = ssim_per_image(torch.from_numpy(x)[None, None], torch.from_numpy(y)[None, None])
    assert got.shape == (1,) and got.item() == pytest.approx(expected, abs=1e-6)


def test_ssim_takes_leading_dimensions_and_rejects_what_it_cannot_measure():
    clean, noisy = _halves(4)
    per_decoder = ssim_per_image(torch.stack([noisy, clean], 1), clean[:, None])  # [4, 2]
    assert per_decoder.shape == (4, 2) and torch.allclose(per_decoder[:, 1], torch.ones(4, dtype=torch.float64))
    assert torch.allclose(per_decoder[:, 0], ssim_per_image(noisy, clean))
    with pytest.raises(dsc.ShapeMismatchError, match="11-pixel window"):
        ssim_per_image(torch.zeros(1, 1, 28, 8), torch.zeros(1, 1, 28, 8))
    with pytest.raises(dsc.InvalidArgumentError, match="floating-point"):
        ssim_per_image(torch.zeros(1, 1, 28, 14, dtype=torch.uint8), torch.zeros(1, 1, 28, 14, dtype=torch.uint8))
    assert torch.equal(unit_pixels(torch.tensor([-1.0, 0.0, 1.0])), torch.tensor([0.0, 0.5, 1.0]))


def test_image_summary_takes_the_decoder_with_the_lowest_mse():
    mse = torch.tensor([[0.01, 0.001], [0.1, 0.2]])
    ssim = torch.tensor([[0.5, 0.9], [0.7, 0.6]])
    summary = image_summary(mse, ssim)
    assert summary["psnr_db"] == pytest.approx((30 + 10) / 2, abs=1e-5)  # decoder 1, then decoder 0
    assert summary["ssim"] == pytest.approx(0.8)
    assert summary["per_decoder_psnr_db"] == pytest.approx((20 + 30 + 10 + 10 * math.log10(5)) / 4, abs=1e-5)
    assert summary["per_decoder_ssim"] == pytest.approx(0.675)
    assert summary["psnr_db_se"] == pytest.approx(20 / math.sqrt(2) / math.sqrt(2), abs=1e-4)
    single = image_summary(mse[:, 0], ssim[:, 0])
    assert set(single) == {"psnr_db", "psnr_db_se", "ssim", "ssim_se"} and single["ssim"] == pytest.approx(0.6)
    with pytest.raises(dsc.ShapeMismatchError, match="both be"):
        image_summary(mse, ssim[:, 0])
