"""Block efficiency of multi-draft speculative sampling with SmolLM2-135M as the target.

    python -m dsc.speculative.study --out outputs/speculative      # the default grid
    python -m dsc.speculative.study --drafts 1,2 --seeds 2 --tokens 8 --mixed "" --out /tmp/quick

Drafter: the target model itself at ``--draft-temperature`` (2.0 by default). Block efficiency
counts target calls only, so the drafter's cost does not enter it; a drafter that is the same
network at another temperature gives a controlled, high-acceptance setting on one offline model
(an n-gram drafter would accept too rarely to tell methods apart, and the network cut after
fewer layers agrees with the full one on under 35 % of the probability mass). The second
setting draws the K drafts at different temperatures (``--mixed TARGET:T1,T2``, repeatable;
the paper's heterogeneous drafts with target temperature 2 and L = ``--mixed-length`` = 5),
where SpecTr's i.i.d. assumption does not hold and it is left out. Both draft orders run by
default, since SpecInfer's result depends on the order and GLS's, in distribution, does not.

Per (method, K, seed): block efficiency = generated tokens / target calls over all prompts
(bonus tokens included), and for K >= 1 the matching probability of the first position of each
block next to the list matching lemma bound computed from that position's p and q. Results:
``results.json`` and ``results.md`` (mean +- standard error over seeds), written atomically.
"""

from __future__ import annotations

import argparse
import logging
import math
import statistics
import time
from pathlib import Path
from typing import Sequence

import torch
from tqdm.auto import tqdm

from dsc.errors import ConfigError
from dsc.io import atomic_write_bytes, atomic_write_json
from dsc.speculative.distributions import probabilities
from dsc.speculative.generate import generate
from dsc.speculative.noise import SharedNoise
from dsc.speculative.smollm import SmolLM
from dsc.speculative.verifiers import SINGLE_DRAFT_METHODS

log = logging.getLogger("dsc.speculative.study")

PROMPTS = (
    "The capital of France is",
    "Here is a short story about a robot who learns to paint:",
    "def fibonacci(n):",
    "Three tips for staying healthy are",
    "Question: Natalia sold clips to 48 of her friends in April, and then she sold half as many clips "
    "in May. How many clips did Natalia sell altogether in April and May?\nAnswer:",
    "import numpy as np\n\ndef moving_average(x, window):\n",
    "Why is the sky blue? Explain it to a ten year old.",
    "The three most important events of the nineteenth century were",
)
MIXED_DEFAULT = ("2.0:1.0,4.0", "2.0:4.0,1.0")


def lml_bound(p: torch.Tensor, q: torch.Tensor, k: int) -> float:
    """The list matching lemma bound sum_j K / sum_i [max(q_i/q_j, p_i/p_j) + (K-1) q_i/q_j] over
    the support of q (``p``, ``q`` ``[V]``), in O(V log V) via sorting by p_i/q_i."""
    keep = q > 0
    outside = p[~keep].double().sum()  # tokens q never emits: r_i = inf, in every j's "above" sum
    p, q = p[keep].double(), q[keep].double()
    ratio = p / q  # sort by r_i = p_i / q_i: max(q_i/q_j, p_i/p_j) = (q_i/q_j) max(1, r_i/r_j)
    order = torch.argsort(ratio)
    r, qs, ps = ratio[order], q[order], p[order]
    q_below = torch.cumsum(qs, 0) - qs  # sum of q_i with r_i < r_j (ties: either side gives the same term)
    p_above = p.sum() - torch.cumsum(ps, 0) + ps + outside  # sum of p_i with r_i >= r_j
    denominator = (q_below / qs) + (p_above / ps) + (k - 1) / qs
    return float((k / denominator).sum())


class Models:
    """Target and drafter callables over one SmolLM instance."""

    def __init__(self, model: SmolLM, top_k: int, target_temperature: float, draft_temperatures: Sequence[float]):
        self.model, self.top_k = model, top_k
        self.target_temperature, self.draft_temperatures = target_temperature, list(draft_temperatures)

    def target_block(self, tokens, lengths, count):
        return probabilities(self.model.tail_logits(tokens, lengths, count), self.target_temperature, self.top_k)

    def draft_next(self, tokens, lengths, drafts):
        logits = self.model.tail_logits(tokens, lengths)[:, 0].double()
        temps = torch.tensor(self.draft_temperatures, dtype=torch.float64)[drafts % len(self.draft_temperatures)]
        return probabilities(logits / temps[:, None], 1.0, self.top_k)  # top-k is unchanged by a positive scale


def run_setting(models: Models, method: str, drafts: int, length: int, tokens: int, seed: int,
                prompts: Sequence[str]) -> dict:
    encoded = [models.model.encode(p) for p in prompts]
    width = max(map(len, encoded))
    batch = torch.full((len(encoded), width), models.model.eos)
    for i, ids in enumerate(encoded):
        batch[i, :len(ids)] = torch.tensor(ids)
    matches, bounds = [], []

    def on_block(x, p, q, verified):
        matches.extend(verified.accepted[:, 0].double().tolist())
        bounds.extend(lml_bound(p[b, 0, 0], q[b, 0, 0], drafts) for b in range(len(x)))

    out = generate(method, batch, torch.tensor([len(ids) for ids in encoded]), tokens, drafts, length,
                   models.draft_next, models.target_block, SharedNoise(seed),
                   sequences=torch.arange(len(encoded)), on_block=on_block)
    return {"method": method, "drafts": drafts, "seed": seed,
            "block_efficiency": out.emitted.sum().item() / out.target_calls.sum().item(),
            "matching_probability": statistics.fmean(matches), "lml_bound": statistics.fmean(bounds),
            "text": [models.model.decode(t) for t in out.tokens.tolist()]}


def parse_mixed(spec: str) -> tuple[float, list[float]]:
    """``"2.0:1.0,4.0"`` -> (target temperature 2.0, draft temperatures [1.0, 4.0])."""
    try:
        target, drafts = spec.split(":")
        temps = (float(target), [float(t) for t in drafts.split(",")])
    except ValueError:
        raise ConfigError(f"--mixed wants TARGET:T1,T2,... (e.g. 2.0:1.0,4.0), got {spec!r}") from None
    if min(temps[0], *temps[1]) <= 0 or len(temps[1]) < 2:
        raise ConfigError(f"--mixed needs positive temperatures and at least two drafts, got {spec!r}")
    return temps


def summarize(rows: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["setting"], row["method"], row["drafts"]), []).append(row)
    summary = []
    for (setting, method, drafts), runs in groups.items():
        entry = {"setting": setting, "method": method, "drafts": drafts, "seeds": len(runs)}
        for key in ("block_efficiency", "matching_probability", "lml_bound"):
            values = [r[key] for r in runs]
            entry[key] = statistics.fmean(values)
            entry[f"{key}_se"] = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0
        summary.append(entry)
    return summary


def markdown(summary: list[dict], header: str) -> str:
    lines = [header, "", "| setting | method | K | block efficiency | first-position match | LML bound |",
             "|---|---|---|---|---|---|"]
    for s in summary:
        bound = f"{s['lml_bound']:.3f}" if s["setting"] == "iid" else "-"  # the bound assumes i.i.d. drafts
        lines.append(f"| {s['setting']} | {s['method']} | {s['drafts']} | {s['block_efficiency']:.3f} +- "
                     f"{s['block_efficiency_se']:.3f} | {s['matching_probability']:.3f} | {bound} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dsc.speculative.study", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("outputs/speculative"))
    parser.add_argument("--methods", default="gls,specinfer,spectr,single_draft")
    parser.add_argument("--drafts", default="1,2,4,8", help="K values (single_draft always runs K = 1)")
    parser.add_argument("--length", type=int, default=4, help="L draft tokens per block")
    parser.add_argument("--tokens", type=int, default=24, help="tokens generated per prompt")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--top-k", type=int, default=50)
    parser.add_argument("--temperature", type=float, default=1.0, help="target temperature")
    parser.add_argument("--draft-temperature", type=float, default=2.0)
    parser.add_argument("--mixed", action="append", default=None, metavar="TARGET:T1,T2",
                        help="target temperature and one temperature per draft (GLS vs SpecInfer); "
                             f"repeatable, default {' and '.join(MIXED_DEFAULT)}; \"\" skips the setting")
    parser.add_argument("--mixed-length", type=int, default=5, help="L in the mixed-temperature setting")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    start = time.perf_counter()
    try:
        mixed = [parse_mixed(spec) for spec in (MIXED_DEFAULT if args.mixed is None else args.mixed) if spec]
    except ConfigError as error:
        parser.error(str(error))
    model = SmolLM()
    log.info("target: SmolLM2-135M (GGUF, CPU float32), %d prompts, %d tokens each, L = %d, top-k %d",
             len(PROMPTS), args.tokens, args.length, args.top_k)
    jobs = []  # (setting, method, K, L, seed, target temperature, draft temperatures)
    for method in filter(None, args.methods.split(",")):  # --methods "": the mixed settings only
        for k in ([1] if method in SINGLE_DRAFT_METHODS else [int(v) for v in args.drafts.split(",")]):
            jobs += [("iid", method, k, args.length, seed, args.temperature, [args.draft_temperature])
                     for seed in range(args.seeds)]
    for target, temps in mixed:
        setting = f"target {target:g}, drafts {', '.join(f'{t:g}' for t in temps)}"
        jobs += [(setting, method, len(temps), args.mixed_length, seed, target, temps)
                 for method in ("gls", "specinfer") for seed in range(args.seeds)]
    rows = []
    for setting, method, k, length, seed, target, temps in tqdm(jobs, desc="speculative study", unit="run"):
        models = Models(model, args.top_k, target, temps)
        rows.append({"setting": setting, "length": length,
                     **run_setting(models, method, k, length, args.tokens, seed, PROMPTS)})
    summary = summarize(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "results.json", {"args": {k: str(v) for k, v in vars(args).items()},
                                                   "summary": summary, "runs": rows,
                                                   "seconds": time.perf_counter() - start})
    text = markdown(summary, f"SmolLM2-135M target, top-k {args.top_k}; iid: target at temperature "
                             f"{args.temperature:g}, drafts = the target at temperature {args.draft_temperature:g}, "
                             f"L = {args.length}; mixed settings: temperatures as named, L = {args.mixed_length}; "
                             f"{len(PROMPTS)} prompts x {args.tokens} tokens, {args.seeds} seeds, mean +- SE over "
                             f"seeds, {time.perf_counter() - start:.0f} s")
    atomic_write_bytes(args.out / "results.md", text.encode())
    print(text)


if __name__ == "__main__":
    main()
