"""Training options as users expect them: every Lightning Trainer argument a plain override (or
a ConfigError naming the key to use instead), callbacks and debug runs by config group, a
summary and a log that say what happened, one config per logger, one line per log record."""

from __future__ import annotations

import inspect
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from dsc.errors import ConfigError
from dsc.lit.train import run_training

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "dsc" / "conf"
GAUSSIAN = ["source=gaussian", "model=gaussian_mlp", "model.hidden=16", "model.estimator_hidden=16",
            "data.train_size=256", "data.val_size=128", "trainer.max_epochs=1", "logger=none", "device=cpu",
            "trainer.enable_progress_bar=false"]


def compose_train(overrides: list[str], hydra: bool = False):
    with initialize_config_module("dsc.conf", version_base="1.3"):
        return compose(config_name="train", overrides=overrides, return_hydra_config=hydra)


def train(tmp_path: Path, *overrides: str, callbacks: list | None = None) -> dict:
    run_training(compose_train(GAUSSIAN + list(overrides) + [f"paths.output_dir={tmp_path}"]), callbacks)
    return json.loads((tmp_path / "train_summary.json").read_text())


class Seen(L.Callback):
    """Records the trainer a run built."""

    def on_fit_start(self, trainer, module):
        self.trainer = trainer


def test_the_trainer_config_lists_every_trainer_argument():
    listed = set(OmegaConf.load(CONF / "trainer" / "default.yaml"))
    assert listed == set(inspect.signature(L.Trainer.__init__).parameters) - {"self"}


def test_trainer_arguments_are_plain_overrides(tmp_path):
    seen = Seen()
    train(tmp_path / "run", "trainer.accelerator=cpu", "device=auto", "trainer.gradient_clip_val=0.5",
          f"trainer.default_root_dir={tmp_path / 'root'}", "trainer.num_sanity_val_steps=0",
          "trainer.max_time=00:01:00:00", callbacks=[seen])
    trainer = seen.trainer
    assert trainer.gradient_clip_val == 0.5 and trainer.num_sanity_val_steps == 0
    assert trainer.default_root_dir == str(tmp_path / "root") and type(trainer.accelerator).__name__ == "CPUAccelerator"
    timers = [c for c in trainer.callbacks if isinstance(c, L.pytorch.callbacks.Timer)]
    assert len(timers) == 1 and timers[0].time_remaining() > 3000  # max_time reached the one Timer
    assert (tmp_path / "run" / "checkpoints" / "best.ckpt").is_file()  # checkpoints stay in the run directory


@pytest.mark.parametrize("overrides, says", [
    (["trainer.logger=false"], "logger group"),
    (["trainer.callbacks=[]"], "callbacks group"),
    (["trainer.enable_checkpointing=false"], "debug=fdr"),
    (["+trainer.no_such_argument=1"], "not an argument of lightning.Trainer"),
    (["trainer.accelerator=tpu"], "device=cpu|cuda"),
    (["trainer.accelerator=gpu", "device=cpu"], "disagree; set device alone"),
    (["trainer.max_time=soon"], "trainer.max_time"),
    (["trainer.plugins=[{_target_:lightning.pytorch.plugins.TorchCheckpointIO}]"], "CheckpointIO"),
    (["+callbacks.bad._target_=collections.OrderedDict"], "not a Lightning callback"),
])
def test_keys_that_cannot_be_used_say_what_to_use(tmp_path, overrides, says):
    with pytest.raises(ConfigError, match=says):
        train(tmp_path, *overrides)
    assert not (tmp_path / "run_config.json").exists()


def test_callbacks_by_config_join_the_ones_dsc_needs(tmp_path):
    """Early stopping with no tolerance stops a 5-epoch run after 2; the learning rate reaches the
    CSV log; the checkpoints, the random state, the replica check and the timer stay."""
    seen = Seen()
    summary = train(tmp_path, "callbacks=[early_stopping,lr_monitor]", "callbacks.early_stopping.patience=0",
                    "callbacks.early_stopping.min_delta=100", "trainer.max_epochs=5", "logger=csv", callbacks=[seen])
    names = {type(c).__name__ for c in seen.trainer.callbacks}
    assert {"EarlyStopping", "LearningRateMonitor", "ModelCheckpoint", "Timer", "ResumableRandomState",
            "ReplicaCheck"} <= names
    assert summary["epochs"] == 2
    assert any(name.startswith("lr-") for name in next(tmp_path.rglob("metrics.csv")).read_text().splitlines()[0]
               .split(","))


def test_a_configured_progress_bar_replaces_dsc_s_own(tmp_path):
    seen = Seen()
    train(tmp_path, "trainer.enable_progress_bar=true", "+callbacks.bar._target_=lightning.pytorch.callbacks."
          "TQDMProgressBar", callbacks=[seen])
    bars = [type(c).__name__ for c in seen.trainer.callbacks if isinstance(c, L.pytorch.callbacks.ProgressBar)]
    assert bars == ["TQDMProgressBar"]


def test_debug_configs_file_runs_apart_and_say_what_they_did(tmp_path, caplog):
    cfg = compose_train(["debug=fdr"], hydra=True)
    assert cfg.hydra.run.dir.startswith("outputs/train_debug/") and cfg.logger is None
    assert cfg.trainer.fast_dev_run is True and cfg.trainer.detect_anomaly is True
    with caplog.at_level(logging.INFO, logger="dsc.lit.train"):
        summary = train(tmp_path / "fdr", "debug=fdr")
    assert summary["best_checkpoint"] is None and not list((tmp_path / "fdr").rglob("*.ckpt"))
    assert caplog.records[-1].getMessage().endswith("no checkpoint written (fast_dev_run writes none)")
    train(tmp_path / "profiled", "debug=profiler")
    assert "run_training_epoch" in (tmp_path / "profiled" / "fit-profile.txt").read_text()


class Batches(L.Callback):
    """Records the message ids of every training and validation batch, per epoch."""

    def __init__(self) -> None:
        self.train: dict[int, list] = {}
        self.val: dict[int, list] = {}

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.train.setdefault(trainer.current_epoch, []).append(batch.index.tolist())

    def on_validation_batch_start(self, trainer, module, batch, batch_idx, dataloader_idx=0):
        if not trainer.sanity_checking:
            self.val.setdefault(trainer.current_epoch, []).append(batch.index.tolist())


def test_overfitting_the_gaussian_codec_trains_on_the_same_batches_every_epoch(tmp_path):
    """debug=overfit on the Gaussian source, whose training draws are otherwise fresh every epoch:
    each epoch trains on the first 3 batches of the first epoch's message ids, in order, and
    validates on the first 3 of the validation ids."""
    from dsc.sources.datamodules import GaussianDataModule
    from dsc.sources.gaussian import TRAIN_IDS, VAL_IDS

    seen = Batches()
    summary = train(tmp_path, "debug=overfit", "trainer.max_epochs=2", "data.batch_size=32", callbacks=[seen])
    assert summary["epochs"] == 2 and sorted(seen.train) == sorted(seen.val) == [0, 1]
    ids = lambda batches: [i for batch in batches for i in batch]  # noqa: E731
    for epoch in (0, 1):
        assert [len(batch) for batch in seen.train[epoch]] == [32, 32, 32]
        assert ids(seen.train[epoch]) == list(range(TRAIN_IDS, TRAIN_IDS + 96))
        assert ids(seen.val[epoch]) == list(range(VAL_IDS, VAL_IDS + 96))
    sampler = GaussianDataModule(train_size=8, batch_size=4).train_dataloader().sampler  # no trainer: fresh draws
    first = list(sampler)
    sampler.set_epoch(1)
    assert first == list(range(TRAIN_IDS, TRAIN_IDS + 8))
    assert list(sampler) == list(range(TRAIN_IDS + 8, TRAIN_IDS + 16))


def test_a_run_without_validation_names_its_last_checkpoint(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="dsc.lit.train"):
        summary = train(tmp_path, "trainer.limit_val_batches=0")
    assert summary["best_checkpoint"] is None
    assert caplog.records[-1].getMessage().endswith(
        f"no best checkpoint (val/loss was never computed: no validation ran); last checkpoint: "
        f"{tmp_path / 'checkpoints' / 'last.ckpt'}")


def test_seconds_per_epoch_after_a_resume_count_this_run_only(tmp_path):
    """The checkpoint says 1000 s went before (Lightning's Timer restores that, for max_time);
    the resumed run's one epoch must not be charged for them."""
    train(tmp_path / "first")
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, weights_only=True)
    checkpoint["callbacks"]["Timer"]["time_elapsed"]["train"] = 1000.0
    torch.save(checkpoint, last)
    start = time.monotonic()
    summary = train(tmp_path / "resumed", "trainer.max_epochs=2", f"ckpt_path={last}")
    wall = time.monotonic() - start
    assert summary["epochs"] == 1 and 0 < summary["train_s"] == summary["seconds_per_epoch"] < wall


def test_a_logger_gets_the_config_once(tmp_path):
    """hparams.yaml holds the resolved config, nested, and nothing beside it (Lightning's own
    hparams logging would add each module's arguments flat: `beta` beside `model.beta`)."""
    train(tmp_path, "logger=csv")
    hparams = yaml.safe_load(next(tmp_path.rglob("hparams.yaml")).read_text())
    config = json.loads((tmp_path / "run_config.json").read_text())["config"]
    assert hparams == config and "beta" not in hparams and hparams["model"]["beta"] == 0.05


def event_tags(path: Path) -> set[str]:
    """The summary tags in a TensorBoard event file (TFRecord frames: u64 length, u32 CRC, the
    Event proto, u32 CRC)."""
    import struct

    from tensorboardX.proto.event_pb2 import Event

    data, tags, at = path.read_bytes(), set(), 0
    while at < len(data):
        (length,) = struct.unpack_from("<Q", data, at)
        event = Event.FromString(data[at + 12:at + 12 + length])
        tags |= {value.tag for value in event.summary.value}
        at += 12 + length + 4
    return tags


def test_the_tensorboard_logger_writes_events_and_the_config(tmp_path):
    train(tmp_path, "logger=tensorboard")
    events = list((tmp_path / "tensorboard").rglob("events.out.tfevents.*"))
    assert len(events) == 1
    tags = event_tags(events[0])
    assert "val/loss" in tags and any(tag.startswith("train/loss") for tag in tags)
    hparams = yaml.safe_load(next((tmp_path / "tensorboard").rglob("hparams.yaml")).read_text())
    assert hparams["model"]["beta"] == 0.05 and "beta" not in hparams


def test_a_missing_tensorboard_names_the_extra(tmp_path, monkeypatch):
    import importlib.util

    from dsc.errors import MissingDependencyError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import tensorboardX now fails
    with pytest.raises(MissingDependencyError, match=r'dsc\[tensorboard\]'):
        train(tmp_path, "logger=tensorboard")


def test_a_run_s_log_has_one_line_per_record_and_whole_progress_lines(tmp_path):
    """Under Hydra's logging every Lightning record is printed once (not also by Lightning's own
    console handler) and filed once; progress bars come as lines; the last line names the best
    checkpoint."""
    run = subprocess.run([sys.executable, "train.py", *GAUSSIAN, "trainer.enable_progress_bar=true",
                          f"hydra.run.dir={tmp_path}"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    printed = run.stdout + run.stderr
    assert run.returncode == 0, printed[-3000:]
    filed = (tmp_path / "train.log").read_text()
    assert printed.count("Seed set to 0") == 1 and filed.count("Seed set to 0") == 1
    assert filed.count("`Trainer.fit` stopped") == 1
    assert "\r" not in printed and "Epoch 0: 100%" in printed
    assert filed.rstrip().endswith(f"best checkpoint: {tmp_path / 'checkpoints' / 'best.ckpt'}")
