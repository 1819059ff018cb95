"""The paper's MNIST protocol: choose beta and N on the validation split, report on test.

For every (scheme, K, rate) the checkpoint (one per beta) and N in ``num_candidates`` with the
lowest best-of-K MSE on the validation split are chosen, then that configuration is coded on the
test split. Writes into the output directory: ``evaluations.csv`` (every validation and test
result; also the resume cache: a rerun into the same directory skips what it holds) and
``reconstructions.png`` (GLS at the largest K and at ``figure_rate_bits``, by default the lowest
rate). Its report, written from the points it returns by :mod:`dsc.report.job` (``dsc-evaluate``
does after the job): ``results.md`` (test tables, with paper Table 13 beside GLS, and the
baseline's BD-rate against GLS per K, also in ``bd_rate.csv`` where both have 4 or more rates),
``results.csv`` and ``rd_plot.png``.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from dsc.coding import CodingPoint
from dsc.errors import ConfigError
from dsc.eval.image_point import (
    ImageCodecModule,
    PointOutcome,
    SplitFeatures,
    evaluate_point,
    load_codec,
    make_coder,
    save_reconstruction_grid,
    shares_rows_across_decoders,
    split_dataset,
    summarise,
)
from dsc.eval.points import point_labels, to_csv
from dsc.io import atomic_write_bytes
from dsc.progress import progress_bar

log = logging.getLogger(__name__)

SUMMARY_COLUMNS = ("digits", "mse", "mse_se", "per_decoder_mse", "decoder_mse", "match_prob", "match_prob_se")
IMAGE_COLUMNS = ("psnr_db", "psnr_db_se", "ssim", "ssim_se", "per_decoder_psnr_db", "per_decoder_ssim")


@dataclass
class ImageProtocol:
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
    data: dict | None = None  # the image data module's config (``_target_`` ...; None: MNIST, embedded)
    source: str = "mnist"  # the source the points are labelled with
    progress: bool = True
    distortion: str | None = None  # the loss normalisation every codec must have been trained with (None: any)
    figure_rate_bits: int | None = None  # the rate reconstructions.png shows (None: the lowest)

    def __post_init__(self) -> None:
        if not self.ckpt_paths:
            raise ConfigError("ckpt_paths is empty; pass the trained codecs, e.g. ckpt_paths=[a.ckpt,b.ckpt]")
        for name in ("num_candidates", "num_decoders", "rate_bits", "schemes"):
            if getattr(self, name) is None:  # null in a config: the paper's grid
                setattr(self, name, type(self).__dataclass_fields__[name].default_factory())
            values = list(getattr(self, name))
            if not values or len(set(values)) != len(values):
                raise ConfigError(f"{name} must be a non-empty list without repeats, got {values}")
            setattr(self, name, values)
        if self.figure_rate_bits is not None and self.figure_rate_bits not in self.rate_bits:
            raise ConfigError(f"figure_rate_bits={self.figure_rate_bits} is not one of the protocol's rates "
                              f"{list(self.rate_bits)}")
        self.ckpt_paths = [str(p) for p in self.ckpt_paths]
        for scheme in self.schemes:
            for k in self.num_decoders:
                for rate in self.rate_bits:
                    CodingPoint(scheme, k, rate, max(self.num_candidates))  # validates the grid

    def run(self, seed: int, device: torch.device, output_dir: Path) -> list[dict]:
        codecs = {path: load_codec(path, self.distortion).to(device) for path in self.ckpt_paths}
        self._check_compatible(codecs)
        origin = ""
        features: dict[tuple[str, str], SplitFeatures] = {}

        def split_of(path: str, split: str) -> SplitFeatures:
            nonlocal origin
            if (path, split) not in features:
                limit = self.selection_limit if split == "val" else self.limit
                dataset, origin = split_dataset(codecs[path], split, max(self.num_decoders), seed, limit,
                                                self.data)
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

        fingerprints = {path: _file_digest(path) for path in self.ckpt_paths}
        cache = EvaluationCache(output_dir / "evaluations.csv", seed, fingerprints,
                                {"val": self.selection_limit, "test": self.limit})

        def summary_of(split: str, scheme: str, k: int, rate: int, n: int, path: str) -> dict:
            key = (split, scheme, k, rate, n, path)
            if key not in cache:
                summary = summarise(outcome(path, split, scheme, k, rate, n))
                cache.add(key, float(codecs[path].hparams.beta), summary)
            return cache[key]

        grid = [(s, k, r, n, p) for s in self.schemes for k in self.num_decoders for r in self.rate_bits
                for n in self.num_candidates if n >= 2**r for p in self.ckpt_paths]
        todo = [g for g in grid if ("val", *g) not in cache]
        if len(todo) < len(grid):
            log.info("resuming: %d of %d validation results read from %s", len(grid) - len(todo), len(grid),
                     cache.path)
        for point in progress_bar(todo, desc="selection on val", unit="point", disable=not self.progress):
            summary_of("val", *point)
        points = []
        for scheme in self.schemes:
            for k in self.num_decoders:
                for rate in self.rate_bits:
                    tried = [(summary_of("val", scheme, k, rate, n, p)["mse"], n, p) for n in self.num_candidates
                             if n >= 2**rate for p in self.ckpt_paths]
                    selection_mse, n, path = min(tried)
                    selection_digits = summary_of("val", scheme, k, rate, n, path)["digits"]
                    summary = summary_of("test", scheme, k, rate, n, path)
                    points.append({
                        **point_labels(self.source, scheme), **CodingPoint(scheme, k, rate, n).labels(),
                        "split": "test", **summary, "beta": float(codecs[path].hparams.beta),
                        "distortion": codecs[path].hparams.distortion,
                        **{f"trained_{key}": value for key, value in codecs[path].trained_with.items()},
                        "crop_size": int(codecs[path].hparams.crop_size), "ckpt_path": path,
                        "selection_mse": selection_mse, "selection_digits": selection_digits,
                    })
                    log.info("%s K=%d R=%d: beta %g, N=%d chosen on val (mse %.4f); test mse %.4f +- %.4f",
                             scheme, k, rate, points[-1]["beta"], n, selection_mse, summary["mse"],
                             summary["mse_se"])
        self._save_reconstructions(points, codecs, split_of, outcome, seed, output_dir)  # loads the test split
        for point in points:
            point["data"] = origin
        return points

    def _check_compatible(self, codecs: dict[str, ImageCodecModule]) -> None:
        shapes = {(int(c.hparams.latent_dim), int(c.hparams.crop_size)) for c in codecs.values()}
        if len(shapes) > 1:
            raise ConfigError(f"the checkpoints differ in (latent_dim, crop_size): {sorted(shapes)}; "
                              "compare codecs of one architecture")
        normalisations = sorted({c.hparams.distortion for c in codecs.values()})
        if len(normalisations) > 1:
            raise ConfigError(f"the checkpoints were trained with different distortion normalisations "
                              f"{normalisations}, so their betas are not one grid; run the protocol once per "
                              "normalisation")

    def _save_reconstructions(self, points, codecs, split_of, outcome, seed, output_dir: Path) -> None:
        """``reconstructions.png``: GLS (without GLS points, any scheme) at the largest K and at
        ``figure_rate_bits`` (None: the lowest rate), on test digits with the chosen beta and N."""
        gls = [p for p in points if p["scheme"] == "gls"] or points
        at_rate = [p for p in gls if p["rate_bits"] == self.figure_rate_bits] or gls
        shown = min(at_rate, key=lambda p: (-p["num_decoders"], p["rate_bits"]))
        path = shown["ckpt_path"]
        coder = make_coder(seed, codecs[path].hparams.latent_dim, shown["scheme"], shown["num_decoders"],
                           shown["rate_bits"], shown["num_candidates"])
        result = outcome(path, "test", shown["scheme"], shown["num_decoders"], shown["rate_bits"],
                         shown["num_candidates"])
        save_reconstruction_grid(codecs[path].nets, split_of(path, "test"), coder, result,
                                 output_dir / "reconstructions.png")


def _file_digest(path: str) -> str:
    """First 16 hex digits of the file's SHA-256: tells a retrained checkpoint from the old one."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


class EvaluationCache:
    """Every (split, scheme, K, rate, N, checkpoint) summary of a run, kept in a CSV file that is
    rewritten atomically after each new entry; on start it holds what an earlier run into the
    same directory computed with the same seed, the same digit limits and the same checkpoint
    contents (SHA-256), so an interrupted or extended protocol resumes where it stopped. A test
    row written before the image metrics (:data:`IMAGE_COLUMNS`) existed is computed again; a
    validation row, which only the selection by MSE reads, is kept."""

    def __init__(self, path: Path, seed: int, fingerprints: dict[str, str], limits: dict[str, int | None]) -> None:
        self.path, self.seed, self.fingerprints, self.limits = path, seed, fingerprints, limits
        self.rows: dict[tuple, dict] = {}  # as written to the file
        self.summaries: dict[tuple, dict] = {}
        if path.is_file():
            for row in csv.DictReader(io.StringIO(path.read_text())):
                if self._valid(row):
                    key = self._key_of(row)
                    self.rows[key], self.summaries[key] = row, self._parse(row)

    def _valid(self, row: dict) -> bool:
        limit = self.limits.get(row.get("split"), "missing")
        needed = ("mse",) if row.get("split") == "val" else ("mse", *IMAGE_COLUMNS)
        return (row.get("seed") == str(self.seed) and row.get("limit") == ("" if limit is None else str(limit))
                and row.get("ckpt_sha256") == self.fingerprints.get(row.get("ckpt_path"))
                and all(row.get(c) for c in needed))

    @staticmethod
    def _key_of(row: dict) -> tuple:
        return (row["split"], row["scheme"], int(row["num_decoders"]), int(row["rate_bits"]),
                int(row["num_candidates"]), row["ckpt_path"])

    def __contains__(self, key: tuple) -> bool:
        return key in self.summaries

    def __getitem__(self, key: tuple) -> dict:
        """The summary of ``key`` = (split, scheme, K, rate, N, ckpt_path), numbers parsed."""
        return self.summaries[key]

    @staticmethod
    def _parse(row: dict) -> dict:
        summary = {c: float(row[c]) for c in SUMMARY_COLUMNS if c not in ("digits", "decoder_mse")}
        images = {c: float(row[c]) for c in IMAGE_COLUMNS if row.get(c)}
        return {**summary, **images, "digits": int(row["digits"]), "decoder_mse": json.loads(row["decoder_mse"])}

    def add(self, key: tuple, beta: float, summary: dict) -> None:
        split, scheme, k, rate, n, path = key
        self.rows[key] = {
            "split": split, "scheme": scheme, "num_decoders": k, "rate_bits": rate, "num_candidates": n,
            "beta": beta, "ckpt_path": path, "ckpt_sha256": self.fingerprints[path], "seed": self.seed,
            "limit": self.limits[split], **{c: summary.get(c) for c in (*SUMMARY_COLUMNS, *IMAGE_COLUMNS)},
        }
        self.summaries[key] = {c: summary[c] for c in (*SUMMARY_COLUMNS, *IMAGE_COLUMNS) if c in summary}
        atomic_write_bytes(self.path, to_csv(list(self.rows.values())))
