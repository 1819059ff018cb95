"""A source of one's own is first-class for train.py and evaluate.py: once its module is imported
(``imports=[...]``), ``source=NAME`` selects its record's configs (dsc.registry.Source.configs,
stored by dsc.apps.register_source_configs), and a training run checks the data module, its
batches and the model config first, naming what is missing."""

from __future__ import annotations

import json
import re
import sys
import textwrap
from types import SimpleNamespace

import pytest
import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

import dsc
from dsc.apps import _source_overrides, register_source_configs
from dsc.lit.gaussian_module import GaussianCodecModule
from dsc.lit.preflight import check_batch
from dsc.registry import GENERIC_JOB, POINT_KEYS, Source, get_source, unregister
from dsc.sources.gaussian import SourceBatch

# A module of one's own: sources with and without training configs, and data modules and a
# model that break the rules train.py checks.
MODULE = textwrap.dedent('''
    import lightning as L
    import torch
    from torch.utils.data import DataLoader

    from dsc.catalog.gaussian import GAUSSIAN
    from dsc.registry import Source, register

    class DictBatches(L.LightningDataModule):
        def train_dataloader(self):
            return DataLoader([{"a": torch.zeros(2)}] * 4, batch_size=2)

        def val_dataloader(self):
            return self.train_dataloader()

    class NoValidation(L.LightningDataModule):
        def train_dataloader(self):
            return DataLoader([torch.zeros(2)] * 4, batch_size=2)

    class Needy(L.LightningModule):
        def __init__(self, width, depth=1):
            super().__init__()

    DATA = {"_target_": "dsc.sources.datamodules.GaussianDataModule", "dim": 2, "noise_var": "${source.noise_var}",
            "batch_size": 32, "train_size": 64, "val_size": 32, "seed": "${seed}"}
    CODEC = {"_target_": "dsc.lit.gaussian_module.GaussianCodecModule", "dim": 2, "latent_dim": 2, "hidden": 8,
             "estimator_hidden": 8, "noise_var": "${source.noise_var}"}

    def own(name, row, **configs):
        register(Source(name=name, description="a test source", stream_rows={row: "nothing"}, inputs=GAUSSIAN.inputs,
                        distortion=GAUSSIAN.distortion, distortion_name="its own error", options=dict(GAUSSIAN.options),
                        **configs))

    own("tiny", 60, data=DATA, codec=CODEC)
    own("bare", 61)
    own("dicts", 62, data={"_target_": f"{__name__}.DictBatches"}, codec=CODEC)
    own("novalid", 63, data={"_target_": f"{__name__}.NoValidation"}, codec=CODEC)
    own("unset", 64, data=DATA, codec={**CODEC, "dim": "???"})
    own("needy", 65, data=DATA, codec={"_target_": f"{__name__}.Needy"})
''')
OWN = ("tiny", "bare", "dicts", "novalid", "unset", "needy")
QUIET = ["logger=none", "device=cpu", "trainer.max_epochs=1", "trainer.enable_progress_bar=false",
         "trainer.enable_model_summary=false"]


@pytest.fixture
def own_sources(tmp_path, monkeypatch):
    """``own_sources(entry, NAME, *overrides)`` -> the composed config of train/evaluate with
    source=NAME, the module ``own_sources`` in the working directory imported first."""
    (tmp_path / "own_sources.py").write_text(MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))

    def composed(entry: str, name: str, *overrides: str):
        argv = [f"source={name}", "imports=[own_sources]", *overrides]
        register_source_configs(argv)
        with initialize_config_module("dsc.conf", version_base="1.3"):
            return compose(config_name=entry, overrides=[*argv, f"paths.output_dir={tmp_path / 'out'}"])

    try:
        yield composed
    finally:
        sys.modules.pop("own_sources", None)
        for name in OWN:
            unregister(name)


def test_a_record_gives_its_configs_by_group():
    gaussian = get_source("gaussian")
    configs = gaussian.configs()
    assert configs["source"] == {"name": "gaussian", **gaussian.options}
    assert configs["data"] == configs["model"] == {}  # the built-in one is configured by files instead
    job = configs["job"]
    assert job["_target_"] == GENERIC_JOB and job["source"] == "gaussian"
    assert job["options"] == {key: f"${{source.{key}}}" for key in gaussian.options}
    assert all(job[key] == f"${{{key}}}" for key in POINT_KEYS)
    with pytest.raises(dsc.InvalidArgumentError, match="data must be a config mapping with a _target_"):
        Source(name="broken", description="", stream_rows={70: "x"}, inputs=gaussian.inputs,
               distortion=gaussian.distortion, data={"batch_size": 2})


def test_overrides_name_modules_and_sources_also_in_sweeps():
    argv = ["imports=[a,pkg.b]", "source=x,y", "+source=z", "rate_bits=1,2", "source=glob(*)", "-m", "imports=c"]
    assert _source_overrides(argv) == (["a", "pkg.b", "c"], ["x", "y", "z"])


def test_an_unknown_source_lists_the_registered_ones():
    with pytest.raises(dsc.ConfigError, match="unknown source 'nosuch'; registered sources: .*gaussian"):
        register_source_configs(["source=nosuch"])


def test_source_selects_the_records_data_codec_and_job(own_sources, tmp_path):
    train = own_sources("train", "tiny", "source.noise_var=0.25")
    assert train.data._target_ == "dsc.sources.datamodules.GaussianDataModule" and train.data.noise_var == 0.25
    assert train.model._target_.endswith("GaussianCodecModule") and train.model.noise_var == 0.25
    evaluate = own_sources("evaluate", "tiny", "source.s2=0.02", "rate_bits=3", "num_decoders=2", "job.messages=50",
                           "num_candidates=64")
    job = OmegaConf.to_container(evaluate.job, resolve=True)
    assert job["_target_"] == GENERIC_JOB and job["options"]["s2"] == 0.02 and job["rate_bits"] == 3

    from dsc.eval.runner import run_evaluation

    point = run_evaluation(evaluate)["points"][0]
    assert point["source"] == "tiny" and point["messages"] == 50 and point["rate_bits"] == 3
    assert point["options"]["s2"] == 0.02 and point["distortion_measure"] == "its own error"


def test_a_source_of_ones_own_trains_with_its_declared_data_and_codec(own_sources, tmp_path):
    from dsc.lit.train import run_training

    run_training(own_sources("train", "tiny", *QUIET))
    summary = json.loads((tmp_path / "out" / "train_summary.json").read_text())
    assert summary["epochs"] == 1 and summary["data"].startswith("simulated Gaussian source, d = 2")
    module = GaussianCodecModule.load_from_checkpoint(summary["best_checkpoint"])
    assert module.hparams.dim == 2 and module.hparams.hidden == 8


@pytest.mark.parametrize("name, says", [
    ("bare", "source bare declares no training data"),
    ("novalid", "the data module NoValidation has no val_dataloader"),
    ("unset", r"model.dim is required but not set \(\?\?\?\)"),
    ("needy", "model.width is missing: own_sources.Needy requires it"),
    ("dicts", "the first training batch of DictBatches is not a sequence .* it is a dict with keys a"),
])
def test_training_names_what_is_missing(own_sources, tmp_path, name, says):
    from dsc.lit.train import run_training

    with pytest.raises(dsc.ConfigError, match=says):
        run_training(own_sources("train", name, *QUIET))
    assert not (tmp_path / "out" / "checkpoints").exists()


def test_the_batch_contract():
    source, side = torch.zeros(4, 2), torch.zeros(4, 3, 2)
    for batch in ((source, side), [source, side], SourceBatch(source, side, torch.arange(4)), (source, side[:, :, 0])):
        check_batch(batch, "a batch")
    for batch, got in ((source, "a tensor of shape (4, 2)"), ((source,), "a tuple of 1: a tensor of shape (4, 2)"),
                       ((source, side[:3]), "a tuple of 2: a tensor of shape (4, 2); a tensor of shape (3, 3, 2)"),
                       ((source, torch.zeros(4)), "a tuple of 2: a tensor of shape (4, 2); a tensor of shape (4,)"),
                       ({"source": source}, "a dict with keys source")):
        with pytest.raises(dsc.ConfigError, match=f"a batch is not a sequence .*: it is {re.escape(got)}$"):
            check_batch(batch, "a batch")


def test_a_learned_codec_trains_on_any_batch_of_the_contract():
    module = GaussianCodecModule(dim=2, latent_dim=2, hidden=8, estimator_hidden=8)
    source, side = torch.randn(6, 2), torch.randn(6, 2, 2)
    losses = []
    for batch in ((source, side), [source, side, "ignored"], SourceBatch(source, side, torch.arange(6))):
        torch.manual_seed(0)
        losses.append(module.losses(batch)["loss"])
    assert losses[0] == losses[1] == losses[2] and torch.isfinite(losses[0])


def test_the_batch_check_leaves_the_generators_as_they_were():
    """Pulling the first batches draws random numbers (a shuffled loader's order, its workers'
    seeds); the run must not see them, or a resumed run would not continue its stream exactly."""
    import lightning as L
    from torch.utils.data import DataLoader, TensorDataset

    from dsc.lit.preflight import FirstBatchCheck

    class Shuffled(L.LightningDataModule):
        def train_dataloader(self):
            return DataLoader(TensorDataset(torch.zeros(8, 2), torch.zeros(8, 1, 2)), batch_size=4, shuffle=True)

        val_dataloader = train_dataloader

    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    FirstBatchCheck().on_fit_start(SimpleNamespace(datamodule=Shuffled(), limit_val_batches=1.0), None)
    assert torch.equal(torch.rand(3), expected)
