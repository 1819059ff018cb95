"""Nothing lost under faults: a checkpoint that cannot be saved stops the run, a save killed
mid-write leaves the previous checkpoint loadable, two runs never share a directory, a replaced
checkpoint is evaluated again, a checkpoint of another model is refused before a run writes
anything, absurd work is refused, and the entry points print errors as one line."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

import dsc
from dsc.errors import CheckpointSaveError, ConfigError, RunDirectoryInUseError
from dsc.eval.runner import run_evaluation
from dsc.lit.checkpoint import CheckpointMismatchError, read_checkpoint
from dsc.lit.train import run_training
from dsc.rundir import hold_run_directory, register_resolvers

ROOT = Path(__file__).resolve().parent.parent
GAUSSIAN = ["source=gaussian", "model=gaussian_mlp", "model.hidden=16", "model.estimator_hidden=16",
            "data.train_size=256", "data.val_size=128", "trainer.max_epochs=1", "logger=none", "device=cpu",
            "trainer.enable_progress_bar=false"]
DEMO = ["experiment=coupling_demo", "job.trials=500", "job.pairs=1", "job.max_rows=2", "device=cpu"]


def compose_config(entry: str, overrides: list[str]):
    with initialize_config_module("dsc.conf", version_base="1.3"):
        return compose(config_name=entry, overrides=overrides)


def user_sees(run: subprocess.CompletedProcess) -> str:
    return run.stdout + run.stderr


def test_a_checkpoint_that_cannot_be_saved_stops_training(tmp_path, monkeypatch):
    """Lightning's own save logs a PermissionError and goes on; here the run stops, names the
    file, and writes no summary that would point at a checkpoint that is not there."""
    def refuse(path, data):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("dsc.lit.checkpoint_io.atomic_write_bytes", refuse)
    with pytest.raises(CheckpointSaveError, match="could not save checkpoint .*best.ckpt: Permission denied"):
        run_training(compose_config("train", GAUSSIAN + [f"paths.output_dir={tmp_path}"]))
    assert not (tmp_path / "train_summary.json").exists()


def test_an_unwritable_checkpoint_folder_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "checkpoints").write_text("a file where the folder should be")
    run = subprocess.run([sys.executable, "train.py", *GAUSSIAN, f"hydra.run.dir={tmp_path}"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 2, user_sees(run)[-3000:]
    assert "error: could not save checkpoint" in run.stderr and "best.ckpt" in run.stderr
    assert "Traceback" not in user_sees(run)
    assert not (tmp_path / "train_summary.json").exists()


KILLED_SAVE = textwrap.dedent("""
    import os, signal, sys
    from hydra import compose, initialize_config_module
    from dsc.lit.train import run_training

    real_fsync, saves = os.fsync, []

    def fsync(fd):  # the second save of last.ckpt dies half-written, before its rename
        name = os.readlink(f"/proc/self/fd/{fd}")
        if ".last.ckpt." in name:
            saves.append(name)
            if len(saves) == 2:
                os.ftruncate(fd, os.fstat(fd).st_size // 2)
                os.kill(os.getpid(), signal.SIGKILL)
        real_fsync(fd)

    os.fsync = fsync
    with initialize_config_module("dsc.conf", version_base="1.3"):
        run_training(compose(config_name="train", overrides=sys.argv[1:]))
""")


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to see which file is being saved")
def test_a_save_killed_mid_write_keeps_the_previous_checkpoint(tmp_path):
    """SIGKILL while epoch 1's last.ckpt is half on disk, with TMPDIR on another folder: the
    epoch-0 last.ckpt still loads, nothing is left in TMPDIR, and resuming clears the leftover
    and finishes."""
    run_dir, scratch = tmp_path / "run", tmp_path / "scratch"
    scratch.mkdir()
    overrides = [*GAUSSIAN, "trainer.max_epochs=2", f"paths.output_dir={run_dir}"]
    env = {**__import__("os").environ, "TMPDIR": str(scratch)}
    run = subprocess.run([sys.executable, "-c", KILLED_SAVE, *overrides], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == -9, user_sees(run)[-3000:]
    last = run_dir / "checkpoints" / "last.ckpt"
    assert read_checkpoint(last, "python train.py")["epoch"] == 0  # the previous save, whole
    assert [p.name for p in scratch.rglob("*") if "ckpt" in p.name] == []
    leftovers = list((run_dir / "checkpoints").glob(".last.ckpt.*.tmp"))
    assert len(leftovers) == 1
    run_training(compose_config("train", overrides + [f"ckpt_path={last}"]))
    assert not leftovers[0].exists()
    assert read_checkpoint(last, "python train.py")["epoch"] == 1
    assert json.loads((run_dir / "train_summary.json").read_text())["epochs"] == 1


def test_default_run_directories_are_unique_within_a_second():
    """The run and sweep directories end in ${run_id:}: the same value wherever one command's
    config names it, another value for the next command."""
    register_resolvers()
    first, second = (OmegaConf.create({"run": "${now:%Y}_${run_id:}", "again": "${run_id:}"}) for _ in range(2))
    assert first.run.endswith(first.again) and second.run.endswith(second.again)
    assert first.again != second.again and len(first.again) == 6
    hydra = OmegaConf.to_container(OmegaConf.load(ROOT / "dsc" / "conf" / "hydra" / "default.yaml"))
    assert hydra["run"]["dir"].endswith("_${run_id:}") and hydra["sweep"]["dir"].endswith("_${run_id:}")


def test_two_evaluations_started_together_keep_both_results(tmp_path):
    command = [sys.executable, str(ROOT / "evaluate.py"), *DEMO]
    runs = [subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    for run in runs:
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, (out + err)[-3000:]
    results = sorted(tmp_path.glob("outputs/evaluate/*/metrics.json"))
    assert len(results) == 2 and results[0].parent != results[1].parent


def test_a_run_directory_in_use_is_refused(tmp_path):
    with hold_run_directory(tmp_path):
        with pytest.raises(RunDirectoryInUseError, match=f"{tmp_path} is in use by another run"):
            run_evaluation(compose_config("evaluate", DEMO + [f"paths.output_dir={tmp_path}"]))
        with pytest.raises(RunDirectoryInUseError):
            run_training(compose_config("train", GAUSSIAN + [f"paths.output_dir={tmp_path}"]))
        run = subprocess.run([sys.executable, "evaluate.py", *DEMO, f"hydra.run.dir={tmp_path}"], cwd=ROOT,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 2 and "is in use by another run" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "metrics.json").exists()
    run_evaluation(compose_config("evaluate", DEMO + [f"paths.output_dir={tmp_path}"]))  # free again
    assert (tmp_path / "metrics.json").exists()


def test_a_replaced_checkpoint_is_evaluated_again(tmp_path):
    """Completion is keyed by the checkpoint's content, not its path."""
    ckpt = tmp_path / "codec.ckpt"
    torch.save({"weights": torch.zeros(3)}, ckpt)
    cfg = compose_config("evaluate", DEMO + [f"paths.output_dir={tmp_path / 'run'}", f"ckpt_path={ckpt}"])
    first = run_evaluation(cfg)
    assert run_evaluation(cfg) == first  # unchanged: skipped, the same record
    torch.save({"weights": torch.ones(3)}, ckpt)  # same path, other content
    again = run_evaluation(cfg)
    assert again["checkpoints"][str(ckpt)] != first["checkpoints"][str(ckpt)]
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["checkpoints"] == again["checkpoints"]


def test_resuming_from_another_models_checkpoint_is_refused_before_anything_is_written(tmp_path, tiny_codec):
    out = tmp_path / "run"
    with pytest.raises(CheckpointMismatchError, match="cannot resume from .*another model or source"):
        run_training(compose_config("train", GAUSSIAN + [f"paths.output_dir={out}", f"ckpt_path={tiny_codec()}"]))
    assert not (out / "run_config.json").exists() and not (out / "checkpoints").exists()


def test_absurd_work_is_refused_with_its_estimate(tmp_path):
    cfg = compose_config("evaluate", ["job.trials=1000000000000", "device=cpu", f"paths.output_dir={tmp_path}"])
    with pytest.raises(ConfigError, match=r"about [\d,]+ hours .* set allow_long=true"):
        run_evaluation(cfg)
    assert not (tmp_path / "metrics.json").exists()
    from dsc.eval.gaussian import GaussianRateDistortion

    paper = GaussianRateDistortion()  # the paper's point: estimated in minutes, not refused
    assert paper.estimated_seconds(torch.device("cpu")) < 3600


def test_dsc_errors_under_the_entry_points_are_one_line(tmp_path):
    corrupt = tmp_path / "corrupt.ckpt"
    corrupt.write_bytes(b"PK\x03\x04" + bytes(500))  # the start of a zip archive, then nothing
    cases = [
        ["train.py", *GAUSSIAN, f"ckpt_path={corrupt}", f"hydra.run.dir={tmp_path / 'a'}"],
        ["evaluate.py", "source=mnist", f"ckpt_path={corrupt}", "num_candidates=8", f"hydra.run.dir={tmp_path / 'b'}"],
        ["evaluate.py", "job.trials=1000000000000", f"hydra.run.dir={tmp_path / 'c'}"],
    ]
    for args in cases:
        run = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
        seen = user_sees(run)
        assert run.returncode == 2, seen[-3000:]
        assert "Traceback" not in seen and "weights_only" not in seen and "\nerror: " in "\n" + run.stderr
    debug = subprocess.run([sys.executable, *cases[0]], cwd=ROOT, capture_output=True, text=True, timeout=300,
                           env={**__import__("os").environ, "HYDRA_FULL_ERROR": "1"})
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "CorruptCheckpointError" in debug.stderr


def test_hydra_composition_errors_are_one_line_too():
    run = subprocess.run([sys.executable, "evaluate.py", "no_such_group=1"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 2 and run.stderr.startswith("error: ") and "Traceback" not in run.stderr


def test_the_new_errors_are_in_the_family():
    for error in (CheckpointSaveError, RunDirectoryInUseError):
        assert issubclass(error, dsc.DscError) and issubclass(error, dsc.OutputError)


def test_ctrl_c_during_an_evaluation_is_one_line(tmp_path):
    import os
    import signal

    # A suite started in the background by a shell without job control inherits SIGINT ignored,
    # and so would the job: it gets Ctrl-C's default back, as in a terminal.
    run = subprocess.Popen([sys.executable, "evaluate.py", "job.trials=20000000", "num_candidates=4096", "device=cpu",
                            f"hydra.run.dir={tmp_path}"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen = []
    for line in run.stdout:  # wait until the job runs (the log goes to stdout)
        seen.append(line)
        if "job GaussianRateDistortion" in line:
            break
    run.send_signal(signal.SIGINT)
    rest, _ = run.communicate(timeout=120)
    seen = "".join(seen) + rest
    assert run.returncode == 130, seen[-3000:]
    assert "Traceback" not in seen and seen.count("interrupted") == 1
    assert not (tmp_path / "metrics.json").exists()
