"""The convergence check: the protocol on every snapshot epoch common to the runs, from tiny
codecs trained through the real configs."""

from __future__ import annotations

import pytest
import torch
from hydra import compose, initialize_config_module

import dsc
from dsc.lit.train import run_training
from studies.mnist_paper.convergence import convergence_rows, plot_convergence, snapshot_epochs

TINY = ["model.channels=8", "model.hidden=32", "model.features=16", "model.estimator_hidden=32", "data.limit=96",
        "data.batch_size=32", "logger=none", "device=cpu", "trainer.enable_progress_bar=false"]


def compose_train(overrides):
    with initialize_config_module("dsc.conf", version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def test_convergence_runs_the_protocol_on_every_common_snapshot(tmp_path):
    runs = []
    for beta in (0.15, 0.35):
        run = tmp_path / f"beta_{beta}"
        run_training(compose_train(TINY + [f"paths.output_dir={run}", "trainer.max_epochs=2",
                                           "checkpoint_every_n_epochs=1", f"model.beta={beta}"]))
        runs.append(run)
    (runs[1] / "checkpoints" / "epoch_2.ckpt").unlink()  # epoch 2 is no longer common to both runs
    assert snapshot_epochs(runs) == [1]
    rows = convergence_rows(runs, tmp_path / "work", torch.device("cpu"), num_candidates=[4], num_decoders=[1, 2],
                            rate_bits=[1, 2], selection_limit=20, limit=30, batch_size=10)
    assert [(r["epoch"], r["num_decoders"], r["rate_bits"]) for r in rows] == [
        (1, 1, 1), (1, 1, 2), (1, 2, 1), (1, 2, 2)]
    assert all(r["beta"] in (0.15, 0.35) and r["digits"] == 30 for r in rows)
    assert rows[1]["paper_mse"] == 0.1027 and rows[0]["paper_mse"] is None  # 1 bit is not in Table 13
    assert plot_convergence(rows, tmp_path / "c.png").stat().st_size > 0
    with pytest.raises(dsc.DscError, match="checkpoint_every_n_epochs"):
        snapshot_epochs([tmp_path / "work"])
