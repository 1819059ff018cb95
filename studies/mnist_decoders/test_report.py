"""The decoders study's report tabulates every decoder, K and rate it finds (the crop-only decoder
at rate 0) and refuses runs it cannot read; its figure draws every decoder's output."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from dsc.errors import DscError
from studies.mnist_decoders.report import decoders_table, write_report


def fake_point(root, decoder, k, rate, mse, match=0.2):
    point = {"scheme": "gls", "decoder": decoder, "num_decoders": k, "rate_bits": rate, "mse": mse, "mse_se": 0.001,
             "psnr_db": 12.0, "ssim": 0.5, "match_prob": match, "num_candidates": 128, "beta": 0.15, "epochs": 2,
             "per_decoder_mse": 2 * mse, "matched_mse": mse / 2, "missed_mse": 3 * mse}
    folder = root / "eval" / decoder / f"K{k}_R{rate}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps({"points": [point]}))


def fake_runs(root):
    for k in (1, 2):
        for rate in (2, 4):
            fake_point(root, "pick", k, rate, 0.1 / k / rate)
            fake_point(root, "trained", k, rate, 0.08 / k / rate)
        fake_point(root, "crop_only", k, 2, 0.07 / k)
    for name in ("trained", "crop_only"):
        (root / "train" / name).mkdir(parents=True)
        (root / "train" / name / "train_summary.json").write_text(json.dumps(
            {"epochs": 1, "batch_size": 64, "train_s": 600.0}))
        config = {"data": {"limit": 16000}, "num_decoders": 4, "trainer": {"limit_train_batches": 1.0},
                  "model": {"rate_bits": [2, 3, 4, 5, 6], "num_candidates": 128, "lr": 0.0001}}
        (root / "train" / name / "run_config.json").write_text(json.dumps({"config": config}))


def test_rows_and_tables_hold_every_decoder_and_point(tmp_path):
    fake_runs(tmp_path / "runs")
    write_report(tmp_path / "runs", tmp_path / "results")
    rows = list(csv.DictReader((tmp_path / "results" / "results.csv").open()))
    assert len(rows) == 10 and list(rows[0]) == ["scheme", "decoder", "num_decoders", "rate_bits", "mse", "mse_se",
                                                  "psnr_db", "ssim", "match_prob", "num_candidates", "beta", "epochs",
                                                  "per_decoder_mse", "matched_mse", "missed_mse"]
    crop = [r for r in rows if r["decoder"] == "crop_only"]
    assert [(r["num_decoders"], r["rate_bits"], r["match_prob"]) for r in crop] == [("1", "0", ""), ("2", "0", "")]
    assert [r["decoder"] for r in rows[:5]] == ["pick", "pick", "trained", "trained", "crop_only"]
    table = decoders_table([{**r, "num_decoders": int(r["num_decoders"]), "rate_bits": int(r["rate_bits"]),
                             "mse": float(r["mse"]), "match_prob": float(r["match_prob"]) if r["match_prob"] else None}
                            for r in rows], 2)
    assert "| decoder | 0 bits | 2 bits | 4 bits |" in table
    assert "| trained |  | 0.0200 (0.20) | 0.0100 (0.20) |" in table and "| crop_only | 0.0350 |  |  |" in table
    text = (tmp_path / "results" / "results.md").read_text()
    assert "## K = 1" in text and "## K = 2" in text and "16000 training digits with 4 crops each" in text
    assert "| trained |  | 0.0400 | 0.0200 |" in text  # K = 2, each decoder on its own
    assert "| trained | 0.0100 / 0.0600 | 0.0050 / 0.0300 |" in text  # K = 2, matched / missed picks
    assert all(r["matched_mse"] == "" for r in crop)


def test_missing_or_doubled_runs_are_refused(tmp_path):
    with pytest.raises(DscError, match="no <decoder>/<point>/metrics.json"):
        write_report(tmp_path / "empty", tmp_path / "results")
    fake_point(tmp_path / "runs", "pick", 1, 2, 0.1)
    (tmp_path / "runs" / "eval" / "again").mkdir()
    (tmp_path / "runs" / "eval" / "again" / "x").mkdir()
    (tmp_path / "runs" / "eval" / "pick" / "K1_R2" / "metrics.json").rename(
        tmp_path / "runs" / "eval" / "again" / "x" / "metrics.json")
    fake_point(tmp_path / "runs", "pick", 1, 2, 0.1)
    with pytest.raises(DscError, match="twice"):
        write_report(tmp_path / "runs", tmp_path / "results")
    (tmp_path / "runs" / "eval" / "pick" / "K1_R2" / "metrics.json").write_text("{")
    with pytest.raises(DscError, match="cannot read"):
        write_report(tmp_path / "runs", tmp_path / "results")
    assert not (tmp_path / "results").exists()


def test_the_figure_draws_every_decoder(tmp_path):
    from dsc.lit.image_module import ImageCodecModule
    from dsc.lit.pick_decoder_module import PickDecoderModule
    from studies.mnist_decoders.figure import write_figure

    torch.manual_seed(0)
    codec = ImageCodecModule(channels=8, hidden=32, features=16, estimator_hidden=32)
    codec_ckpt = tmp_path / "codec.ckpt"
    torch.save({"state_dict": codec.state_dict(), "hyper_parameters": dict(codec.hparams), "epoch": 0}, codec_ckpt)
    for name in ("trained", "crop_only"):
        module = PickDecoderModule(str(codec_ckpt), crop_only=name == "crop_only")
        (tmp_path / "runs" / "train" / name / "checkpoints").mkdir(parents=True)
        torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)},
                   tmp_path / "runs" / "train" / name / "checkpoints" / "best.ckpt")
    path = write_figure(tmp_path / "runs", tmp_path / "figure.png", num_decoders=2, rate_bits=2, count=4, limit=40)
    assert path.stat().st_size > 0
    with pytest.raises(DscError, match="no trained decoder"):
        write_figure(tmp_path / "nothing", tmp_path / "other.png")
