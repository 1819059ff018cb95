"""A sweep's points as tables: the tidy CSV (one row per point; :func:`to_csv` and
:func:`tabulate`, from :mod:`dsc.eval.points`, where jobs write their own records with it) and
the markdown of ``results.md`` (K x rate tables per metric and scheme, practical decoder
selection, image codecs)."""

from __future__ import annotations

from dsc.eval.points import tabulate, to_csv  # noqa: F401 (re-exported: the reports' and studies' CSV)
from dsc.report.collect import distortion_label, is_checked, is_codec_point, point_scale

# (key, description, digits): dB-scale sources have the first two, linear ones the rest; {measure}:
# what the points' sources name their distortion (their distortion_name)
TABLE_METRICS = (
    ("distortion_db", "distortion dB (mean over trials of best-of-K per-trial dB)", 2),
    ("mse_db", "10 log10 of the mean best-of-K {measure}", 2),
    ("mse", "{measure}, best of K", 4),
    ("psnr_db", "PSNR dB (mean over digits of per-digit PSNR, peak 1), best of K by MSE", 2),
    ("ssim", "SSIM (mean over digits, single-scale, 11x11 Gaussian window), best of K by MSE", 4),
)


def _setting(point: dict) -> str:
    """What was chosen for a point, for the tables: the operating point a protocol chose, the
    quantiser step (nested quantiser), s2 (GLS on the Gaussian source), or N and beta."""
    if "operating_point" in point:
        return str(point["operating_point"])
    if point.get("method") == "nested_scalar":
        return f"step {point['step']:.3g}"
    if point.get("source") == "gaussian" and "s2" in point:
        return f"s2 {point['s2']:g}"
    beta = f", beta {point['beta']:g}" if "beta" in point else ""
    return f"N {point.get('num_candidates', '')}{beta}"


def _chosen_by(points: list[dict]) -> str:
    """`` (chosen by <metric>)`` for points whose operating point was chosen by a metric, else ''."""
    metrics = sorted({p.get("select_by") or p.get("selection_metric") for p in points
                      if p.get("selection_trials", 1) and (p.get("select_by") or p.get("selection_metric"))})
    return f" (chosen by {' / '.join(metrics)})" if metrics else ""


def practical_table(points: list[dict]) -> str | None:
    """Oracle best-of-K vs practical selection for every point with check bits (Gaussian: MSE
    in dB; MNIST: MSE per pixel), or None."""
    rows = sorted((p for p in points if is_checked(p) and "accept_rate" in p),
                  key=lambda p: (p["scheme"], p["num_decoders"], p["rate_bits"], p["check_bits"]))
    if not rows:
        return None
    lines = ["**practical decoder selection** (c check bits per message; any-pass: the first decoder whose "
             "check passes, else decoder 0's fallback from its side information alone)", "",
             "| scheme | K | label bits | c | total bits | oracle best-of-K MSE | any-pass MSE | "
             "per-decoder MSE (with fallback) | picks accepted | wrong picks accepted |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for p in rows:
        db = point_scale(p) == "db"
        keys = ("mse_db", "practical_mse_db", "per_decoder_practical_mse_db") if db else \
            ("mse", "practical_mse", "per_decoder_practical_mse")
        cells = " | ".join(f"{p[key]:.2f} dB" if db else f"{p[key]:.4f}" for key in keys)
        lines.append(f"| {p['scheme']} | {p['num_decoders']} | {p['rate_bits']} | {p['check_bits']} | "
                     f"{p['rate_bits'] + p['check_bits']} | {cells} | {p['accept_rate']:.3f} | "
                     f"{p['false_accept_rate']:.4f} |")
    return "\n".join(lines)


def _codec_setting(point: dict) -> str:
    if point["method"] == "learned_codec":
        return f"lambda {point['lmbda']:g}"
    return "" if point.get("quality") is None else str(point["quality"])


def markdown_tables(points: list[dict]) -> str | None:
    """Per metric and scheme, a K x rate table with what was chosen in brackets (Gaussian:
    ``distortion_db`` and ``mse_db``; MNIST: ``mse``). None without RD points."""
    parts = []
    for key, description, digits in TABLE_METRICS:
        rd = [p for p in points if key in p and "rate_bits" in p and "num_decoders" in p and not is_codec_point(p)
              and not is_checked(p) and not (key == "mse" and point_scale(p) == "db")]  # dB sources: in dB
        rates = sorted({p["rate_bits"] for p in rd})
        for scheme in sorted({p["scheme"] for p in rd}):
            cells = {(p["num_decoders"], p["rate_bits"]): p for p in rd if p["scheme"] == scheme}
            measure = distortion_label(list(cells.values()), "squared error" if key == "mse_db" else "MSE per pixel")
            lines = [
                f"**{scheme}**: {description.format(measure=measure)}, chosen setting in brackets"
                f"{_chosen_by(list(cells.values()))}",
                "",
                "| K \\ R bits | " + " | ".join(str(r) for r in rates) + " |",
                "|---" * (len(rates) + 1) + "|",
            ]
            for k in sorted({key_[0] for key_ in cells}):
                row = ["" if (k, r) not in cells else f"{cells[(k, r)][key]:.{digits}f} ({_setting(cells[(k, r)])})"
                       for r in rates]
                lines.append(f"| {k} | " + " | ".join(row) + " |")
            parts.append("\n".join(lines))
    practical = practical_table(points)
    if practical:
        parts.append(practical)
    codecs = sorted((p for p in points if is_codec_point(p) and "mse" in p),
                    key=lambda p: (p["scheme"], p["rate_bits"]))
    if codecs:
        lines = ["**image codecs** (classical: no side information; learned: as named), bits per image half "
                 "from the real bytes; PSNR: mean per-image PSNR (peak 1)", "",
                 "| codec | quality or lambda | bits | MSE | PSNR dB | SSIM |", "|---|---|---|---|---|---|"]
        lines += [f"| {p['scheme']} | {_codec_setting(p)} | {p['rate_bits']:.1f} | {p['mse']:.5f} | "
                  f"{_number(p.get('psnr_db'), 2)} | {_number(p.get('ssim'), 4)} |" for p in codecs]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n" if parts else None


def _number(value, digits: int) -> str:
    """A table cell: the value to ``digits`` decimals, empty where a point lacks it (old results)."""
    return "" if value is None else f"{value:.{digits}f}"
