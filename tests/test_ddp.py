"""Distributed (DDP) training: the trainer=ddp config, per-rank shards of the epoch order, the
replica check (it must catch a rank whose weights differ), and a real 2-process run on the CPU
(gloo) through train.py, where Lightning re-launches rank 1 with the Hydra run directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.types import RunMode
from lightning.pytorch.strategies import DDPStrategy
from omegaconf import OmegaConf
from torch.utils.data import DataLoader

import dsc
from dsc.lit import train as lit_train
from dsc.lit.image_module import ImageCodecModule
from dsc.lit.replicas import (
    ReplicaCheck,
    ReplicaMismatchError,
    differing_ranks,
    digest_tensor,
    parameter_digest,
)
from dsc.sources.epochs import EpochShuffle

ROOT = Path(__file__).resolve().parent.parent
TINY = ["model.channels=8", "model.hidden=32", "model.features=16", "model.estimator_hidden=32",
        "data.limit=96", "data.batch_size=32", "trainer.max_epochs=1", "logger=none", "device=cpu",
        "trainer.enable_progress_bar=false"]


def compose_train(overrides):
    with initialize_config_module("dsc.conf", version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def test_ddp_trainer_config_extends_the_default_one():
    default = compose_train([]).trainer
    ddp = compose_train(["trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2"]).trainer
    assert default.devices == 1 and default.strategy is None and default.num_nodes is None
    assert ddp.strategy == "ddp" and ddp.devices == 4 and ddp.num_nodes == 2
    rest = [{k: v for k, v in OmegaConf.to_container(c).items() if k not in ("devices", "strategy", "num_nodes")}
            for c in (default, ddp)]  # unresolved: ${paths.output_dir} needs a Hydra run
    assert rest[0] == rest[1]
    assert compose_train(["trainer=ddp"]).trainer.devices == "auto"


def test_lightning_shards_the_epoch_order_per_rank():
    """Lightning wraps EpochShuffle per rank: disjoint shards of one shared permutation (rank r
    takes every world-size-th index of it), a new permutation each epoch."""
    from lightning.pytorch.trainer.connectors.data_connector import _get_distributed_sampler
    from lightning.pytorch.utilities.data import _is_dataloader_shuffled

    loader = DataLoader(range(10), sampler=EpochShuffle(10, seed=3), batch_size=2)

    def shards(epoch):
        out = []
        for rank in range(2):
            sampler = _get_distributed_sampler(loader, _is_dataloader_shuffled(loader), 0, num_replicas=2, rank=rank)
            sampler.set_epoch(epoch)
            out.append(list(sampler))
        return out

    base = EpochShuffle(10, seed=3)
    for epoch in (0, 1):
        base.set_epoch(epoch)
        order = list(base)
        assert shards(epoch) == [order[0::2], order[1::2]]
    assert shards(0) != shards(1)


def test_parameter_digest_sees_a_one_ulp_change():
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1))
    digest = parameter_digest(module)
    assert digest == parameter_digest(module) and len(digest) == 64
    with torch.no_grad():
        weight = module[1].weight
        weight[0, 1] = torch.nextafter(weight[0, 1], torch.tensor(1.0))
    assert parameter_digest(module) != digest
    assert digest_tensor(digest).numpy().tobytes().hex() == digest


def fake_trainer(all_gather, strategy=None):
    """Rank 0 of a 2-process run whose collectives are ``all_gather``."""
    strategy = strategy or DDPStrategy()
    strategy.all_gather = all_gather
    return SimpleNamespace(world_size=2, is_global_zero=True, callback_metrics={"val/loss": torch.tensor(2.0)},
                           strategy=strategy)


class Tiny(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(3, 2)


def test_replica_check_flags_a_rank_with_other_weights():
    module, other = Tiny(), Tiny()  # other: another rank's (different) weights

    def gather(tensor):  # as rank 0 of 2 would see it: the digests, then the metrics
        if tensor.dtype == torch.int64:
            return torch.stack([tensor, digest_tensor(parameter_digest(other))])
        return torch.stack([tensor, tensor + 2])  # rank 1's val/loss is 4.0

    check = ReplicaCheck()
    check.on_train_end(fake_trainer(gather), module)
    assert check.record["world_size"] == 2 and check.record["replicas_identical"] is False
    assert check.record["parameter_sha256"] == parameter_digest(module)
    assert check.record["metrics"] == {"val/loss": 3.0}  # mean over the ranks
    with pytest.raises(ReplicaMismatchError, match=r"ranks \[1\]") as error:
        check.raise_if_different()
    assert isinstance(error.value, dsc.DscError)

    same = ReplicaCheck()
    same.on_train_end(fake_trainer(lambda t: torch.stack([t, t])), module)
    assert same.record["replicas_identical"] is True
    same.raise_if_different()
    sharded = ReplicaCheck()  # e.g. FSDP: every rank holds another shard, nothing to compare
    sharded.on_train_end(fake_trainer(lambda t: torch.stack([t, t + 1]), SimpleNamespace()), module)
    assert sharded.record["replicas_identical"] is None and sharded.record["metrics"] == {"val/loss": 2.5}
    sharded.raise_if_different()
    assert differing_ranks(torch.tensor([[1, 2], [1, 2], [1, 3], [0, 2]])) == [2, 3]


def test_ddp_inside_a_hydra_multirun_is_refused(monkeypatch):
    trainer = L.Trainer(strategy="ddp", devices=2, accelerator="cpu", logger=False, enable_checkpointing=False)
    hydra = SimpleNamespace(initialized=lambda: True, get=lambda: SimpleNamespace(mode=RunMode.MULTIRUN))
    monkeypatch.setattr(lit_train, "HydraConfig", hydra)
    with pytest.raises(dsc.ConfigError, match="multirun"):
        lit_train._refuse_multirun_launches(trainer)
    monkeypatch.setattr(lit_train, "HydraConfig", SimpleNamespace(initialized=lambda: False))
    lit_train._refuse_multirun_launches(trainer)


def test_two_process_cpu_run_writes_once_and_ends_with_identical_replicas(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "RANK", "WORLD_SIZE")}
    env["OMP_NUM_THREADS"] = "1"  # Lightning picks a free MASTER_PORT itself when none is set
    command = [sys.executable, "train.py", "trainer=ddp", "trainer.devices=2", *TINY, f"hydra.run.dir={tmp_path}"]
    done = subprocess.run(command, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    summary = json.loads((tmp_path / "train_summary.json").read_text())
    assert summary["world_size"] == 2 and summary["replicas_identical"] is True
    assert summary["epochs"] == 1 and "val/loss" in summary["metrics"]
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert last.is_file() and (tmp_path / "checkpoints" / "best.ckpt").is_file()
    # every rank's digest equalled rank 0's, and rank 0's is that of the saved weights
    saved = ImageCodecModule.load_from_checkpoint(last, map_location="cpu", weights_only=True)
    assert summary["parameter_sha256"] == parameter_digest(saved)
    assert json.loads((tmp_path / "run_config.json").read_text())["config"]["trainer"]["strategy"] == "ddp"
    # rank 1 ran in the same directory (its own log file) and wrote no summary line
    rank1_log = (tmp_path / "train_ddp_process_1.log").read_text()
    assert "best checkpoint" not in rank1_log and "best checkpoint" in (tmp_path / "train.log").read_text()


def test_each_rank_draws_its_own_crops_from_the_common_seed():
    """Every rank starts from the same seeded state; after setup the ranks' generators differ,
    each rank's stream is reproducible, and a single process keeps its stream unchanged."""
    from dsc.lit.resume import ResumableRandomState

    def draws(rank: int, world: int) -> torch.Tensor:
        torch.manual_seed(7)
        ResumableRandomState().setup(SimpleNamespace(global_rank=rank, world_size=world), None, "fit")
        return torch.randint(1000, (16,))

    torch.manual_seed(7)
    single = torch.randint(1000, (16,))
    assert torch.equal(draws(0, 1), single)
    rank0, rank1 = draws(0, 2), draws(1, 2)
    assert not torch.equal(rank0, rank1) and not torch.equal(rank0, single)
    assert torch.equal(draws(1, 2), rank1)
