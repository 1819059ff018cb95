"""The Lightning data modules that train the codecs: :class:`GaussianDataModule` (learned
Gaussian codecs) and :class:`MnistDataModule` (the MNIST codec). Apart from the sources
(:mod:`dsc.sources.gaussian`, :mod:`dsc.sources.mnist`) so that coding a source never imports
Lightning."""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader

from dsc.coding.validation import check_positive_int
from dsc.errors import ConfigError
from dsc.sources.gaussian import TRAIN_IDS, VAL_IDS, EpochIds, GaussianSource, GaussianVectors, SourceBatch
from dsc.sources.mnist import EpochShuffle, MnistHalves, check_crop_size, collate_batch
from dsc.sources.mnist_data import MnistSplits, load_mnist


def _pass_through(batch: SourceBatch) -> SourceBatch:
    return batch


class GaussianDataModule(L.LightningDataModule):
    """Training data for learned Gaussian codecs: ``train_size`` fresh draws per epoch and a
    fixed validation set of ``val_size`` draws (message ids far from the evaluations')."""

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

    def _loader(self, size: int, offset: int, fresh: bool) -> DataLoader:
        return DataLoader(self.dataset, batch_size=self.hparams.batch_size, sampler=EpochIds(size, offset, fresh),
                          collate_fn=_pass_through)

    def train_dataloader(self):
        return self._loader(self.hparams.train_size, TRAIN_IDS, fresh=True)

    def val_dataloader(self):
        return self._loader(self.hparams.val_size, VAL_IDS, fresh=False)


class MnistDataModule(L.LightningDataModule):
    """Train / validation / test loaders of :class:`MnistHalves`; the validation split is
    carved from the 60,000 training digits by a seeded permutation."""

    def __init__(
        self,
        num_decoders: int = 4,
        crop_size: int = 7,
        batch_size: int = 64,
        val_size: int = 5000,
        source: str = "embedded",
        root: str | None = None,
        download: bool = False,
        seed: int = 0,
        num_workers: int = 0,
        limit: int | None = None,
    ) -> None:
        super().__init__()
        check_crop_size(crop_size)
        check_positive_int(batch_size, "batch_size")
        check_positive_int(val_size, "val_size")
        self.save_hyperparameters()
        self.splits: MnistSplits | None = None

    @property
    def origin(self) -> str:
        return self.splits.origin if self.splits else "not loaded"

    def setup(self, stage: str | None = None) -> None:
        if self.splits is not None:
            return
        hp = self.hparams
        self.splits = load_mnist(hp.source, hp.root, hp.download)
        train = self.splits.train_images
        if hp.val_size >= train.shape[0]:
            raise ConfigError(f"val_size {hp.val_size} leaves no training digits (there are {train.shape[0]})")
        order = torch.randperm(train.shape[0], generator=torch.Generator().manual_seed(hp.seed))
        self.val_index, self.train_index = order[: hp.val_size], order[hp.val_size :]
        train_index, val_index = self.train_index, self.val_index
        test = self.splits.test_images
        if hp.limit is not None:  # small runs: the first `limit` digits of each split
            train_index, val_index, test = train_index[: hp.limit], val_index[: hp.limit], test[: hp.limit]
        k, c = hp.num_decoders, hp.crop_size
        self.train_set = MnistHalves(train[train_index], k, c, seed=None)
        self.val_set = MnistHalves(train[val_index], k, c, seed=hp.seed)
        self.test_set = MnistHalves(test, k, c, seed=hp.seed)

    def _loader(self, dataset: MnistHalves, shuffle: bool) -> DataLoader:
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
