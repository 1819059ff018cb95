"""The evaluation entry point: the real Hydra configs, shrunk, run end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module

import dsc
from dsc.eval.runner import run_evaluation
from tests._stats import binomial_margin

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["experiment=coupling_demo", "job.trials=4000", "job.pairs=2", "job.max_rows=4", "device=cpu"]


def compose_evaluate(overrides):
    with initialize_config_module("dsc.conf", version_base="1.3"):
        return compose(config_name="evaluate", overrides=overrides)


def test_coupling_demo_writes_metrics_and_plot(tmp_path):
    cfg = compose_evaluate(SMALL + [f"paths.output_dir={tmp_path}"])
    metrics = run_evaluation(cfg)
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk == json.loads(json.dumps(metrics))
    assert on_disk["environment"]["torch"] and on_disk["environment"]["device"] == "cpu"
    assert on_disk["config"]["job"]["trials"] == 4000
    points = on_disk["points"]
    assert [(p["pair"], p["num_rows"]) for p in points] == [(i, k) for i in range(2) for k in range(1, 5)]
    for p in points:
        assert p["match_prob"] >= p["lml_bound"] - binomial_margin(p["lml_bound"], p["trials"])
        if p["num_rows"] == 1:
            assert abs(p["match_prob"] - p["exact_k1"]) <= binomial_margin(p["exact_k1"], p["trials"])
            assert p["daliri_bound"] <= p["exact_k1"] + 1e-12
    png = (tmp_path / "coupling_demo.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    assert not list(tmp_path.glob(".*.tmp"))


def test_bad_configuration_is_a_dsc_error(tmp_path):
    with pytest.raises(dsc.DscError, match="job.trials"):
        run_evaluation(compose_evaluate(SMALL + ["job.trials=0", f"paths.output_dir={tmp_path}"]))
    with pytest.raises(dsc.DscError, match="device"):
        run_evaluation(compose_evaluate(SMALL + ["device=tpu", f"paths.output_dir={tmp_path}"]))
    assert not (tmp_path / "metrics.json").exists()


def test_evaluate_command_line(tmp_path):
    run = subprocess.run(
        [sys.executable, "evaluate.py", *SMALL, "job.pairs=1", f"hydra.run.dir={tmp_path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "LML bound" in run.stderr + run.stdout
    assert len(json.loads((tmp_path / "metrics.json").read_text())["points"]) == 4


def test_aggregate_callback_skips_sweeps_without_evaluations(tmp_path):
    """A training sweep (no metrics.json) ends quietly instead of with an aggregation error."""
    from omegaconf import OmegaConf

    from dsc.report.sweep import AggregateOnMultirunEnd

    (tmp_path / "0").mkdir()
    AggregateOnMultirunEnd().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}}))
    assert list(tmp_path.iterdir()) == [tmp_path / "0"]


def _gaussian_sweep(sweep: Path) -> None:
    """Two jobs of GLS at K = 2, rates 1 and 2, as an evaluation sweep writes them."""
    for job, rate in enumerate((1, 2)):
        point = {"source": "gaussian", "method": "gls", "scheme": "gls", "num_decoders": 2, "rate_bits": rate,
                 "check_bits": 0, "distortion_db": -10.0 * rate, "mse_db": -5.0 * rate, "s2": 0.005, "noise_var": 0.5}
        (sweep / str(job)).mkdir(parents=True)
        (sweep / str(job) / "metrics.json").write_text(json.dumps({"points": [point]}))


def test_the_end_of_a_sweep_prints_the_tables_and_the_paths(tmp_path, capsys):
    from omegaconf import OmegaConf

    from dsc.report.sweep import AggregateOnMultirunEnd, main

    _gaussian_sweep(tmp_path)
    AggregateOnMultirunEnd().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}}))
    printed = capsys.readouterr().out
    tables = (tmp_path / "results.md").read_text()
    assert "| 2 | -10.00 (s2 0.005) | -20.00 (s2 0.005) |" in tables  # the paper metric's K x rate table
    assert tables.strip() in printed  # the whole results.md body, before the paths
    # 2 points + Wyner-Ziv and no-side-information bounds at two rates
    assert f"results: {tmp_path / 'results.csv'} (6 rows)" in printed
    for name, file in (("tables", "results.md"), ("RD plot", "rd_plot.png")):
        assert f"{name}: {tmp_path / file}" in printed and (tmp_path / file).exists()
    assert printed.index(tables.strip()) < printed.index("results: ")
    main([str(tmp_path)])  # the same by hand
    assert capsys.readouterr().out == printed


def test_points_with_check_bits_get_their_own_table_and_curves(tmp_path):
    """Oracle tables and curves use the c = 0 points; points with check bits go to the
    practical-selection table and the any-pass curves."""
    from dsc.report.plots import plot_rd
    from dsc.report.tables import markdown_tables

    def point(rate, c, practical=None):  # the practical figures only with check bits, as the jobs write them
        return {"source": "gaussian", "method": "gls", "scheme": "gls", "num_decoders": 4, "rate_bits": rate,
                "check_bits": c, "distortion_db": -10.0, "mse_db": -8.0 - rate, "s2": 0.005,
                **({} if not c else {"practical_mse_db": practical, "per_decoder_practical_mse_db": practical + 1,
                                     "accept_rate": 0.5, "false_accept_rate": 2.0**-c})}

    points = [point(1, 0), point(2, 0), point(1, 4, -6.0), point(2, 4, -7.0)]
    tables = markdown_tables(points)
    oracle, practical = tables.split("**practical decoder selection**")
    assert oracle.count("| 4 | -9.00 (s2 0.005) | -10.00 (s2 0.005) |") == 1  # no c = 4 duplicates
    assert "| gls | 4 | 2 | 4 | 6 | -10.00 dB | -7.00 dB | -6.00 dB | 0.500 | 0.0625 |" in practical
    assert practical.count("| gls |") == 2  # only the c = 4 points
    assert plot_rd(points, [], tmp_path / "rd.png").exists()


def test_a_failing_job_does_not_stop_the_sweep_and_is_reported(tmp_path):
    """K = 0 is a configuration error in one job of a two-job multirun: the other job's point
    is written and aggregated, results.md lists the failure, and the sweep exits non-zero."""
    run = subprocess.run(
        [sys.executable, "evaluate.py", "-m", "num_decoders=0,1", "rate_bits=1", "num_candidates=256",
         "job.trials=300", "job.test_channel_variances=[0.005]", "device=cpu", f"hydra.sweep.dir={tmp_path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode != 0 and "1 job(s) of the sweep failed" in run.stderr
    failed = json.loads((tmp_path / "0" / "metrics.json").read_text())
    assert failed["points"] == [] and "num_decoders" in failed["failed"]
    assert len(json.loads((tmp_path / "1" / "metrics.json").read_text())["points"]) == 1
    assert "**failed jobs**" in (tmp_path / "results.md").read_text()
    assert (tmp_path / "results.csv").exists()


def test_a_single_failing_run_still_raises(tmp_path):
    with pytest.raises(dsc.DscError):
        run_evaluation(compose_evaluate(["num_decoders=0", "device=cpu", f"paths.output_dir={tmp_path}"]))
    assert not (tmp_path / "metrics.json").exists()


def test_a_complete_job_is_skipped_and_anything_else_is_redone(tmp_path):
    overrides = SMALL + ["job.pairs=1", f"paths.output_dir={tmp_path}"]
    path = tmp_path / "metrics.json"
    first = run_evaluation(compose_evaluate(overrides))
    assert first["complete"] is True and len(first["points"]) == 4
    marked = {**first, "elapsed_s": -1.0}  # a sentinel a rerun would overwrite
    path.write_text(json.dumps(marked))
    assert run_evaluation(compose_evaluate(overrides))["elapsed_s"] == -1.0  # skipped
    assert run_evaluation(compose_evaluate(overrides + ["skip_complete=false"]))["elapsed_s"] >= 0  # forced
    for broken in ({**marked, "complete": False}, {**marked, "failed": "ValueError: x"}):
        path.write_text(json.dumps(broken))
        assert run_evaluation(compose_evaluate(overrides))["elapsed_s"] >= 0
    path.write_text(json.dumps(marked))
    changed = run_evaluation(compose_evaluate(overrides + ["job.trials=3000"]))  # another configuration
    assert changed["elapsed_s"] >= 0 and changed["config"]["job"]["trials"] == 3000
    path.write_text(json.dumps(marked)[:200])  # a truncated file (written by something else)
    assert run_evaluation(compose_evaluate(overrides))["elapsed_s"] >= 0


def test_the_report_is_handed_in_and_called_only_after_a_run(tmp_path):
    """``report`` (dsc-evaluate: dsc.report.job.write_job_report) gets the job, its points, the
    device and the output directory once the job has run, not for a job skipped as complete."""
    calls = []
    overrides = SMALL + ["job.pairs=1", f"paths.output_dir={tmp_path}"]
    report = lambda job, points, device, out: calls.append((type(job).__name__, points, str(device), out))  # noqa: E731
    metrics = run_evaluation(compose_evaluate(overrides), report=report)
    assert calls == [("CouplingDemo", metrics["points"], "cpu", tmp_path)]
    run_evaluation(compose_evaluate(overrides), report=report)  # complete: skipped, not reported again
    assert len(calls) == 1


def test_rerunning_a_sweep_redoes_only_unfinished_points(tmp_path):
    """Job 0's metrics.json is cut short, job 1's is complete: the rerun keeps job 1 as it was,
    redoes job 0 whole, and the aggregate holds each point once."""
    command = [sys.executable, "evaluate.py", "-m", "num_decoders=1,2", "rate_bits=1", "num_candidates=256",
               "job.trials=300", "job.selection_trials=100", "job.test_channel_variances=[0.005]", "device=cpu",
               f"hydra.sweep.dir={tmp_path}"]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    done = json.loads((tmp_path / "1" / "metrics.json").read_text())
    (tmp_path / "1" / "metrics.json").write_text(json.dumps({**done, "elapsed_s": -1.0}))
    (tmp_path / "0" / "metrics.json").write_text((tmp_path / "0" / "metrics.json").read_text()[:300])
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "skipped" in run.stderr + run.stdout
    assert json.loads((tmp_path / "1" / "metrics.json").read_text())["elapsed_s"] == -1.0
    redone = json.loads((tmp_path / "0" / "metrics.json").read_text())
    assert redone["complete"] and redone["elapsed_s"] >= 0 and len(redone["points"]) == 1
    rows = (tmp_path / "results.csv").read_text().splitlines()
    gls_rows = [r for r in rows if r.startswith("gls,")]
    assert sorted(r.split(",")[1] for r in gls_rows) == ["1", "2"]
