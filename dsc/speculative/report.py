"""Summaries and tables of the speculative study: means and standard errors over seeds per
(setting, method, K), token rates against single-draft speculative sampling, the paper's Table 2
beside the mixed-temperature settings, and the token-level cross-check
(:mod:`dsc.speculative.crosscheck`).

Rows are the study's runs: dicts with ``setting``, ``method``, ``drafts``, ``seed``,
``block_efficiency``, ``matching_probability``, ``lml_bound`` and ``token_rate``.
"""

from __future__ import annotations

from collections.abc import Sequence

from dsc.eval.stats import mean_se

# Rowan, Phan & Khisti, "List-Level Distribution Coupling with Applications to Speculative
# Decoding and Lossy Compression" (NeurIPS 2025, arXiv 2506.05632), Table 2 (diverse drafts):
# K = 2 drafts of L = 5 tokens, both from Qwen2.5-0.5B at the two draft temperatures, for a
# Qwen2.5-7B target at temperature 2.0; block efficiency on GSM8K, keyed by
# (target temperature, draft temperatures).
PAPER_TABLE2_GSM8K = {
    (2.0, (0.5, 1.0)): {"specinfer": 4.26, "gls": 4.75},
    (2.0, (1.0, 0.5)): {"specinfer": 4.44, "gls": 4.75},
    (2.0, (1.0, 1.0)): {"specinfer": 4.51, "gls": 4.83},
}
PAPER_TABLE2_SINGLE_DRAFT_GSM8K = 4.28  # the table's single-draft figure for GSM8K (one for all three settings)
# the same table's token rate over single-draft speculative sampling, in %: lowest and highest
# over its three settings and three data sets (GSM8K, HumanEval, MBPP)
PAPER_TABLE2_TOKEN_RATE_PERCENT = {"gls": (5.6, 13.7), "specinfer": (-2.0, 6.3)}
REFERENCE_METHOD = "single_draft"  # the token rate's reference, at K = 1 in the same setting


def paper_figures(target_temperature: float, draft_temperatures: Sequence[float]) -> dict | None:
    """The paper's Table 2 GSM8K block efficiencies (``specinfer``, ``gls``, ``single_draft``)
    for these temperatures, or None where the table has no such setting."""
    key = (round(float(target_temperature), 9), tuple(round(float(t), 9) for t in draft_temperatures))
    found = PAPER_TABLE2_GSM8K.get(key)
    return None if found is None else {**found, "single_draft": PAPER_TABLE2_SINGLE_DRAFT_GSM8K}


def _reference(rows: list[dict]) -> dict[tuple, dict]:
    """(setting, seed) -> that seed's single-draft run in that setting."""
    return {(r["setting"], r["seed"]): r for r in rows if r["method"] == REFERENCE_METHOD and r["drafts"] == 1}


def summarize(rows: list[dict]) -> list[dict]:
    """Per (setting, method, K), in the rows' order: the seeds' mean and ``_se`` of block
    efficiency, first-position match, LML bound and token rate (tokens / s), and ``tr_ratio``:
    the per-seed ratio of the token rate to the single-draft run of the same setting and seed
    (None without single-draft runs)."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["setting"], row["method"], row["drafts"]), []).append(row)
    reference = _reference(rows)
    summary = []
    for (setting, method, drafts), runs in groups.items():
        entry = {"setting": setting, "method": method, "drafts": drafts, "seeds": len(runs)}
        for key in ("block_efficiency", "matching_probability", "lml_bound", "token_rate"):
            entry[key], entry[f"{key}_se"] = mean_se(r[key] for r in runs)
        ratios = [r["token_rate"] / reference[setting, r["seed"]]["token_rate"] for r in runs
                  if (setting, r["seed"]) in reference]
        entry["tr_ratio"], entry["tr_ratio_se"] = mean_se(ratios) if len(ratios) == len(runs) else (None, None)
        summary.append(entry)
    return summary


def compare(settings: list[dict], rows: list[dict], crosschecks: dict[str, dict]) -> list[dict]:
    """Per mixed setting (``settings``: dicts with ``name``, ``mixed``, ``target_temperature``,
    ``draft_temperatures``): the per-seed difference GLS - SpecInfer in block efficiency (mean,
    ``_se``), the paper's figures (or None) and the setting's cross-check (or None)."""
    out = []
    for setting in (s for s in settings if s["mixed"]):
        by_seed = {(r["method"], r["seed"]): r["block_efficiency"] for r in rows if r["setting"] == setting["name"]}
        seeds = sorted({seed for method, seed in by_seed if method == "gls"} &
                       {seed for method, seed in by_seed if method == "specinfer"})
        diffs = [by_seed["gls", s] - by_seed["specinfer", s] for s in seeds]
        diff, diff_se = mean_se(diffs) if diffs else (None, None)
        out.append({"setting": setting["name"], "target_temperature": setting["target_temperature"],
                    "draft_temperatures": list(setting["draft_temperatures"]), "length": setting["length"],
                    "gls_minus_specinfer": diff, "gls_minus_specinfer_se": diff_se,
                    "paper": paper_figures(setting["target_temperature"], setting["draft_temperatures"]),
                    "crosscheck": crosschecks.get(setting["name"])})
    return out


def _pm(mean: float | None, se: float | None, digits: int = 3, scale: float = 1.0, shift: float = 0.0) -> str:
    if mean is None:
        return "-"
    return f"{(mean + shift) * scale:.{digits}f} +- {se * scale:.{digits}f}"


def _runs_table(summary: list[dict]) -> list[str]:
    lines = ["| setting | method | K | block efficiency | first-position match | LML bound | tokens / s | TR % |",
             "|---|---|---|---|---|---|---|---|"]
    for s in summary:
        bound = f"{s['lml_bound']:.3f}" if s["setting"] == "iid" else "-"  # the bound assumes i.i.d. drafts
        reference = s["method"] == REFERENCE_METHOD and s["drafts"] == 1
        rate = "reference" if reference else _pm(s["tr_ratio"], s["tr_ratio_se"], 1, 100.0, -1.0)
        lines.append(f"| {s['setting']} | {s['method']} | {s['drafts']} | "
                     f"{_pm(s['block_efficiency'], s['block_efficiency_se'])} | {s['matching_probability']:.3f} | "
                     f"{bound} | {_pm(s['token_rate'], s['token_rate_se'], 1)} | {rate} |")
    return lines


def _paper_table(comparison: list[dict], summary: list[dict]) -> list[str]:
    found = {(s["setting"], s["method"]): s for s in summary}
    paper_tr = {m: f"{a:+.1f} to {b:+.1f}" for m, (a, b) in PAPER_TABLE2_TOKEN_RATE_PERCENT.items()}
    intro = ("Block efficiency beside the paper's Table 2 (GSM8K); GLS - SpecInfer here: the per-seed "
             f"difference; TR %: token rate over single draft (the paper: GLS {paper_tr['gls']} %, SpecInfer "
             f"{paper_tr['specinfer']} % over its settings and data sets).")
    columns = ("| setting | SpecInfer: paper | SpecInfer: here | GLS: paper | GLS: here | GLS - SpecInfer: paper | "
               "GLS - SpecInfer: here | single draft: paper | single draft: here | TR % GLS | TR % SpecInfer |")
    lines = [intro, "", columns, "|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in comparison:
        paper = c["paper"] or {}
        cells = {m: found.get((c["setting"], m)) for m in ("specinfer", "gls", REFERENCE_METHOD)}
        here = {m: _pm(s["block_efficiency"], s["block_efficiency_se"], 2) if s else "-" for m, s in cells.items()}
        tr = {m: _pm(s["tr_ratio"], s["tr_ratio_se"], 1, 100.0, -1.0) if s else "-" for m, s in cells.items()}
        gap = f"{paper['gls'] - paper['specinfer']:.2f}" if paper else "-"
        lines.append(f"| {c['setting']} | {paper.get('specinfer', '-')} | {here['specinfer']} | "
                     f"{paper.get('gls', '-')} | {here['gls']} | {gap} | "
                     f"{_pm(c['gls_minus_specinfer'], c['gls_minus_specinfer_se'], 2)} | "
                     f"{paper.get(REFERENCE_METHOD, '-')} | {here[REFERENCE_METHOD]} | {tr['gls']} | "
                     f"{tr['specinfer']} |")
    return lines


def _crosscheck_table(comparison: list[dict], summary: list[dict]) -> list[str]:
    found = {(s["setting"], s["method"]): s["matching_probability"] for s in summary}
    intro = ("Token-level cross-check on the first position of every block of the setting's GLS and SpecInfer "
             "runs (mean +- SE over positions; GLS: Monte Carlo, its own noise, +- its Monte Carlo SE), beside "
             "the block loop's first-position acceptance:")
    columns = ("| setting | positions | SpecInfer (exact) | GLS match (MC) | GLS - SpecInfer | single draft 1 - TV | "
               "loop: SpecInfer | loop: GLS |")
    lines = [intro, "", columns, "|---|---|---|---|---|---|---|---|"]
    for c in comparison:
        x = c["crosscheck"]
        if x is None:
            continue
        loop = {m: found.get((c["setting"], m)) for m in ("specinfer", "gls")}
        lines.append(f"| {c['setting']} | {x['positions']} | {_pm(x['specinfer'], x['specinfer_se'])} | "
                     f"{_pm(x['gls'], x['gls_mc_se'], 4)} | "
                     f"{_pm(x['gls_minus_specinfer'], x['gls_minus_specinfer_se'])} | "
                     f"{_pm(x['single_draft'], x['single_draft_se'])} | "
                     + " | ".join("-" if v is None else f"{v:.3f}" for v in loop.values()) + " |")
    return lines


def markdown(summary: list[dict], comparison: list[dict], header: str) -> str:
    """results.md: ``header``, the runs' table, and for mixed settings the paper's Table 2 beside
    the measured block efficiencies and the token-level cross-check."""
    lines = [header, "", *_runs_table(summary)]
    if comparison:
        lines += ["", *_paper_table(comparison, summary)]
    if any(c["crosscheck"] for c in comparison):
        lines += ["", *_crosscheck_table(comparison, summary)]
    return "\n".join(lines) + "\n"
