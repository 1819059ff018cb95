"""The side-information report reads the runs it names and refuses runs it cannot trust."""

from __future__ import annotations

import csv
import json

import pytest

from dsc.errors import DscError
from studies.mnist_side_info.report import side_info_table, write_report


def fake_run(root, kind, side_info=None, mse=0.05):
    (root / kind / "train").mkdir(parents=True)
    (root / kind / "eval").mkdir(parents=True)
    (root / kind / "train" / "train_summary.json").write_text(json.dumps({"epochs": 2}))
    config = {"source": {"side_info": side_info or kind, "noise_std": 0.5}, "data": {"limit": 16000}}
    (root / kind / "train" / "run_config.json").write_text(json.dumps({"config": config}))
    points = [{"scheme": "gls", "num_decoders": k, "rate_bits": r, "mse": mse / k / r, "mse_se": 0.001,
               "per_decoder_mse": mse, "psnr_db": 15.0, "ssim": 0.5, "match_prob": 0.1 * r, "num_candidates": 128,
               "beta": 0.15, "digits": 1000} for k in (1, 2) for r in (2, 4)]
    (root / kind / "eval" / "metrics.json").write_text(json.dumps({"points": points}))


def test_rows_and_table_hold_every_kind_and_point(tmp_path):
    fake_run(tmp_path / "runs", "crop", mse=0.06)
    fake_run(tmp_path / "runs", "noisy", mse=0.04)
    write_report(tmp_path / "runs", tmp_path / "results")
    rows = list(csv.DictReader((tmp_path / "results" / "results.csv").open()))
    assert len(rows) == 8 and {r["side_info"] for r in rows} == {"crop", "noisy"}
    noisy = next(r for r in rows if r["side_info"] == "noisy" and r["num_decoders"] == "2" and r["rate_bits"] == "4")
    assert float(noisy["mse"]) == pytest.approx(0.04 / 8) and noisy["train_digits"] == "16000"
    table = side_info_table([{**r, "num_decoders": int(r["num_decoders"]), "rate_bits": int(r["rate_bits"]),
                              "mse": float(r["mse"]), "match_prob": float(r["match_prob"]), "beta": float(r["beta"]),
                              "noise_std": float(r["noise_std"]) if r["noise_std"] else None} for r in rows])
    assert "| 2 | noisy (std 0.5), beta 0.15 | 0.0100 (0.20) | 0.0050 (0.40) |" in table
    assert "| 1 | crop, beta 0.15 | 0.0300 (0.20) |" in table
    assert "16000 training digits for 2 epochs" in (tmp_path / "results" / "results.md").read_text()


def test_missing_runs_or_records_are_refused(tmp_path):
    fake_run(tmp_path / "runs", "noisy")
    (tmp_path / "runs" / "noisy" / "train" / "run_config.json").unlink()
    with pytest.raises(DscError, match="run_config.json .*the codec's training config"):
        write_report(tmp_path / "runs", tmp_path / "results")
    with pytest.raises(DscError, match="no <run>/eval folders"):
        write_report(tmp_path / "empty", tmp_path / "results")
    assert not (tmp_path / "results").exists()
