"""Evaluation results logged to the configured tracker, with no network: each job's config and
point numbers (CSV logger, TensorBoard, W&B offline), the sweep's RD table and plot at its end,
a missing package named by its extra, and a training run's W&B config given once."""

from __future__ import annotations

import csv
import io
import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_module

from dsc.errors import MissingDependencyError
from dsc.eval.runner import run_evaluation
from dsc.eval.tracking import point_numbers
from dsc.report.sweep import AggregateOnMultirunEnd
from tests.test_evaluate import SMALL, compose_evaluate
from tests.test_train_options import event_tags, train

ROOT = Path(__file__).resolve().parent.parent
JOB = SMALL + ["job.pairs=1"]  # the coupling demo: four points of numbers and no labels


@pytest.fixture
def offline_wandb(tmp_path, monkeypatch):
    """W&B without network, its caches and settings under ``tmp_path``."""
    for name, folder in (("WANDB_CACHE_DIR", "cache"), ("WANDB_CONFIG_DIR", "config"), ("WANDB_DATA_DIR", "data")):
        monkeypatch.setenv(name, str(tmp_path / "wandb-home" / folder))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")


def wandb_records(folder: Path) -> list:
    """The records of the one offline W&B run under ``folder``: its ``run-*.wandb`` file is a
    ``:W&B`` header (7 bytes) and a LevelDB log (32 KiB blocks of chunks: u32 CRC, u16 length,
    u8 type 1 whole, 2 first, 3 middle, 4 last) of ``Record`` protos."""
    from wandb.proto import wandb_internal_pb2

    (path,) = folder.rglob("run-*.wandb")
    data, at, pending, records = path.read_bytes(), 7, b"", []
    while at + 7 <= len(data):
        if 32768 - at % 32768 < 7:  # a block's tail too short for a header is padding
            at += 32768 - at % 32768
            continue
        _, length, kind = struct.unpack_from("<IHB", data, at)
        chunk, at = data[at + 7:at + 7 + length], at + 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


def wandb_config(folder: Path) -> list[tuple[str, object]]:
    """Every (key, value) the run's config was given, in order (a key given twice is listed twice)."""
    updates = []
    for record in wandb_records(folder):
        kind = record.WhichOneof("record_type")
        if kind in ("config", "run"):
            config = record.config if kind == "config" else record.run.config
            updates += [(item.key, json.loads(item.value_json)) for item in config.update if item.key != "_wandb"]
    return updates


def wandb_history(folder: Path) -> list[dict]:
    """The run's logged rows: ``{key: value}``, a nested key joined with ``/``."""
    return [{item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
            for record in wandb_records(folder) if record.WhichOneof("record_type") == "history"]


def _numbers(point: dict) -> dict:
    """The numeric fields of a point as metrics.json holds it, read without dsc's helper."""
    return {k: v for k, v in point.items() if type(v) in (int, float)}


def test_point_numbers_are_the_numbers_of_a_point():
    point = {"scheme": "gls", "num_decoders": 2, "mse": 0.25, "lossless": False, "decoder_mse": [0.3, 0.4],
             "quality": None}
    assert point_numbers(point) == {"num_decoders": 2, "mse": 0.25}


def test_an_evaluation_job_logs_its_config_and_point_numbers_to_the_csv_logger(tmp_path):
    run_evaluation(compose_evaluate(JOB + ["logger=csv", f"paths.output_dir={tmp_path}"]))
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    (folder,) = (tmp_path / "csv").iterdir()
    rows = list(csv.DictReader(io.StringIO((folder / "metrics.csv").read_text())))
    assert len(rows) == len(metrics["points"]) == 4
    for step, (row, point) in enumerate(zip(rows, metrics["points"])):
        assert int(row["step"]) == step
        assert {k: float(v) for k, v in row.items() if v and k != "step"} == pytest.approx(_numbers(point))
    assert yaml.safe_load((folder / "hparams.yaml").read_text()) == metrics["config"]


def test_a_skipped_job_still_logs_and_the_tracker_is_no_part_of_its_configuration(tmp_path):
    """A complete job rerun with another logger is skipped (the logger changes no result) and
    the new tracker still gets its points."""
    first = run_evaluation(compose_evaluate(JOB + ["logger=none", f"paths.output_dir={tmp_path}"]))
    again = run_evaluation(compose_evaluate(JOB + ["logger=tensorboard", f"paths.output_dir={tmp_path}"]))
    assert again["elapsed_s"] == first["elapsed_s"]  # read back, not rerun
    (events,) = (tmp_path / "tensorboard").rglob("events.out.tfevents.*")
    assert set(_numbers(first["points"][0])) <= event_tags(events)


def test_an_evaluation_job_logs_to_wandb_offline(tmp_path, offline_wandb):
    """logger=wandb: a W&B run (and the CSV logger beside it) with the config given once and
    one history row per point."""
    run_evaluation(compose_evaluate(JOB + ["logger=wandb", f"paths.output_dir={tmp_path}"]))
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    config = wandb_config(tmp_path / "wandb")
    assert [key for key, _ in config] == list(metrics["config"]) and dict(config) == metrics["config"]
    history = wandb_history(tmp_path / "wandb")
    assert len(history) == len(metrics["points"])
    for row, point in zip(history, metrics["points"]):
        assert {k: row[k] for k in _numbers(point)} == pytest.approx(_numbers(point))
    assert (next((tmp_path / "csv").iterdir()) / "metrics.csv").is_file()


def _gaussian_sweep(sweep: Path) -> list[dict]:
    """Two jobs of GLS at K = 2, rates 1 and 2, as an evaluation sweep writes them."""
    points = []
    for job, rate in enumerate((1, 2)):
        points.append({"source": "gaussian", "method": "gls", "scheme": "gls", "num_decoders": 2, "rate_bits": rate,
                       "check_bits": 0, "distortion_db": -10.0 * rate, "mse_db": -5.0 * rate, "s2": 0.005,
                       "noise_var": 0.5})
        (sweep / str(job)).mkdir(parents=True)
        (sweep / str(job) / "metrics.json").write_text(json.dumps({"points": [points[-1]]}))
    return points


def _end_sweep(sweep: Path, logger: str) -> None:
    """The multirun-end callback on the real evaluate config with ``logger`` (the sweep config's
    ``paths.output_dir`` is a ``${hydra:...}`` value that only a job can resolve)."""
    with initialize_config_module("dsc.conf", version_base="1.3"):
        config = compose(config_name="evaluate", overrides=[f"logger={logger}", f"hydra.sweep.dir={sweep}"],
                         return_hydra_config=True)
    AggregateOnMultirunEnd().on_multirun_end(config)


def test_the_sweep_end_gives_the_csv_logger_the_rd_table_and_plot(tmp_path):
    points = _gaussian_sweep(tmp_path)
    _end_sweep(tmp_path, "csv")
    (folder,) = (tmp_path / "csv").iterdir()
    rows = list(csv.DictReader(io.StringIO((folder / "rd_table.csv").read_text())))
    measured = [r for r in rows if r["job_dir"]]
    assert [(int(r["rate_bits"]), float(r["mse_db"])) for r in measured] == [(p["rate_bits"], p["mse_db"])
                                                                           for p in points]
    assert {r["scheme"] for r in rows if not r["job_dir"]} == {"wyner_ziv_bound", "no_side_information_bound"}
    assert (folder / "rd_plot.png").read_bytes() == (tmp_path / "rd_plot.png").read_bytes()


def test_the_sweep_end_gives_tensorboard_the_tables_and_the_plot(tmp_path):
    _gaussian_sweep(tmp_path)
    _end_sweep(tmp_path, "tensorboard")
    (events,) = (tmp_path / "tensorboard").rglob("events.out.tfevents.*")
    assert {"rd_table/text_summary", "rd_plot"} <= event_tags(events)


def test_a_sweep_logs_each_job_and_its_rd_table_and_plot_to_wandb(tmp_path, offline_wandb):
    """A real two-job multirun with logger=wandb: a W&B run per job with its point, and one in
    the sweep directory with the RD table (the rows of results.csv) and the RD plot."""
    run = subprocess.run(
        [sys.executable, "evaluate.py", "-m", "num_decoders=1,2", "rate_bits=1", "num_candidates=256",
         "job.trials=300", "job.selection_trials=100", "job.test_channel_variances=[0.005]", "device=cpu",
         "logger=wandb", f"hydra.sweep.dir={tmp_path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    for job in ("0", "1"):
        point = json.loads((tmp_path / job / "metrics.json").read_text())["points"][0]
        (row,) = wandb_history(tmp_path / job / "wandb")
        assert row["num_decoders"] == int(job) + 1 and row["mse_db"] == pytest.approx(point["mse_db"])
    logged = {key: value for row in wandb_history(tmp_path / "wandb") for key, value in row.items()}
    assert logged["rd_table/_type"] == "table-file" and logged["rd_plot/_type"].startswith("images")
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    table = json.loads((run_dir / "files" / logged["rd_table/path"]).read_text())
    results = list(csv.DictReader(io.StringIO((tmp_path / "results.csv").read_text())))
    assert table["columns"] == list(results[0]) and len(table["data"]) == len(results)
    mse = table["columns"].index("mse_db")
    assert [row[mse] for row in table["data"]] == pytest.approx([float(r["mse_db"]) for r in results])
    (image,) = logged["rd_plot/filenames"]
    assert (run_dir / "files" / image).read_bytes().startswith(b"\x89PNG")


def test_a_missing_tensorboard_names_the_extra_before_the_job_runs(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import tensorboardX now fails
    with pytest.raises(MissingDependencyError, match=r'dsc\[tensorboard\]'):
        run_evaluation(compose_evaluate(JOB + ["logger=tensorboard", f"paths.output_dir={tmp_path}"]))
    assert not (tmp_path / "metrics.json").exists()


def test_a_training_run_gives_wandb_its_config_once(tmp_path, offline_wandb):
    """The W&B run's config is run_config.json's, each key once and nested: no module argument
    beside it (``beta`` beside ``model.beta``)."""
    train(tmp_path, "logger=wandb")
    config = wandb_config(tmp_path / "wandb")
    expected = json.loads((tmp_path / "run_config.json").read_text())["config"]
    assert [key for key, _ in config] == list(expected) and dict(config) == expected
    assert "beta" not in dict(config) and dict(config)["model"]["beta"] == 0.05
