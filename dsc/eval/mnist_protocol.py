"""The paper's MNIST protocol: choose beta and N on the validation split, report on test.

For every (scheme, K, rate) the checkpoint (one per beta) and N in ``num_candidates`` with the
lowest best-of-K MSE on the validation split are chosen, then that configuration is coded on the
test split. Writes into the output directory: ``selection.csv`` (every validation result,
also the resume cache: a rerun into the same directory skips what it holds), ``results.md``
(test tables, with paper Table 13 beside GLS), ``rd_plot.png`` and ``reconstructions.png`` (GLS
at the largest K and lowest rate).
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from dsc.errors import ConfigError
from dsc.eval.aggregate import markdown_tables, plot_rd, to_csv
from dsc.eval.mnist import (
    MnistCodecModule, PointOutcome, SplitFeatures, evaluate_point, load_codec, make_coder,
    shares_rows_across_decoders, split_dataset,
)
from dsc.eval.mnist_figures import save_reconstruction_grid
from dsc.eval.points import check_point
from dsc.eval.reference import paper_comparison_table
from dsc.io import atomic_write_bytes

log = logging.getLogger(__name__)

SELECTION_COLUMNS = ("scheme", "num_decoders", "rate_bits", "num_candidates", "beta", "ckpt_path", "digits",
                     "mse", "mse_se", "per_decoder_mse", "match_prob")


@dataclass
class MnistPaperProtocol:
    """Choose (beta, N) per (scheme, K, rate) on ``val``, report on ``test``.

    ``ckpt_paths``: one trained codec per beta (same latent size and crop size).
    ``selection_limit`` / ``limit``: use only the first digits of the val / test split.
    """

    ckpt_paths: list[str]
    num_candidates: list[int] = field(default_factory=lambda: [128, 256, 512, 1024, 2048, 4096])
    num_decoders: list[int] = field(default_factory=lambda: [1, 2, 3, 4])
    rate_bits: list[int] = field(default_factory=lambda: [2, 3, 4, 5, 6])
    schemes: list[str] = field(default_factory=lambda: ["gls", "shared_randomness"])
    selection_limit: int | None = None
    limit: int | None = None
    batch_size: int = 500
    data_source: str = "embedded"
    data_root: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if not self.ckpt_paths:
            raise ConfigError("ckpt_paths is empty; pass the trained codecs, e.g. ckpt_paths=[a.ckpt,b.ckpt]")
        for name in ("num_candidates", "num_decoders", "rate_bits", "schemes"):
            values = list(getattr(self, name))
            if not values or len(set(values)) != len(values):
                raise ConfigError(f"{name} must be a non-empty list without repeats, got {values}")
            setattr(self, name, values)
        self.ckpt_paths = [str(p) for p in self.ckpt_paths]
        for scheme in self.schemes:
            for k in self.num_decoders:
                for rate in self.rate_bits:
                    check_point(scheme, k, rate, max(self.num_candidates))

    def run(self, seed: int, device: torch.device, output_dir: Path) -> list[dict]:
        codecs = {path: load_codec(path).to(device) for path in self.ckpt_paths}
        self._check_compatible(codecs)
        origin = ""
        features: dict[tuple[str, str], SplitFeatures] = {}

        def split_of(path: str, split: str) -> SplitFeatures:
            nonlocal origin
            if (path, split) not in features:
                limit = self.selection_limit if split == "val" else self.limit
                dataset, origin = split_dataset(codecs[path], split, max(self.num_decoders), seed, limit,
                                                self.data_source, self.data_root)
                log.info("data: %s, %s split, %d digits | device: %s", origin, split, len(dataset), device)
                features[(path, split)] = SplitFeatures.compute(codecs[path].nets, dataset, device, self.batch_size)
            return features[(path, split)]

        outcomes: dict[tuple, PointOutcome] = {}

        def outcome(path: str, split: str, scheme: str, k: int, rate: int, n: int) -> PointOutcome:
            coded_k = max(self.num_decoders) if shares_rows_across_decoders(scheme) else k
            key = (path, split, scheme, coded_k, rate, n)
            if key not in outcomes:
                coder = make_coder(seed, codecs[path].hparams.latent_dim, scheme, coded_k, rate, n)
                outcomes[key] = evaluate_point(codecs[path].nets, split_of(path, split), coder, self.batch_size)
            return outcomes[key].first_decoders(k)

        cache_path = output_dir / "selection.csv"
        fingerprints = {path: _file_digest(path) for path in self.ckpt_paths}
        selection = _read_selection(cache_path, seed, self.selection_limit, fingerprints)
        grid = [(s, k, r, n, p) for s in self.schemes for k in self.num_decoders for r in self.rate_bits
                for n in self.num_candidates if n >= 2**r for p in self.ckpt_paths]
        todo = [g for g in grid if _selection_key(*g) not in selection]
        if len(todo) < len(grid):
            log.info("resuming: %d of %d validation results read from %s", len(grid) - len(todo), len(grid), cache_path)
        for scheme, k, rate, n, path in tqdm(todo, desc="selection on val", unit="point", disable=not self.progress):
            summary = outcome(path, "val", scheme, k, rate, n).summary()
            selection[_selection_key(scheme, k, rate, n, path)] = {
                "scheme": scheme, "num_decoders": k, "rate_bits": rate, "num_candidates": n,
                "beta": float(codecs[path].hparams.beta), "ckpt_path": path, "ckpt_sha256": fingerprints[path], "seed": seed,
                "selection_limit": self.selection_limit,
                **{c: summary[c] for c in SELECTION_COLUMNS if c in summary},
            }
            atomic_write_bytes(cache_path, to_csv([selection[_selection_key(*g)] for g in grid
                                                   if _selection_key(*g) in selection]))
        points = []
        for scheme in self.schemes:
            for k in self.num_decoders:
                for rate in self.rate_bits:
                    tried = [selection[_selection_key(scheme, k, rate, n, p)] for n in self.num_candidates
                             if n >= 2**rate for p in self.ckpt_paths]
                    chosen = min(tried, key=lambda row: float(row["mse"]))
                    path, n = chosen["ckpt_path"], int(chosen["num_candidates"])
                    summary = outcome(path, "test", scheme, k, rate, n).summary()
                    points.append({
                        "scheme": scheme, "num_decoders": k, "rate_bits": rate, "num_candidates": n,
                        "split": "test", **summary, "beta": float(codecs[path].hparams.beta),
                        "crop_size": int(codecs[path].hparams.crop_size), "ckpt_path": path,
                        "selection_mse": float(chosen["mse"]), "selection_digits": int(chosen["digits"]),
                        "data": origin,
                    })
                    log.info("%s K=%d R=%d: beta %g, N=%d chosen on val (mse %.4f); test mse %.4f +- %.4f",
                             scheme, k, rate, points[-1]["beta"], n, float(chosen["mse"]), summary["mse"],
                             summary["mse_se"])
        self._write_reports(points, codecs, split_of, outcome, seed, output_dir)
        return points

    def _check_compatible(self, codecs: dict[str, MnistCodecModule]) -> None:
        shapes = {(int(c.hparams.latent_dim), int(c.hparams.crop_size)) for c in codecs.values()}
        if len(shapes) > 1:
            raise ConfigError(f"the checkpoints differ in (latent_dim, crop_size): {sorted(shapes)}; "
                              "compare codecs of one architecture")

    def _write_reports(self, points, codecs, split_of, outcome, seed, output_dir: Path) -> None:
        parts = [markdown_tables(points), paper_comparison_table(points)]
        atomic_write_bytes(output_dir / "results.md", "\n".join(p for p in parts if p).encode())
        plot_rd(points, [], output_dir / "rd_plot.png")
        gls = [p for p in points if p["scheme"] == "gls"] or points
        shown = min(gls, key=lambda p: (-p["num_decoders"], p["rate_bits"]))
        path = shown["ckpt_path"]
        coder = make_coder(seed, codecs[path].hparams.latent_dim, shown["scheme"], shown["num_decoders"],
                           shown["rate_bits"], shown["num_candidates"])
        result = outcome(path, "test", shown["scheme"], shown["num_decoders"], shown["rate_bits"],
                         shown["num_candidates"])
        save_reconstruction_grid(codecs[path].nets, split_of(path, "test"), coder, result,
                                 output_dir / "reconstructions.png")


def _selection_key(scheme: str, k: int, rate: int, n: int, path: str) -> tuple:
    return scheme, int(k), int(rate), int(n), str(path)


def _file_digest(path: str) -> str:
    """First 16 hex digits of the file's SHA-256: tells a retrained checkpoint from the old one."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def _read_selection(path: Path, seed: int, selection_limit: int | None,
                    fingerprints: dict[str, str]) -> dict[tuple, dict]:
    """Validation results of an earlier run into the same directory, kept only where the seed,
    the number of validation digits and the checkpoint's contents are the same."""
    if not path.is_file():
        return {}
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    kept = {}
    for row in rows:
        same_digits = row.get("selection_limit", "") == ("" if selection_limit is None else str(selection_limit))
        same_codec = row.get("ckpt_sha256") == fingerprints.get(row.get("ckpt_path"))
        if row.get("seed") == str(seed) and same_digits and same_codec and row.get("mse"):
            key = _selection_key(row["scheme"], row["num_decoders"], row["rate_bits"], row["num_candidates"],
                                 row["ckpt_path"])
            kept[key] = row
    return kept
