"""Sources, side information and reconstructions as files: arrays (``.npy``) and grayscale
images (PNG or JPEG: one file, or a folder of them), for the sources' file hooks
(:class:`dsc.registry.Source`) and the command line's ``--input``, ``--side-info`` and ``--out``.

A reader names the file it refuses and says why, and refuses more rows than one stream holds
(:data:`dsc.bitstream.MAX_MESSAGES`) before it reads them. The decoding (image files, pixels,
arrays, a folder's images) is :mod:`dsc.sources.image_files`'s, the training data's; what this
module adds is the exact size a model needs (another size is refused, never resized), PNG and
JPEG only, the row limit, and InvalidArgumentError for every refusal. Writers are atomic
(:mod:`dsc.io`): a folder of PNGs is written beside its target and renamed into place whole.
"""

from __future__ import annotations

import io
import os
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping

import numpy as np
import torch
from torch import Tensor

from dsc.bitstream import MAX_MESSAGES
from dsc.errors import InvalidArgumentError, ShapeMismatchError
from dsc.io import atomic_write_bytes
from dsc.sources.image_files import ImageFileError, decode_image, image_paths, load_array, unit_floats

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
IMAGE_FORMATS = ("PNG", "JPEG")  # what Pillow may read them as
IMAGE_MODES = ("1", "L", "LA", "P", "RGB", "RGBA")  # 8-bit images; colour is read as grayscale


@contextmanager
def _invalid_argument() -> Iterator[None]:
    """The shared decoders' :class:`ImageFileError` as the InvalidArgumentError of these readers,
    with the same message."""
    try:
        yield
    except ImageFileError as error:
        raise InvalidArgumentError(str(error)) from None


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
    with _invalid_argument():
        array = load_array(path, mmap_mode="r")
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
    grayscale), a folder of them (message i is the i-th image file by name; other files, hidden
    ones and sub-folders are ignored) or a ``.npy`` array ``[n, H, W]`` (or ``[H, W]``: n = 1) of
    uint8 0..255 or floats in [0, 1]. Any other size is a ShapeMismatchError."""
    if path.is_dir():
        files = image_paths(path, IMAGE_SUFFIXES, recursive=False)
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
    with _invalid_argument():
        return unit_floats(np.array(array).reshape(-1, height, width), str(path))


def _read_image(path: Path, height: int, width: int, what: str) -> Tensor:
    """One PNG or JPEG of exactly ``width`` x ``height`` pixels -> ``[height, width]``."""

    def check(image) -> None:  # from the header, before the pixels are decoded
        if image.size != (width, height):
            raise ShapeMismatchError(f"{path} is {image.size[0]}x{image.size[1]} pixels; {what} are "
                                     f"{width}x{height} (width x height)")
        if image.mode not in IMAGE_MODES:
            raise InvalidArgumentError(f"{path} is a {image.mode} image; 8-bit grayscale or colour images are read")

    with _invalid_argument():
        return decode_image(path, 1, IMAGE_FORMATS, check)[0]


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
