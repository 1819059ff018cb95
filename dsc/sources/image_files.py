"""Images from files: a folder of PNG/JPEG images (flat, or torchvision's ImageFolder layout of
one sub-folder per class), a single image, or a ``.npy`` / ``.npz`` array of images.

Every reader returns images ``[n, C, H, W]`` float32 in [0, 1] with C = ``channels`` (1: grey,
3: RGB), brought to ``size`` (H, W) by ``fit`` (``resize`` or ``center_crop``, the crop after a
resize of the shorter side); with ``size`` None every image must already have one size. Arrays
may be ``[n, H, W]`` (grey), ``[n, H, W, C]`` or ``[n, C, H, W]``, uint8 0..255 or float in [0, 1].

The decoding itself (listing a folder's images, opening an image file, pixels to [0, 1], loading
an array file) is also what the command line's exact-size reader :func:`dsc.catalog.files.read_images`
uses: :func:`image_paths`, :func:`decode_image`, :func:`unit_floats` and :func:`load_array`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from dsc.errors import ConfigError, DscError

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
ARRAY_SUFFIXES = (".npy", ".npz")
FITS = ("resize", "center_crop")


class ImageFileError(DscError):
    """Image files that cannot be read as the configured images; the message names the file."""


def image_paths(root: Path, suffixes: Sequence[str] = IMAGE_SUFFIXES, recursive: bool = True) -> list[Path]:
    """The image files (by ``suffixes``, any case) in the folder ``root``, with ``recursive`` also
    in its sub-folders: sorted, hidden files and folders skipped."""
    found = root.rglob("*") if recursive else root.iterdir()
    return sorted(p for p in found if p.suffix.lower() in suffixes and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


def _check_channels(channels: int) -> int:
    if channels not in (1, 3):
        raise ConfigError(f"channels must be 1 (grey) or 3 (RGB), got {channels!r}")
    return channels


def _check_size(size: Sequence[int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, int):
        size = (size, size)
    size = tuple(size)
    if len(size) != 2 or any(not isinstance(s, int) or s < 1 for s in size):
        raise ConfigError(f"image_size must be [H, W] (or one int for a square), got {size!r}")
    return size


def fit_images(images: Tensor, size: tuple[int, int] | None, fit: str) -> Tensor:
    """``images`` ``[n, C, h, w]`` brought to ``size`` (H, W) by ``fit``."""
    if fit not in FITS:
        raise ConfigError(f"fit must be one of {', '.join(FITS)}, got {fit!r}")
    if size is None or tuple(images.shape[-2:]) == size:
        return images
    if fit == "center_crop":
        h, w = images.shape[-2:]
        ratio = max(size[0] / h, size[1] / w)
        if ratio != 1:
            images = F.interpolate(images, size=(max(size[0], round(h * ratio)), max(size[1], round(w * ratio))),
                                   mode="bilinear", antialias=True, align_corners=False)
        h, w = images.shape[-2:]
        top, left = (h - size[0]) // 2, (w - size[1]) // 2
        return images[..., top:top + size[0], left:left + size[1]].contiguous()
    return F.interpolate(images, size=size, mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)


def unit_floats(pixels: np.ndarray, what: str) -> Tensor:
    """Pixels of uint8 0..255 (a byte k is k / 255) or floats in [0, 1] -> float32 in [0, 1], the
    same shape; ``what`` (the file) names them in the error."""
    if pixels.dtype == np.uint8:
        return torch.from_numpy(pixels.astype(np.float32) / 255)
    if not np.issubdtype(pixels.dtype, np.floating):
        raise ImageFileError(f"{what} holds {pixels.dtype} pixels; images are uint8 (0..255) or floats in [0, 1], "
                             f"not dtype {pixels.dtype}")
    tensor = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32))
    if tensor.numel() and (not torch.isfinite(tensor).all() or tensor.min() < 0 or tensor.max() > 1):
        raise ImageFileError(f"{what} holds float pixels outside [0, 1]; images are uint8 (0..255) or floats in "
                             "[0, 1]")
    return tensor


def decode_image(path: Path, channels: int = 1, formats: Sequence[str] | None = None,
                 inspect: Callable[[Any], None] | None = None) -> Tensor:
    """The image file ``path`` -> ``[C, H, W]`` float32 in [0, 1], converted to grey (``channels``
    1) or RGB (3). ``formats``: the Pillow formats read (None: any). ``inspect(image)`` sees the
    opened image before its pixels are decoded (size and mode come from the header) and may
    refuse it with a DscError, which is raised as it is."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path, formats=formats) as image:
            if inspect is not None:
                inspect(image)
            pixels = np.asarray(image.convert("L" if channels == 1 else "RGB"))
    except DscError:
        raise
    except (UnidentifiedImageError, OSError, ValueError) as error:
        kind = f"{' or '.join(formats)} image" if formats else "image"
        raise ImageFileError(f"{path}: not a readable {kind} ({error})") from None
    tensor = unit_floats(pixels, str(path))
    return tensor[None] if channels == 1 else tensor.permute(2, 0, 1)


def read_image_files(paths: Sequence[Path], channels: int, size, fit: str, what: str) -> Tensor:
    """Images of ``paths`` -> ``[n, C, H, W]`` (see the module docstring)."""
    channels, size = _check_channels(channels), _check_size(size)
    if not paths:
        raise ImageFileError(f"{what}: no images ({', '.join(IMAGE_SUFFIXES)})")
    images = [fit_images(decode_image(p, channels)[None], size, fit)[0] for p in paths]
    sizes = {tuple(i.shape[-2:]) for i in images}
    if len(sizes) > 1:
        first = {tuple(i.shape[-2:]): p for i, p in zip(images, paths)}
        examples = ", ".join(f"{p.name} {s[0]}x{s[1]}" for s, p in list(first.items())[:3])
        raise ImageFileError(f"{what}: images of {len(sizes)} sizes ({examples}); set image_size=[H, W] to resize "
                             "them (and fit=center_crop to crop instead)")
    return torch.stack(images)


def array_images(array: np.ndarray, channels: int, size, fit: str, what: str) -> Tensor:
    """An array of images (see the module docstring) -> ``[n, C, H, W]`` in [0, 1]."""
    channels, size = _check_channels(channels), _check_size(size)
    tensor = unit_floats(array, what)
    if tensor.dim() == 3:
        tensor = tensor[:, None]
    elif tensor.dim() == 4 and tensor.shape[-1] in (1, 3) and tensor.shape[1] not in (1, 3):
        tensor = tensor.permute(0, 3, 1, 2)
    if tensor.dim() != 4 or tensor.shape[1] not in (1, 3) or tensor.shape[0] == 0:
        raise ImageFileError(f"{what}: expected images [n, H, W], [n, H, W, C] or [n, C, H, W] with C = 1 or 3 "
                             f"and n >= 1, got shape {tuple(array.shape)}")
    if tensor.shape[1] != channels:
        tensor = tensor.expand(-1, 3, -1, -1) if channels == 3 else \
            (tensor * torch.tensor([0.299, 0.587, 0.114])[:, None, None]).sum(1, keepdim=True)
    return fit_images(tensor.contiguous(), size, fit)


def load_array(path: Path, mmap_mode: str | None = None) -> np.ndarray:
    """The array of a ``.npy`` file (``mmap_mode="r"``: memory-mapped, so that its shape can be
    checked before its data is read), or of the single (or ``images``) array of a ``.npz``;
    pickled objects are refused."""
    try:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                names = list(archive.files)
                name = "images" if "images" in names else (names[0] if len(names) == 1 else None)
                if name is None:
                    raise ImageFileError(f"{path}: an .npz with several arrays must name one 'images' ({names})")
                return archive[name]
        return np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
    except ImageFileError:
        raise
    except (OSError, ValueError, EOFError) as error:
        raise ImageFileError(f"{path}: not a readable {path.suffix.lower() or 'numpy'} array ({error})") from None


def read_images(path: str | Path, channels: int = 1, size=None, fit: str = "resize") -> Tensor:
    """Images of ``path``: a folder of image files, one image file, or an array file ->
    ``[n, C, H, W]`` float32 in [0, 1]."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ImageFileError(f"{path}: no such file or folder")
    if path.is_dir():
        return read_image_files(image_paths(path), channels, size, fit, f"folder {path}")
    if path.suffix.lower() in ARRAY_SUFFIXES:
        return array_images(load_array(path), channels, size, fit, str(path))
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return read_image_files([path], channels, size, fit, str(path))
    raise ImageFileError(f"{path}: not an image folder, an image ({', '.join(IMAGE_SUFFIXES)}) or an array "
                         f"({', '.join(ARRAY_SUFFIXES)})")
