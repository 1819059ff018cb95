"""Operating points chosen on selection data, reported on fresh data, for any registered source.

For every (scheme, K, rate), each candidate operating point (a set of the source's options: an
s2 of the closed-form Gaussian model, a checkpoint per beta of a learned codec, ...) is
evaluated on the selection messages by :class:`dsc.eval.source_point.SourceRateDistortion`; the
one with the lowest ``select_by`` is reported on the evaluation messages (ids 0 ..
``messages`` - 1; the selection uses ids from ``selection_first_message`` on, or other options,
e.g. ``{split: val}`` for a data set). Every scheme is chosen by the metric its table reports.

    python evaluate.py experiment=gaussian_learned ...   (dsc/conf/experiment/gaussian_learned.yaml)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from dsc.errors import ConfigError
from dsc.eval.source_point import SourceRateDistortion
from dsc.progress import progress_bar

log = logging.getLogger(__name__)
METRICS = ("mse_db", "distortion_db", "mse", "practical_mse_db", "practical_mse")


@dataclass
class SourceProtocol:
    """See the module docstring. ``candidates``: option dicts, each with an optional ``label``
    (how tables name it, e.g. ``beta 0.05``); ``ckpt_paths``: more candidates, one trained
    codec each (``{ckpt: path}``, labelled by the run directory's name, e.g. ``beta_0.05``);
    ``grid``: more candidates, one per value of one option (e.g. ``{s2: [0.01, 0.005]}``);
    ``method``: the points' method label (default: the scheme)."""

    source: str
    candidates: list[dict] | None = None
    ckpt_paths: list[str] | None = None
    grid: dict[str, list] | None = None
    base_options: dict | None = None
    schemes: list[str] = field(default_factory=lambda: ["gls"])
    num_decoders: list[int] = field(default_factory=lambda: [1, 4])
    rate_bits: list[int] = field(default_factory=lambda: [1, 2, 3, 4])
    num_candidates: int | None = None
    check_bits: int = 0
    select_by: str = "mse_db"
    messages: int = 10_000
    selection_messages: int = 2_000
    selection_first_message: int | None = None
    selection_options: dict | None = None
    method: str | None = None
    batch_size: int = 1000
    progress: bool = True

    def __post_init__(self) -> None:
        self.candidates = [dict(c) for c in self.candidates or []] + [
            {"ckpt": str(path), "label": Path(path).resolve().parent.parent.name} for path in self.ckpt_paths or []] + [
            {name: value, "label": f"{name} {value:g}" if isinstance(value, float) else f"{name} {value}"}
            for name, values in (self.grid or {}).items() for value in values]
        if not self.candidates:
            raise ConfigError("candidates is empty: give the operating points to choose from, e.g. [{s2: 0.01}]")
        if self.select_by not in METRICS:
            raise ConfigError(f"select_by must be one of {', '.join(METRICS)}, got {self.select_by!r}")
        if self.select_by.startswith("practical") and not self.check_bits:
            raise ConfigError(f"select_by={self.select_by} needs check bits (check_bits > 0): without them no pick is "
                              "checked")
        labels = [self._label(c) for c in self.candidates]
        if len(set(labels)) != len(labels):
            raise ConfigError(f"candidates must differ (labels {labels})")
        for scheme in self.schemes:
            for k in self.num_decoders:
                for rate in self.rate_bits:
                    self._job(scheme, k, rate, self.candidates[0], selection=False)  # validates early

    @staticmethod
    def _label(candidate: dict) -> str:
        return str(candidate.get("label") or ", ".join(f"{k} {v}" for k, v in candidate.items()))

    def _job(self, scheme: str, k: int, rate: int, candidate: dict, selection: bool) -> SourceRateDistortion:
        options = {**(self.base_options or {}), **{k_: v for k_, v in candidate.items() if k_ != "label"}}
        if selection:
            options.update(self.selection_options or {})
        first = (self.messages if self.selection_first_message is None else self.selection_first_message) \
            if selection else 0
        return SourceRateDistortion(self.source, options, scheme, k, rate, self.num_candidates, self.check_bits,
                                    self.selection_messages if selection else self.messages, first, self.batch_size,
                                    progress=False)

    def run(self, seed: int, device: torch.device, output_dir: Path) -> list[dict]:
        grid = [(s, k, r) for s in self.schemes for k in self.num_decoders for r in self.rate_bits]
        points = []
        with progress_bar(total=len(grid) * (len(self.candidates) + 1), desc=f"{self.source} protocol", unit="run",
                  disable=not self.progress) as bar:
            for scheme, k, rate in grid:
                scores = {}
                for candidate in self.candidates:
                    point = self._job(scheme, k, rate, candidate, selection=True).run(seed, device, output_dir)[0]
                    scores[self._label(candidate)] = point[self.select_by]
                    bar.update()
                chosen = min(self.candidates, key=lambda c: scores[self._label(c)])
                point = self._job(scheme, k, rate, chosen, selection=False).run(seed, device, output_dir)[0]
                bar.update()
                point.update({"method": self.method or scheme, "operating_point": self._label(chosen),
                              "select_by": self.select_by, "selection_scores": scores,
                              "selection_messages": self.selection_messages})
                log.info("%s %s K=%d R=%d: %s chosen by %s on %d selection messages; %s %.2f on %d messages",
                         self.source, point["method"], k, rate, point["operating_point"], self.select_by,
                         self.selection_messages, self.select_by, point[self.select_by], point["messages"])
                points.append(point)
        return points
