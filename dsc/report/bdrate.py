"""Bjøntegaard delta rates of a sweep's schemes against an anchor scheme, per source and K: the
rows of ``bd_rate.csv`` and their markdown table (the method: :mod:`dsc.report.bjontegaard`)."""

from __future__ import annotations

import math

from dsc.errors import InvalidArgumentError
from dsc.registry import get_source
from dsc.report.bjontegaard import bjontegaard
from dsc.report.collect import is_checked, point_scale

BD_ANCHOR = "gls"
BD_COLUMNS = ("source", "anchor", "scheme", "num_decoders", "bd_rate_percent", "bd_psnr_db", "overlap_low_db",
              "overlap_high_db", "anchor_points", "points", "note")


def quality_db(point: dict) -> float | None:
    """The quality BD-rates compare, ``-10 log10`` of the point's mean best-of-K MSE in dB: minus
    ``mse_db`` on ``db``-scale sources (Gaussian), from ``mse`` on ``linear`` ones (for MNIST
    pixels in [0, 1] the PSNR of the mean MSE, peak 1; infinite for a lossless point); None
    without either."""
    if point_scale(point) == "db":
        return None if point.get("mse_db") is None else -point["mse_db"]
    mse = point.get("mse")
    return None if mse is None else (math.inf if mse == 0 else -10 * math.log10(mse))


def bd_rate_rows(points: list[dict], anchor: str = BD_ANCHOR) -> list[dict]:
    """Per source with ``anchor`` points, per other scheme and per K (every K of the anchor or
    the scheme): the Bjøntegaard delta rate (:mod:`dsc.report.bjontegaard`) of the scheme's curve
    against the anchor's at that K, rate ``rate_bits``, quality :func:`quality_db`; points with
    check bits are left out. Each row has ``bd_rate_percent``, ``bd_psnr_db`` and the shared dB
    interval, or empty numbers and a ``note`` saying why (too few points, not monotone, no overlap,
    no points at that K)."""
    curves: dict[tuple[str, str, int], list[tuple[float, float]]] = {}
    for p in points:
        if p.get("source") and "rate_bits" in p and "num_decoders" in p and not is_checked(p) and \
                quality_db(p) is not None:
            curves.setdefault((p["source"], p["scheme"], p["num_decoders"]), []).append((p["rate_bits"],
                                                                                         quality_db(p)))
    rows = []
    for source in sorted({key[0] for key in curves if key[1] == anchor}):
        schemes = sorted({s for src, s, _ in curves if src == source and s != anchor})
        ks = sorted({k for src, _, k in curves if src == source})
        for scheme in schemes:
            for k in ks:
                base, test = curves.get((source, anchor, k), []), curves.get((source, scheme, k), [])
                row = {"source": source, "anchor": anchor, "scheme": scheme, "num_decoders": k,
                       "anchor_points": len(base), "points": len(test), "bd_rate_percent": None,
                       "bd_psnr_db": None, "overlap_low_db": None, "overlap_high_db": None, "note": ""}
                if not base or not test:
                    row["note"] = f"{anchor if not base else scheme} has no points at K={k}"
                else:
                    try:
                        delta = bjontegaard(*zip(*base), *zip(*test))
                    except InvalidArgumentError as error:
                        row["note"] = str(error)
                    else:
                        row.update(bd_rate_percent=delta.rate_percent, bd_psnr_db=delta.psnr_db,
                                   overlap_low_db=delta.low_db, overlap_high_db=delta.high_db)
                        if delta.psnr_db is None:
                            row["note"] = "BD-PSNR: the curves share no rate range"
                rows.append(row)
    return rows


def bd_rate_table(rows: list[dict]) -> str | None:
    """Markdown of :func:`bd_rate_rows`: per source a scheme x K table, cells ``BD-rate (BD-PSNR)``
    or why the cell is missing. None without rows."""
    parts = []
    for source in sorted({r["source"] for r in rows}):
        mine = [r for r in rows if r["source"] == source]
        anchor, ks = mine[0]["anchor"], sorted({r["num_decoders"] for r in mine})
        quality = "-10 log10(mean best-of-K MSE)" if get_source(source).scale == "db" else \
            "PSNR of the mean best-of-K MSE (peak 1)"
        lines = [f"**BD-rate against {anchor}** ({source}; quality: {quality} in dB): Bjøntegaard delta rate "
                 "(VCEG-M33 cubic fits of log-rate on quality, averaged over the dB range both curves cover); "
                 f"negative: fewer bits than {anchor} for the same quality; BD-PSNR in brackets", "",
                 "| scheme | " + " | ".join(f"K={k}" for k in ks) + " |", "|---" * (len(ks) + 1) + "|"]
        for scheme in sorted({r["scheme"] for r in mine}):
            cells = {r["num_decoders"]: r for r in mine if r["scheme"] == scheme}
            lines.append(f"| {scheme} | " + " | ".join(_bd_cell(cells[k]) for k in ks) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n" if parts else None


def _bd_cell(row: dict) -> str:
    if row["bd_rate_percent"] is None:
        return "n/a: " + row["note"].split(";")[0]
    gain = "" if row["bd_psnr_db"] is None else f" ({round(row['bd_psnr_db'], 2) or 0.0:+.2f} dB)"  # no -0.00
    return f"{round(row['bd_rate_percent'], 1) or 0.0:+.1f} %{gain}"
