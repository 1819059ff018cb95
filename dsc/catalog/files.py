"""Sources, side information and reconstructions as files: arrays (``.npy``) and grayscale
images (PNG or JPEG: one file, or a folder of them), for the sources' file hooks
(:class:`dsc.registry.Source`) and the command line's ``--input``, ``--side-info`` and ``--out``.

A reader names the file it refuses and says why, and refuses more rows than one stream holds
(:data:`dsc.bitstream.MAX_MESSAGES`) before it reads them. Writers are atomic
(:mod:`dsc.io`): a folder of PNGs is written beside its target and renamed into place whole.
"""

from __future__ import annotations

import io
import os
import secrets
import shutil
from pathlib import Path
from typing import Mapping

import numpy as np
import torch
from torch import Tensor

from dsc.bitstream import MAX_MESSAGES
from dsc.errors import DscError, InvalidArgumentError, ShapeMismatchError
from dsc.io import atomic_write_bytes

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
IMAGE_MODES = ("1", "L", "LA", "P", "RGB", "RGBA")  # 8-bit images; colour is read as grayscale


def _too_many(path: Path, rows: int) -> None:
    if rows > MAX_MESSAGES:
        raise InvalidArgumentError(f"{path} holds {rows} rows; a stream holds at most {MAX_MESSAGES} messages "
                                   "(dsc.bitstream.MAX_MESSAGES): split it into several files")


def read_array(path: Path) -> np.ndarray:
    """The array in the ``.npy`` file ``path`` (memory-mapped: its shape is checked before its
    data is read; pickled objects are refused)."""
    if path.suffix.lower() != ".npy":
        raise InvalidArgumentError(f"{path}: an array file is a .npy file (numpy.save)")
    if not path.is_file():
        raise InvalidArgumentError(f"{path}: no such file")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise InvalidArgumentError(f"{path} is not a readable .npy array ({error})") from None
    if not isinstance(array, np.ndarray) or array.ndim == 0 or array.shape[0] == 0:
        got = f"shape {array.shape}" if isinstance(array, np.ndarray) else type(array).__name__
        raise ShapeMismatchError(f"{path} holds no rows ({got}): one row per message is needed")
    _too_many(path, array.shape[0])
    return array


def read_floats(path: Path) -> Tensor:
    """The float array in the ``.npy`` file ``path`` as float64, every value finite."""
    array = read_array(path)
    if not np.issubdtype(array.dtype, np.floating):
        raise InvalidArgumentError(f"{path} holds {array.dtype} values; floats are needed (e.g. float32, float64)")
    values = torch.from_numpy(np.array(array, dtype=np.float64))
    if not bool(torch.isfinite(values).all()):
        raise InvalidArgumentError(f"{path} holds NaN or infinite values")
    return values


def read_images(path: Path, height: int, width: int, what: str) -> Tensor:
    """Grayscale ``what`` of ``height`` x ``width`` pixels -> float32 ``[n, height, width]`` in
    [0, 1] (a byte k is k / 255): from a PNG or JPEG file (n = 1; colour is converted to
    grayscale), a folder of them (message i is the i-th image file by name; other files are
    ignored) or a ``.npy`` array ``[n, H, W]`` (or ``[H, W]``: n = 1) of uint8 0..255 or floats
    in [0, 1]."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not files:
            raise InvalidArgumentError(f"{path}: the folder holds no PNG or JPEG images ({', '.join(IMAGE_SUFFIXES)})")
        _too_many(path, len(files))
        return torch.stack([_read_image(file, height, width, what) for file in files])
    if path.suffix.lower() in IMAGE_SUFFIXES:
        if not path.is_file():
            raise InvalidArgumentError(f"{path}: no such file")
        return _read_image(path, height, width, what)[None]
    if path.suffix.lower() != ".npy":
        raise InvalidArgumentError(f"{path}: {what} come as a .npy array, a PNG or JPEG image or a folder of images")
    array = read_array(path)
    shape = array.shape[-2:] if array.ndim in (2, 3) else None
    if shape != (height, width):
        raise ShapeMismatchError(f"{path} holds an array of shape {array.shape}; {what} are [n, {height}, {width}] "
                                 f"(or [{height}, {width}] for one)")
    return _pixels(np.array(array).reshape(-1, height, width), path)


def _pixels(array: np.ndarray, path: Path) -> Tensor:
    """uint8 0..255 or floats in [0, 1] -> float32 in [0, 1]."""
    if array.dtype == np.uint8:
        return torch.from_numpy(array).float() / 255.0
    if not np.issubdtype(array.dtype, np.floating):
        raise InvalidArgumentError(f"{path} holds {array.dtype} pixels; images are uint8 (0..255) or floats in [0, 1]")
    pixels = torch.from_numpy(array.astype(np.float32))
    if not bool(torch.isfinite(pixels).all()) or float(pixels.min()) < 0 or float(pixels.max()) > 1:
        raise InvalidArgumentError(f"{path} holds float pixels outside [0, 1]; images are uint8 (0..255) or "
                                   "floats in [0, 1]")
    return pixels


def _read_image(path: Path, height: int, width: int, what: str) -> Tensor:
    from PIL import Image, UnidentifiedImageError  # only where images are read

    try:
        with Image.open(path, formats=("PNG", "JPEG")) as image:
            if image.size != (width, height):  # from the header, before the pixels are decoded
                raise ShapeMismatchError(f"{path} is {image.size[0]}x{image.size[1]} pixels; {what} are "
                                         f"{width}x{height} (width x height)")
            if image.mode not in IMAGE_MODES:
                raise InvalidArgumentError(f"{path} is a {image.mode} image; 8-bit grayscale or colour images "
                                           "are read")
            pixels = np.asarray(image.convert("L"), dtype=np.uint8)
    except DscError:
        raise
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise InvalidArgumentError(f"{path} is not a readable PNG or JPEG image ({error})") from None
    return torch.from_numpy(pixels.copy()).float() / 255.0


def save_array(path: Path, values: Tensor) -> None:
    """``values`` as a ``.npy`` file, atomically."""
    buffer = io.BytesIO()
    np.save(buffer, values.detach().cpu().numpy(), allow_pickle=False)
    atomic_write_bytes(path, buffer.getvalue())


def png_bytes(image: Tensor) -> bytes:
    """A grayscale image ``[H, W]`` in [0, 1] -> an 8-bit PNG (byte round(255 x))."""
    from PIL import Image

    pixels = (image.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def save_folder(folder: Path, files: Mapping[str, bytes]) -> None:
    """Write ``files`` (name -> bytes) as the folder ``folder``, atomically as a whole: into a
    new temporary folder beside it, renamed into place; an existing folder is moved aside first
    and removed after the rename."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.parent / f".{folder.name}.{secrets.token_hex(4)}.tmp"
    os.mkdir(staging)  # the permissions the umask gives a new folder
    old = None
    try:
        for name, data in files.items():
            atomic_write_bytes(staging / name, data)
        if folder.exists():
            old = folder.parent / f".{folder.name}.{secrets.token_hex(4)}.old"
            os.replace(folder, old)
        os.replace(staging, folder)
    except BaseException:
        if old is not None and not folder.exists():
            os.replace(old, folder)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
