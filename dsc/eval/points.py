"""Labels shared by every rate-distortion job's result points (the coding point itself, validated
and labelled, is :class:`dsc.coding.CodingPoint`), and points as a tidy CSV (one row per point),
which jobs write as their records and reports as their tables."""

from __future__ import annotations

import csv
import io
import json
from typing import Sequence

CODEC_METHODS = ("classical_codec", "learned_codec")  # methods with any rate (image codecs), not a K x rate grid


def point_labels(source: str, method: str) -> dict:
    """The two labels every result point carries, and that reports dispatch on: the registered
    ``source`` (dsc.registry) it was measured on and the ``method`` that coded it (``gls``,
    ``shared_randomness``, ``nested_scalar``, ``classical_codec``, ``learned_codec``)."""
    return {"source": source, "method": method}


LEADING_COLUMNS = (
    "scheme", "num_decoders", "rate_bits", "num_candidates",
    "distortion_db", "distortion_db_se", "mse_db", "mse_db_se",
    "per_decoder_mse_db", "per_decoder_mse_db_se", "match_prob", "match_prob_se",
    "check_bits", "practical_mse_db", "per_decoder_practical_mse_db", "accept_rate", "false_accept_rate",
    "prop4_error_bound", "s2", "trials", "repetitions", "se_over",
)


def table_columns(rows: list[dict]) -> list[str]:
    """The columns of ``rows``: the leading columns they have first, the rest in order of appearance."""
    columns = [c for c in LEADING_COLUMNS if any(c in r for r in rows)]
    for row in rows:
        columns += [c for c in row if c not in columns]
    return columns


def tabulate(rows: list[dict], columns: Sequence[str] | None = None) -> tuple[list[str], list[list]]:
    """``(columns, data)``: one list of cells per row, ``columns`` in that order (default
    :func:`table_columns`); a missing cell is None, a list or mapping its JSON text."""
    columns = table_columns(rows) if columns is None else list(columns)
    cell = lambda value: json.dumps(value, sort_keys=True) if isinstance(value, (list, dict)) else value  # noqa: E731
    return columns, [[cell(row.get(c)) for c in columns] for row in rows]


def to_csv(rows: list[dict], columns: Sequence[str] | None = None) -> bytes:
    """The CSV of :func:`tabulate`: one row per point, an empty cell where a row lacks a column."""
    columns, data = tabulate(rows, columns)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([["" if value is None else str(value) for value in cells] for cells in data])
    return buffer.getvalue().encode()
