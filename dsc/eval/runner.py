"""Run one evaluation job from a Hydra config and write its metrics.json atomically.

A job whose output directory already holds a complete metrics.json for the same configuration
is skipped (``skip_complete``, on by default): rerunning a sweep into its directory
(``hydra.sweep.dir=<dir>``) redoes only the jobs that failed, were interrupted or changed. A
checkpoint the config names counts by its content (SHA-256), not its path: a retrained or
replaced checkpoint file is evaluated again. A job holds its directory while it runs
(:func:`dsc.rundir.hold_run_directory`), so two jobs never write one metrics.json. A configured
tracker (``logger=csv|tensorboard|wandb``) gets the job's config and points
(:mod:`dsc.eval.tracking`). A job's report (tables, plots) is written by the layer above, which
passes it in as ``report`` (``dsc-evaluate``: :func:`dsc.report.job.write_job_report`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any, Callable

import torch
from omegaconf import DictConfig, OmegaConf

from dsc.config import build
from dsc.environment import device_name, environment_record, resolve_device
from dsc.errors import ConfigError
from dsc.eval.tracking import log_job
from dsc.io import atomic_write_json
from dsc.lit.loggers import build_loggers
from dsc.rundir import hold_run_directory

log = logging.getLogger(__name__)
# keys a complete job stays complete without: a moved sweep directory, another tracker
IGNORED_KEYS = ("skip_complete", "paths", "logger")
# report(job, points, device, output_dir): writes a job's report once it has run
JobReport = Callable[[Any, list, torch.device, Path], None]


def run_evaluation(cfg: DictConfig, keep_going: bool = False, report: JobReport | None = None) -> dict:
    """Instantiate ``cfg.job``, call its ``run(seed, device, output_dir)``, then ``report`` (if
    given) with the job and its points, and save ``{config, environment, elapsed_s, points}`` to
    ``<output_dir>/metrics.json``; a job skipped as complete is not reported again.

    ``keep_going`` (a job of a sweep): an error is logged and recorded as ``failed`` in
    metrics.json, with no points, instead of raised, so that the sweep's other jobs still run;
    the aggregator lists the failures and the sweep exits with an error at the end. The loggers
    of ``cfg.logger`` are built first (a missing package fails before the job runs) and get the
    config and points at the end, also those of a complete job that was skipped."""
    output_dir = Path(cfg.paths.output_dir)
    loggers = build_loggers(cfg.get("logger"))
    with hold_run_directory(output_dir):
        metrics = _run(cfg, output_dir, keep_going, report)
        log_job(loggers, metrics)
    return metrics


def _run(cfg: DictConfig, output_dir: Path, keep_going: bool, report: JobReport | None) -> dict:
    config = _config_record(cfg)
    digests = checkpoint_digests(config)  # the checkpoints as this job reads them
    if cfg.get("skip_complete", True):
        done = complete_metrics(output_dir / "metrics.json", config, digests)
        if done is not None:
            log.info("%s is complete for this configuration (%d points): skipped (skip_complete=false redoes it)",
                     output_dir / "metrics.json", len(done["points"]))
            return done
    start = time.perf_counter()
    try:
        device = resolve_device(cfg.device)
        if not cfg.get("job"):
            raise ConfigError("nothing to run: choose a source (source=gaussian), an experiment, or for "
                              "experiment=compare_mnist a codec (+codec=gls)")
        import_modules(cfg.get("imports") or [])
        job = build(cfg.job, "job")
        log.info(
            "job %s | device %s (%s) | seed %d | torch %s | output %s",
            type(job).__name__, device, device_name(device), cfg.seed, torch.__version__, output_dir,
        )
        points = job.run(seed=int(cfg.seed), device=device, output_dir=output_dir)
        if report is not None:
            report(job, points, device, output_dir)
    except Exception as error:
        if not keep_going:
            raise
        log.exception("job failed; the sweep goes on")
        return _save(cfg, digests, output_dir, torch.device("cpu"), time.perf_counter() - start, [],
                     failed=f"{type(error).__name__}: {error}")
    return _save(cfg, digests, output_dir, device, time.perf_counter() - start, points,
                 skipped=getattr(job, "skipped", None))


def import_modules(names) -> None:
    """Import ``names``, modules that register sources of one's own, before the job is built
    (:func:`dsc.registry.import_sources`: the working directory first on the Python path)."""
    from dsc.registry import import_sources

    import_sources(list(names), "imports")


def checkpoint_digests(config: Any, key: str = "") -> dict[str, str]:
    """``{path: SHA-256 of its bytes}`` for every existing file that a config key naming a
    checkpoint (``ckpt_path``, ``ckpt_paths``, ``job.ckpt`` ...: any key containing ``ckpt``)
    holds, at any depth; files that do not exist are left to the job to report."""
    digests: dict[str, str] = {}
    if isinstance(config, dict):
        for name, value in config.items():
            digests.update(checkpoint_digests(value, str(name)))
    elif isinstance(config, (list, tuple)):
        for value in config:
            digests.update(checkpoint_digests(value, key))
    elif isinstance(config, str) and "ckpt" in key and Path(config).is_file():
        digest = hashlib.sha256()
        with open(config, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        digests[config] = digest.hexdigest()
    return digests


def complete_metrics(path: Path, config: dict, checkpoints: dict[str, str] | None = None) -> dict | None:
    """The metrics in ``path`` when they are a finished run of ``config`` (marked complete, not
    failed, same configuration apart from :data:`IGNORED_KEYS`, and the same ``checkpoints``
    contents, see :func:`checkpoint_digests`), else None: then the job runs and its metrics.json
    is replaced whole, never merged."""
    try:
        metrics = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(metrics, dict) or metrics.get("complete") is not True or metrics.get("failed"):
        return None
    if (metrics.get("checkpoints") or {}) != (checkpoints or {}):
        return None  # a checkpoint was replaced (or the record predates content digests)
    strip = lambda c: {k: v for k, v in c.items() if k not in IGNORED_KEYS} if isinstance(c, dict) else c  # noqa: E731
    same = strip(metrics.get("config")) == strip(json.loads(json.dumps(config)))
    return metrics if same and isinstance(metrics.get("points"), list) else None


def _config_record(cfg: DictConfig) -> dict:
    try:
        config = OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # a failed job's config may not resolve: keep it as written
        config = OmegaConf.to_container(cfg, resolve=False)
    config.pop("hydra", None)
    return config


def _save(cfg: DictConfig, digests: dict[str, str], output_dir: Path, device: torch.device, elapsed: float,
          points: list[dict], **notes: str | None) -> dict:
    metrics = {
        "complete": not notes.get("failed"),
        "config": _config_record(cfg),
        "checkpoints": digests,
        "environment": environment_record(device),
        "elapsed_s": elapsed,
        "points": points,
        **{name: note for name, note in notes.items() if note},
    }
    path = atomic_write_json(output_dir / "metrics.json", metrics)
    log.info("%d points in %.1f s -> %s", len(points), elapsed, path)
    return metrics
