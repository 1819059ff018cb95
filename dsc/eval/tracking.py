"""An evaluation job's results logged to the configured tracker: the ``logger`` config group
(as for training: ``logger=wandb|csv|tensorboard|none``) builds Lightning loggers, each of
which gets the job's config once and the numbers of every result point."""

from __future__ import annotations

import numbers

from dsc.lit.loggers import finish_runs


def point_numbers(point: dict) -> dict[str, int | float]:
    """The numbers of a result point (its labels, lists and flags left out)."""
    return {key: value for key, value in point.items()
            if isinstance(value, numbers.Real) and not isinstance(value, bool)}


def log_job(loggers: list, metrics: dict) -> None:
    """Hand every logger the job's ``config`` once (``log_hyperparams``) and point i of its
    ``points`` as the metrics of step i, then close them (a W&B run ends). Nothing for a job
    without points (a failed one)."""
    if not loggers or not metrics.get("points"):
        return
    try:
        for logger in loggers:
            logger.log_hyperparams(metrics["config"])
            for step, point in enumerate(metrics["points"]):
                logger.log_metrics(point_numbers(point), step=step)
            logger.finalize("success")
    finally:
        finish_runs()
