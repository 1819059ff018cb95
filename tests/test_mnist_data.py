"""MNIST data: the restricted unpickler, the embedded copy against MNIST's published facts,
halves and crops, and the data module. No test touches the network."""

from __future__ import annotations

import collections
import gzip
import io
import os
import pickle

import numpy as np
import pytest
import torch

import dsc
from dsc.sources.datamodules import MnistDataModule
from dsc.sources.images import ImageHalves, SideInfo, crop
from dsc.sources.mnist_data import (
    DataSourceError,
    UnsafePickleError,
    load_embedded,
    load_torchvision,
    restricted_load,
)

# Published MNIST facts: first training labels and per-class counts of train and test.
FIRST_TRAIN_LABELS = [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="module")
def mnist():
    return load_embedded()


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo should-never-run",))


def test_restricted_unpickler_rejects_anything_but_numpy_arrays():
    with pytest.raises(UnsafePickleError, match="posix.system|os.system|only numpy"):
        restricted_load(io.BytesIO(pickle.dumps(_Exploit())))
    with pytest.raises(UnsafePickleError):
        restricted_load(io.BytesIO(pickle.dumps(collections.OrderedDict(a=1))))  # any other class
    arrays = ((np.arange(6, dtype=np.float32).reshape(2, 3), np.array([1, 2])),)
    loaded = restricted_load(io.BytesIO(pickle.dumps(arrays, protocol=2)))
    assert np.array_equal(loaded[0][0], arrays[0][0]) and np.array_equal(loaded[0][1], arrays[0][1])


def test_corrupt_or_malformed_pickles_are_dsc_errors(tmp_path):
    with pytest.raises(dsc.DscError):
        restricted_load(io.BytesIO(b"not a pickle"))
    bad = tmp_path / "two_parts.pkl.gz"
    with gzip.open(bad, "wb") as f:
        pickle.dump((np.zeros(3), np.zeros(3)), f)
    with pytest.raises(DataSourceError, match="three"):
        load_embedded(bad)


def _small_copy(path, n: int = 6) -> bytes:
    """A gzip'd pickle in the embedded copy's format (three (images, labels) pairs), n digits each."""
    rng = np.random.default_rng(0)
    parts = tuple((rng.integers(0, 256, (n, 784)).astype(np.float32) / 256, rng.integers(0, 10, n)) for _ in range(3))
    with gzip.open(path, "wb") as f:
        pickle.dump(parts, f, protocol=2)
    return path.read_bytes()


@pytest.mark.parametrize("content, match", [
    (None, "no MNIST data file"),
    (b"plain text, not gzip", "not a readable gzip"),
    (gzip.compress(b"gzip'd text, not a pickle"), "corrupt or not in the expected format"),
    (gzip.compress(pickle.dumps(("a", "b", "c"))), "does not hold three"),
    (gzip.compress(pickle.dumps(((np.zeros((2, 784)), np.zeros(3)),) * 3)), "4 images but 6 labels"),  # train + valid
    (gzip.compress(pickle.dumps(((np.full((2, 784), 0.3), np.zeros(2)),) * 3)), "bytes / 256"),
])
def test_a_bad_data_file_is_a_data_source_error_naming_it(tmp_path, content, match):
    path = tmp_path / "mnist.pkl.gz"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataSourceError, match=match) as raised:
        load_embedded(path)
    assert str(path) in str(raised.value)


def test_a_directory_in_place_of_the_data_file_is_a_data_source_error(tmp_path):
    with pytest.raises(DataSourceError, match=str(tmp_path)):
        load_embedded(tmp_path)


def test_damaged_data_files_only_ever_raise_dsc_errors(tmp_path):
    """Every truncation and random damage of a small copy in the embedded format gives a DscError
    that names the file (a valid small copy: the digit count check), never a raw gzip, zlib or
    pickle exception."""
    good = _small_copy(tmp_path / "good.pkl.gz")
    rng = np.random.default_rng(1)
    damaged = [good[:cut] for cut in sorted(set(rng.integers(0, len(good), 48).tolist()))]
    for _ in range(48):
        data = bytearray(good)
        for where in rng.integers(0, len(data), int(rng.integers(1, 8))):
            data[where] = int(rng.integers(0, 256))
        damaged.append(bytes(data))
    path = tmp_path / "mnist.pkl.gz"
    for data in damaged:
        path.write_bytes(data)
        with pytest.raises(dsc.DscError) as raised:
            load_embedded(path)
        assert str(path) in str(raised.value)
        assert isinstance(raised.value, (DataSourceError, UnsafePickleError))


def test_embedded_copy_is_the_standard_mnist(mnist):
    assert tuple(mnist.train_images.shape) == (60000, 28, 28) and tuple(mnist.test_images.shape) == (10000, 28, 28)
    assert mnist.train_images.dtype == torch.float32
    assert 0 <= mnist.train_images.min() and mnist.train_images.max() <= 1
    assert mnist.train_labels[:10].tolist() == FIRST_TRAIN_LABELS
    assert torch.bincount(mnist.train_labels).tolist() == TRAIN_COUNTS
    assert torch.bincount(mnist.test_labels).tolist() == TEST_COUNTS
    assert "embedded" in mnist.origin


def _write_idx(path, array: np.ndarray) -> None:
    """MNIST's IDX file format: magic (0, 0, 0x08 = unsigned byte, number of dimensions), the
    dimensions as big-endian int32, then the bytes."""
    header = bytes([0, 0, 8, array.ndim]) + np.asarray(array.shape, dtype=">i4").tobytes()
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def test_both_sources_give_identical_tensors_for_the_same_digit(mnist, tmp_path):
    """The original files' bytes (here the embedded copy's k / 256 values times 256, written as
    IDX files) read through torchvision's own MNIST reader give exactly the embedded loader's
    tensors: pixels k / 255 from both, so an ink pixel of 255 is 1.0, not 0.996."""
    from dsc.sources.mnist_data import embedded_path

    with gzip.open(embedded_path(), "rb") as stream:
        (train_x, train_y), _, (test_x, test_y) = restricted_load(stream)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    n = 64
    for prefix, images, labels in (("train", train_x, train_y), ("t10k", test_x, test_y)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", (images[:n] * 256).round().reshape(n, 28, 28))
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.asarray(labels[:n]))
    other = load_torchvision(tmp_path)
    assert torch.equal(other.train_images, mnist.train_images[:n])
    assert torch.equal(other.test_images, mnist.test_images[:n])
    assert torch.equal(other.train_labels, mnist.train_labels[:n])
    assert mnist.train_images.max() == 1.0 and other.train_images.max() == 1.0


def test_a_missing_torchvision_directory_with_downloads_off_says_what_to_do(tmp_path):
    with pytest.raises(DataSourceError, match="download"):
        load_torchvision(tmp_path / "nothing-here", download=False)


def test_crops_are_blocks_of_the_left_half_at_their_positions(mnist):
    halves = ImageHalves(mnist.test_images[:50], 3, SideInfo("crop", 7), seed=1)
    index = torch.arange(50)
    source, side_info = halves.batch(index)
    top, column = halves.positions(index)
    scaled = mnist.test_images[:50] * 2 - 1
    assert torch.equal(source[:, 0], scaled[:, :, 14:])
    for b in range(0, 50, 7):
        for k in range(3):
            t, c = int(top[b, k]), int(column[b, k])
            assert torch.equal(side_info[b, k, 0], scaled[b, t : t + 7, c : c + 7])
    assert (column + 7 <= 14).all() and (top + 7 <= 28).all()


def test_evaluation_crops_are_fixed_by_seed_and_training_crops_change():
    images = torch.rand(400, 28, 28)
    index = torch.arange(400)
    fixed_a = ImageHalves(images, 4, SideInfo("crop", 7), seed=3).positions(index)
    fixed_b = ImageHalves(images, 4, SideInfo("crop", 7), seed=3).positions(index)
    other = ImageHalves(images, 4, SideInfo("crop", 7), seed=4).positions(index)
    assert all(torch.equal(a, b) for a, b in zip(fixed_a, fixed_b))
    assert not torch.equal(fixed_a[0], other[0])
    train = ImageHalves(images, 4, SideInfo("crop", 7), seed=None)
    assert not torch.equal(train.positions(index)[0], train.positions(index)[0])
    # every top row 0..21 and column 0..7 occurs, and decoders draw independently
    assert set(fixed_a[0].flatten().tolist()) == set(range(22))
    assert set(fixed_a[1].flatten().tolist()) == set(range(8))
    assert (fixed_a[0][:, 0] != fixed_a[0][:, 1]).float().mean() > 0.9


def test_full_left_half_crop_and_bad_crop_sizes():
    images = torch.rand(5, 28, 28)
    halves = ImageHalves(images, 2, SideInfo("crop", 14), seed=0)
    _, side_info = halves.batch(torch.arange(5))
    assert tuple(side_info.shape) == (5, 2, 1, 14, 14)
    for bad in (15, 0):
        with pytest.raises(dsc.DscError, match="crop_size"):
            ImageHalves(images, 2, SideInfo("crop", bad))
    with pytest.raises(dsc.DscError, match="crop_size"):
        MnistDataModule(crop_size=20)


def test_crop_helper_on_a_known_grid():
    left = torch.arange(28 * 14, dtype=torch.float32).reshape(1, 1, 28, 14)
    out = crop(left, torch.tensor([[2]]), torch.tensor([[3]]), 2)
    assert out[0, 0, 0].tolist() == [[2 * 14 + 3, 2 * 14 + 4], [3 * 14 + 3, 3 * 14 + 4]]


def test_data_module_splits_and_batches():
    module = MnistDataModule(num_decoders=2, crop_size=7, batch_size=16, val_size=5000, limit=64)
    module.setup()
    assert len(module.train_set) == 64 and len(module.val_set) == 64 and len(module.test_set) == 64
    item = next(iter(module.train_dataloader()))
    assert tuple(item.source.shape) == (16, 1, 28, 14) and tuple(item.side_info.shape) == (16, 2, 1, 7, 7)
    assert item.source.min() >= -1 and item.source.max() <= 1
    full = MnistDataModule(val_size=5000)
    full.setup()
    assert len(full.train_set) == 55000 and len(full.val_set) == 5000 and len(full.test_set) == 10000
    train_index, val_index = set(full.train_index.tolist()), set(full.val_index.tolist())
    assert not train_index & val_index and len(train_index | val_index) == 60000


def test_damaged_torchvision_files_are_a_data_source_error_naming_them(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(2)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (raw / name).write_bytes(rng.integers(0, 256, 100, dtype=np.uint8).tobytes())
    with pytest.raises(DataSourceError, match="damaged or not in MNIST's IDX format") as raised:
        load_torchvision(tmp_path)
    assert str(raw) in str(raised.value)


def test_torchvisions_legacy_file_is_a_data_source_error_not_torchs_advice(tmp_path):
    """torchvision reads MNIST/processed/training.pt before the raw files, with torch's
    weights-only loader: a file that would run code, a damaged one and one of the wrong layout
    each give a DataSourceError naming that file, never torch's advice to load it unsafely."""
    class Payload:
        def __reduce__(self):
            return (exec, ("raise SystemExit('the payload ran')",))

    processed = tmp_path / "MNIST" / "processed"
    processed.mkdir(parents=True)
    legacy = processed / "training.pt"
    for write in (lambda: torch.save(Payload(), legacy), lambda: legacy.write_bytes(b"PK\x03\x04 damaged"),
                  lambda: torch.save({"a": torch.zeros(3)}, legacy)):
        write()
        (processed / "test.pt").write_bytes(legacy.read_bytes())
        with pytest.raises(DataSourceError, match="legacy MNIST file") as raised:
            load_torchvision(tmp_path)
        assert str(legacy) in str(raised.value) and "weights_only" not in str(raised.value)
