"""The points of a sweep directory: every job's ``metrics.json`` read, its points tagged with the
job, skipped and failed jobs' notes, the sources' bounds, and what kind of point each is."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from dsc.eval.points import CODEC_METHODS
from dsc.registry import get_source

log = logging.getLogger(__name__)


def _job_metrics(sweep_dir: Path):
    """``(job dir, metrics)`` for every readable ``metrics.json`` under ``sweep_dir``."""
    for path in sorted(sweep_dir.rglob("metrics.json")):
        try:
            yield str(path.parent.relative_to(sweep_dir)), json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            log.warning("skipping unreadable %s: %s", path, error)


def collect_points(sweep_dir: Path) -> list[dict]:
    """Every point of every ``metrics.json`` under ``sweep_dir``, tagged with its job dir."""
    points = [{**point, "job_dir": job} for job, metrics in _job_metrics(sweep_dir)
              for point in metrics.get("points", [])]
    return sorted(points, key=_point_order)


def collect_notes(sweep_dir: Path, kind: str) -> list[str]:
    """``"<job dir>: <reason>"`` for every job whose metrics.json records ``kind``: ``skipped``
    (ran, nothing to do, e.g. a codec the installed Pillow lacks) or ``failed`` (an error)."""
    return [f"{job}: {metrics[kind]}" for job, metrics in _job_metrics(sweep_dir) if metrics.get(kind)]


def _point_order(point: dict) -> tuple:
    return (str(point.get("scheme", "")), point.get("num_decoders", 0), point.get("rate_bits", 0),
            point.get("check_bits", 0))


def theory_rows(points: list[dict]) -> list[dict]:
    """The bounds of every source among ``points`` that declares some (``Source.theory``)."""
    rows = []
    for source in sorted({p["source"] for p in points if p.get("source")}):
        theory = get_source(source).theory
        if theory is not None:
            rows += theory([p for p in points if p["source"] == source])
    return rows


def point_scale(point: dict) -> str | None:
    """How a point's distortions are shown, by its source: ``db`` or ``linear``; None for a point
    of no source (e.g. the coupling demo's), which only the CSV shows."""
    return get_source(point["source"]).scale if point.get("source") else None


def distortion_label(points: list[dict], default: str) -> str:
    """What the points' ``mse`` measures: their sources' ``distortion_name`` (``default`` for
    points of no source)."""
    return " / ".join(sorted({get_source(p["source"]).distortion_name for p in points if p.get("source")})) or default


def is_checked(point: dict) -> bool:
    """A point coded with check bits (practical decoder selection); its oracle figures equal
    the same point without them, so curves and K x rate tables show the c = 0 points."""
    return bool(point.get("check_bits"))


def is_codec_point(point: dict) -> bool:
    """A point of a classical or learned image codec (any rate, not a K x rate grid)."""
    return point.get("method") in CODEC_METHODS
