"""Shared test fixtures; gpu-marked tests are skipped with a visible reason where CUDA is absent."""

from __future__ import annotations

import pytest
import torch


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (gpu marker); none is present here")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


TINY_MNIST = ["model.channels=8", "model.hidden=32", "model.features=16", "model.estimator_hidden=32",
              "data.limit=96", "data.batch_size=32", "trainer.max_epochs=1", "logger=none", "device=cpu",
              "trainer.enable_progress_bar=false"]


@pytest.fixture(scope="session")
def tiny_codec(tmp_path_factory):
    """``tiny_codec(*overrides)`` -> the last.ckpt of a tiny MNIST codec trained for one epoch on
    96 digits through the real configs (cached per overrides for the session)."""
    from pathlib import Path

    from hydra import compose, initialize_config_module

    from dsc.lit.train import run_training

    cache: dict[tuple[str, ...], Path] = {}

    def train(*overrides: str) -> Path:
        if overrides not in cache:
            out = tmp_path_factory.mktemp("tiny_codec")
            with initialize_config_module("dsc.conf", version_base="1.3"):
                cfg = compose(config_name="train", overrides=TINY_MNIST + list(overrides) + [f"paths.output_dir={out}"])
            run_training(cfg)
            cache[overrides] = out / "checkpoints" / "last.ckpt"
        return cache[overrides]

    return train
