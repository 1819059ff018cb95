"""Image fidelity beside the MSE: PSNR and SSIM of MNIST halves and image codecs' outputs.

Conventions (pixels on the [0, 1] scale, so the peak is 1):

- ``mse``: per-pixel mean squared error of one image.
- ``psnr_db``: the **mean over images of per-image PSNR** ``10 log10(1 / mse_i)`` (as image
  codecs are usually reported), each image capped at :data:`MAX_PSNR_DB` = 60 dB (libvmaf's cap
  for 8-bit data) so that an exact reconstruction does not make the mean infinite. It is not
  the PSNR of the mean MSE, ``10 log10(1 / mse)`` of the ``mse`` column, which by Jensen's
  inequality is at most the mean per-image PSNR (uncapped); the BD-rate tables use the latter,
  since every result, old or new, has its ``mse``.
- ``ssim``: single-scale SSIM (Wang et al. 2004: 11 x 11 Gaussian window with sigma 1.5,
  K1 = 0.01, K2 = 0.03, data range 1) through ``pytorch_msssim``, averaged over the window
  positions inside the image (18 x 4 of them on a 28 x 14 half). Multi-scale SSIM needs more
  than 160 pixels a side, far beyond a 28 x 14 half, so it is not reported.

With K decoders the best of K is the decoder with the lowest MSE for that image (the paper's
oracle): ``psnr_db`` and ``ssim`` are the PSNR and SSIM of that decoder's reconstruction, and
``per_decoder_psnr_db`` / ``per_decoder_ssim`` average over all decoders, as ``per_decoder_mse``.
"""

from __future__ import annotations

import torch
from pytorch_msssim import ssim as _ssim
from torch import Tensor

from dsc.errors import InvalidArgumentError, ShapeMismatchError
from dsc.eval.stats import standard_error

PEAK = 1.0
MAX_PSNR_DB = 60.0
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5


def unit_pixels(images: Tensor) -> Tensor:
    """Pixels in [-1, 1] (the MNIST networks' scale) -> [0, 1]. SSIM's luminance term is not
    shift invariant, so it must see the [0, 1] pixels its constants are meant for."""
    return (images + 1) / 2


def mse_per_image(images: Tensor, references: Tensor) -> Tensor:
    """Per-pixel MSE of ``images`` ``[..., C, H, W]`` against ``references`` (broadcast to the
    same shape) -> ``[...]`` in float64."""
    if images.dim() < 3:
        raise ShapeMismatchError(f"images must be [..., C, H, W], got {tuple(images.shape)}")
    return (images.double() - references.double()).pow(2).flatten(-3).mean(-1)


def psnr_db(mse: Tensor, peak: float = PEAK, max_db: float = MAX_PSNR_DB) -> Tensor:
    """Per-image PSNR ``10 log10(peak^2 / mse)`` in dB of per-image MSEs ``[...]`` -> ``[...]``
    (float64), at most ``max_db`` (an exact image scores ``max_db``)."""
    mse = torch.as_tensor(mse, dtype=torch.float64)
    if bool((mse < 0).any()) or not bool(torch.isfinite(mse).all()):
        raise InvalidArgumentError("a mean squared error must be finite and non-negative")
    if peak <= 0:
        raise InvalidArgumentError(f"peak must be positive, got {peak}")
    return (10 * torch.log10(peak**2 / mse)).clamp(max=max_db)


def ssim_window(height: int, width: int) -> int:
    """The SSIM window for images ``height`` x ``width``: :data:`SSIM_WINDOW`, or for smaller
    images the largest odd size that fits (at least 3)."""
    fits = min(SSIM_WINDOW, height, width)
    if fits < 3:
        raise ShapeMismatchError(f"SSIM needs images of at least 3x3 pixels, got {height}x{width}")
    return fits if fits % 2 else fits - 1


def ssim_per_image(images: Tensor, references: Tensor, data_range: float = PEAK,
                   win_size: int = SSIM_WINDOW) -> Tensor:
    """Single-scale SSIM (module docstring) of ``images`` ``[..., C, H, W]`` against
    ``references`` (broadcast to the same shape), pixels on a scale of ``data_range`` -> ``[...]``
    (float32 or float64, as the inputs). Symmetric; 1 for identical images."""
    images, references = torch.broadcast_tensors(images, references)
    if images.dim() < 3:
        raise ShapeMismatchError(f"images must be [..., C, H, W], got {tuple(images.shape)}")
    if min(images.shape[-2:]) < win_size:
        raise ShapeMismatchError(f"SSIM with a {win_size}-pixel window needs images at least that large, got "
                                 f"{tuple(images.shape[-2:])}; pass a smaller odd win_size")
    if not (images.is_floating_point() and references.is_floating_point()):
        raise InvalidArgumentError("SSIM needs floating-point pixels; scale integer images first (e.g. / 255)")
    dtype = torch.promote_types(images.dtype, references.dtype)
    lead = images.shape[:-3]
    flat = [t.to(dtype).reshape(-1, *t.shape[-3:]) for t in (images, references)]
    if flat[0].shape[0] == 0:
        return flat[0].new_zeros(lead)
    values = _ssim(*flat, data_range=data_range, size_average=False, win_size=win_size, win_sigma=SSIM_SIGMA)
    return values.reshape(lead)


def image_summary(mse: Tensor, ssim: Tensor) -> dict:
    """Summary of per-image MSEs and SSIMs ``[n]`` (one reconstruction each) or ``[n, K]`` (K
    decoders; best of K by MSE): ``psnr_db``, ``psnr_db_se``, ``ssim``, ``ssim_se`` and, for
    ``[n, K]``, ``per_decoder_psnr_db`` and ``per_decoder_ssim`` (conventions: module docstring)."""
    if mse.shape != ssim.shape or mse.dim() not in (1, 2):
        raise ShapeMismatchError(f"mse and ssim must both be [n] or [n, K], got {tuple(mse.shape)} and "
                                 f"{tuple(ssim.shape)}")
    psnr, ssim = psnr_db(mse), ssim.double()
    if mse.dim() == 1:
        best_psnr, best_ssim = psnr, ssim
    else:
        best = mse.argmin(dim=1, keepdim=True)
        best_psnr, best_ssim = psnr.gather(1, best)[:, 0], ssim.gather(1, best)[:, 0]
    summary = {"psnr_db": best_psnr.mean().item(), "psnr_db_se": standard_error(best_psnr),
               "ssim": best_ssim.mean().item(), "ssim_se": standard_error(best_ssim)}
    if mse.dim() == 2:
        summary.update(per_decoder_psnr_db=psnr.mean().item(), per_decoder_ssim=ssim.mean().item())
    return summary
