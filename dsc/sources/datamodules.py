"""The Lightning data modules that train the codecs: :class:`GaussianDataModule` (learned
Gaussian codecs) and the image sources' :class:`ImageDataModule` (train / validation / test
splits of :class:`dsc.sources.images.ImageHalves`) with its two data sets, :class:`MnistDataModule`
and :class:`ImageFolderDataModule` (a user's image files). Apart from the sources
(:mod:`dsc.sources.gaussian`, :mod:`dsc.sources.images`) so that coding a source never imports
Lightning.

An image module carves a validation split (and, when the data has none, a test split) from the
training images by a seeded permutation; evaluation side information is fixed by ``seed``. It
tells the model the shapes it must be built for (:meth:`ImageDataModule.model_options`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from dsc.coding.validation import check_positive_int
from dsc.config import build
from dsc.errors import ConfigError
from dsc.sources.epochs import EpochIds, EpochShuffle
from dsc.sources.gaussian import TRAIN_IDS, VAL_IDS, GaussianSource, GaussianVectors, SourceBatch
from dsc.sources.image_files import ImageFileError, read_images
from dsc.sources.images import ImageHalves, SideInfo, collate_batch
from dsc.sources.mnist_data import load_mnist


def _pass_through(batch: SourceBatch) -> SourceBatch:
    return batch


class GaussianDataModule(L.LightningDataModule):
    """Training data for learned Gaussian codecs: ``train_size`` fresh draws per epoch and a
    fixed validation set of ``val_size`` draws (message ids far from the evaluations'). Under
    the trainer's ``overfit_batches`` every epoch trains on the first epoch's draws, in order."""

    def __init__(self, dim: int = 1, noise_var: float = 0.5, num_decoders: int = 1, batch_size: int = 256,
                 train_size: int = 100_000, val_size: int = 10_000, seed: int = 0) -> None:
        super().__init__()
        for name, value in (("data.dim", dim), ("data.batch_size", batch_size), ("data.train_size", train_size),
                            ("data.val_size", val_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        self.save_hyperparameters()
        self.dataset = GaussianVectors(GaussianSource(noise_var), num_decoders, dim, seed)

    @property
    def origin(self) -> str:
        hp = self.hparams
        return f"simulated Gaussian source, d = {hp.dim}, side-information noise {hp.noise_var:g}"

    def _fixed(self, first: int, size: int) -> DataLoader:
        """Messages ``first`` .. + ``size`` - 1 in order, the same every epoch (a sequential sampler)."""
        return DataLoader(self.dataset.window(first, size), batch_size=self.hparams.batch_size,
                          collate_fn=_pass_through)

    def train_dataloader(self):
        if self.trainer is not None and self.trainer.overfit_batches:  # the same batches every epoch
            return self._fixed(TRAIN_IDS, self.hparams.train_size)
        return DataLoader(self.dataset, batch_size=self.hparams.batch_size,
                          sampler=EpochIds(self.hparams.train_size, TRAIN_IDS), collate_fn=_pass_through)

    def val_dataloader(self):
        return self._fixed(VAL_IDS, self.hparams.val_size)


class ImageDataModule(L.LightningDataModule):
    """Splits of images ``[n, C, H, W]`` from :meth:`load` (train, test or None, origin) as
    :class:`ImageHalves` with ``num_decoders`` side informations each (``side_info``: crop,
    noisy or lowres). ``val_size`` / ``test_size``: a count, or a fraction of the training
    images below 1; ``limit``: the first N images of each split (quick runs)."""

    def __init__(self, num_decoders: int = 1, side_info: str = "crop", crop_size: int = 7, noise_std: float = 0.5,
                 lowres_factor: int = 4, batch_size: int = 64, val_size: float = 5000, test_size: float = 0.1,
                 seed: int = 0, num_workers: int = 0, limit: int | None = None) -> None:
        super().__init__()
        self.side = SideInfo(side_info, crop_size, noise_std, lowres_factor)
        check_positive_int(num_decoders, "num_decoders (K)")
        check_positive_int(batch_size, "batch_size")
        for name, value in (("val_size", val_size), ("test_size", test_size)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(f"{name} must be a count (>= 1) or a fraction in (0, 1), got {value!r}")
        if limit is not None:
            check_positive_int(limit, "limit")
        self.save_hyperparameters(ignore=["root", "test_root", "download", "source"])
        self.loaded: tuple[Tensor, Tensor | None, str] | None = None

    def load(self) -> tuple[Tensor, Tensor | None, str]:
        """Training images ``[n, C, H, W]`` in [0, 1], test images or None, their origin."""
        raise NotImplementedError

    @property
    def origin(self) -> str:
        return self.loaded[2] if self.loaded else "not loaded"

    @staticmethod
    def _count(size: float, total: int) -> int:
        return int(size) if size >= 1 else max(1, round(size * total))

    def setup(self, stage: str | None = None) -> None:
        if self.loaded is not None:
            return
        self.loaded = train, test, _ = self.load()
        hp = self.hparams
        val_size = self._count(hp.val_size, train.shape[0])
        test_size = 0 if test is not None else self._count(hp.test_size, train.shape[0])
        if val_size + test_size >= train.shape[0]:
            raise ConfigError(f"val_size {val_size}{f' and test_size {test_size}' if test_size else ''} leave no "
                              f"training images (there are {train.shape[0]})")
        order = torch.randperm(train.shape[0], generator=torch.Generator().manual_seed(hp.seed))
        val_index, test_index = order[:val_size], order[val_size:val_size + test_size]
        self.val_index, self.train_index = val_index, order[val_size + test_size:]
        train_index = self.train_index
        test = train[test_index] if test is None else test
        if hp.limit is not None:
            train_index, val_index, test = train_index[: hp.limit], val_index[: hp.limit], test[: hp.limit]
        k = hp.num_decoders
        self.train_set = ImageHalves(train[train_index], k, self.side, seed=None)
        self.val_set = ImageHalves(train[val_index], k, self.side, seed=hp.seed)
        self.test_set = ImageHalves(test, k, self.side, seed=hp.seed)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        self.setup()
        return self.train_set.image_shape

    def model_options(self) -> dict:
        """What the codec's networks are sized from: ``image_shape`` ``[C, H, W]``."""
        return {"image_shape": list(self.image_shape)}

    def _loader(self, dataset: ImageHalves, shuffle: bool) -> DataLoader:
        sampler = EpochShuffle(len(dataset), self.hparams.seed) if shuffle else None
        return DataLoader(dataset, batch_size=self.hparams.batch_size, sampler=sampler,
                          num_workers=self.hparams.num_workers, collate_fn=collate_batch,
                          persistent_workers=self.hparams.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)


class MnistDataModule(ImageDataModule):
    """MNIST digits (``source``: ``embedded``, offline, or ``torchvision`` with ``root``): the
    60,000 training digits (validation carved from them) and the 10,000 test digits."""

    def __init__(self, num_decoders: int = 4, crop_size: int = 7, batch_size: int = 64, val_size: int = 5000,
                 source: str = "embedded", root: str | None = None, download: bool = False, seed: int = 0,
                 num_workers: int = 0, limit: int | None = None, side_info: str = "crop", noise_std: float = 0.5,
                 lowres_factor: int = 4) -> None:
        super().__init__(num_decoders, side_info, crop_size, noise_std, lowres_factor, batch_size, val_size, 0.1,
                         seed, num_workers, limit)
        self.source, self.root, self.download = source, root, download
        self.side.shape((1, 28, 28))  # a crop that does not fit is refused before any data is read

    def load(self) -> tuple[Tensor, Tensor, str]:
        splits = load_mnist(self.source, self.root, self.download)
        return splits.train_images, splits.test_images, splits.origin


class ImageFolderDataModule(ImageDataModule):
    """A user's images at ``root``: a folder of PNG/JPEG images (flat or one sub-folder per
    class; with ``train/`` and ``test/`` sub-folders those are the splits) or an ``.npy`` /
    ``.npz`` array, read as ``channels`` (1 or 3) and brought to ``image_size`` [H, W] by ``fit``
    (:mod:`dsc.sources.image_files`). H and W must be multiples of 4 (the networks halve them
    twice)."""

    def __init__(self, root: str, channels: int = 1, image_size: list[int] | None = None, fit: str = "resize",
                 num_decoders: int = 1, side_info: str = "crop", crop_size: int = 7, noise_std: float = 0.5,
                 lowres_factor: int = 4, batch_size: int = 64, val_size: float = 0.1, test_size: float = 0.1,
                 seed: int = 0, num_workers: int = 0, limit: int | None = None) -> None:
        super().__init__(num_decoders, side_info, crop_size, noise_std, lowres_factor, batch_size, val_size,
                         test_size, seed, num_workers, limit)
        if root is None or str(root) in ("", "???"):
            raise ConfigError("source.root is not set: name a folder of images or an .npy/.npz array "
                              "(python train.py source=image_folder source.root=DIR)")
        self.root, self.channels, self.image_size, self.fit = Path(root).expanduser(), channels, image_size, fit

    def _read(self, path: Path) -> Tensor:
        images = read_images(path, self.channels, self.image_size, self.fit)
        _, _, height, width = images.shape
        if height % 4 or width % 4:
            raise ImageFileError(f"{path}: images are {height}x{width}; the codec needs H and W multiples of 4: "
                                 f"set source.image_size=[{max(4, height // 4 * 4)}, {max(4, width // 4 * 4)}]")
        self.side.shape(tuple(images.shape[1:]))
        return images

    def load(self) -> tuple[Tensor, Tensor | None, str]:
        root = self.root
        if root.is_dir() and (root / "train").is_dir():
            test = self._read(root / "test") if (root / "test").is_dir() else None
            train = self._read(root / "train")
        else:
            train, test = self._read(root), None
        if test is not None and test.shape[1:] != train.shape[1:]:
            raise ImageFileError(f"{root}: train images are {tuple(train.shape[1:])}, test images "
                                 f"{tuple(test.shape[1:])}; set source.image_size=[H, W]")
        origin = f"{root} ({train.shape[0]} train{f', {test.shape[0]} test' if test is not None else ''} images " \
                 f"{'x'.join(map(str, train.shape[1:]))})"
        return train, test, origin


SPLITS = ("val", "test")
DEFAULT_IMAGE_DATA = {"_target_": "dsc.sources.datamodules.MnistDataModule"}
def codec_split(side: SideInfo, image_shape: tuple[int, int, int], split: str, num_decoders: int, seed: int,
                limit: int | None, data: Mapping[str, Any] | None = None) -> tuple[ImageHalves, str]:
    """The ``split`` (val or test) of the image data ``data`` (a data module config with
    ``_target_``; None: MNIST, embedded) as a codec trained on images ``image_shape`` with the
    side information ``side`` sees it: ``num_decoders`` side informations per image, evaluation
    draws fixed by ``seed``, the first ``limit`` images when given. Returns the dataset and a line
    saying where it came from; images of another shape are a ConfigError."""
    if split not in SPLITS:
        raise ConfigError(f"split must be val or test, got {split!r}")
    module = build({**(data or DEFAULT_IMAGE_DATA), "side_info": side.kind, "crop_size": side.crop_size,
                    "noise_std": side.noise_std, "lowres_factor": side.factor, "num_decoders": num_decoders,
                    "seed": seed, "limit": limit}, "data")
    module.setup()
    dataset = module.test_set if split == "test" else module.val_set
    if tuple(dataset.image_shape) != tuple(image_shape):
        raise ConfigError(f"the codec was trained on images {tuple(image_shape)}, the data ({module.origin}) holds "
                          f"{tuple(dataset.image_shape)}")
    return dataset, module.origin
