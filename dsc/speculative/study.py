"""Block efficiency of multi-draft speculative sampling with a transformers target and drafter.

    python -m dsc.speculative.study --out outputs/speculative      # the default grid
    python -m dsc.speculative.study --drafts 1,2 --seeds 2 --tokens 8 --mixed "" --out /tmp/quick
    python -m dsc.speculative.study --target Qwen/Qwen2.5-7B-Instruct --drafter Qwen/Qwen2.5-0.5B-Instruct \\
        --device cuda --dtype bfloat16 --chat-template

Models (``--target``, ``--drafter``): a hub id, a local directory or a GGUF file
(:mod:`dsc.speculative.loading`); the target defaults to the embedded SmolLM2-135M-Instruct
GGUF file (offline). Target and drafter must share a tokenizer; distributions are taken over
its vocabulary. ``--chat-template`` wraps each prompt as a user turn of an instruct model.

Drafter: by default the target model itself at ``--draft-temperature`` (2.0 by default); a
separate ``--drafter`` also drafts at that temperature. Block efficiency counts target calls
only, so the drafter's cost does not enter it; a drafter that is the same network at another
temperature gives a controlled, high-acceptance setting on one offline model (an n-gram drafter
would accept too rarely to tell methods apart, and the network cut after fewer layers agrees
with the full one on under 35 % of the probability mass). The second setting draws the K drafts
at different temperatures (``--mixed TARGET:T1,T2``, repeatable; the paper's heterogeneous
drafts with target temperature 2 and L = ``--mixed-length`` = 5), where SpecTr's i.i.d.
assumption does not hold and it is left out. Both draft orders run by default, since
SpecInfer's result depends on the order and GLS's, in distribution, does not.

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

from dsc.environment import environment_record, resolve_device
from dsc.errors import ConfigError
from dsc.io import atomic_write_bytes, atomic_write_json
from dsc.speculative.backend import CausalLM
from dsc.speculative.distributions import probabilities
from dsc.speculative.generate import generate
from dsc.speculative.loading import DTYPES, load_models, load_tokenizer_pair, resolve_dtype
from dsc.speculative.noise import SharedNoise
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


def check_sampling(top_k: int, temperatures: Sequence[float]) -> None:
    """Sampling settings: every temperature > 0, top-k an integer >= 1."""
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ConfigError(f"top-k must be an integer >= 1, got {top_k!r}")
    bad = [t for t in temperatures if not (isinstance(t, (int, float)) and math.isfinite(t) and t > 0)]
    if bad or not temperatures:
        raise ConfigError(f"temperatures must be finite and > 0, got {list(temperatures)!r}")


class Models:
    """Target and drafter callables of :func:`~dsc.speculative.generate.generate` over two
    :class:`CausalLM` (the drafter is the target itself unless given; drafts k = 0, 1, ... cycle
    through ``draft_temperatures``)."""

    def __init__(self, target: CausalLM, top_k: int, target_temperature: float, draft_temperatures: Sequence[float],
                 drafter: CausalLM | None = None):
        check_sampling(top_k, [target_temperature, *draft_temperatures])
        self.target, self.drafter, self.top_k = target, target if drafter is None else drafter, top_k
        self.target_temperature, self.draft_temperatures = target_temperature, list(draft_temperatures)

    def target_block(self, tokens, lengths, count):
        return probabilities(self.target.tail_logits(tokens, lengths, count), self.target_temperature, self.top_k)

    def draft_next(self, tokens, lengths, drafts):
        logits = self.drafter.tail_logits(tokens, lengths)[:, 0].double()
        temps = torch.tensor(self.draft_temperatures, dtype=torch.float64, device=logits.device)
        return probabilities(logits / temps[drafts % len(temps)][:, None], 1.0, self.top_k)  # top-k: scale-free


def encode_prompts(tokenizer, prompts: Sequence[str], chat_template: bool = False) -> list[list[int]]:
    """Token ids of each prompt, with the tokenizer's own special-token rule (e.g. a BOS token);
    ``chat_template``: the prompt as a user turn, followed by the assistant's turn header."""
    if not chat_template:
        return [tokenizer(p)["input_ids"] for p in prompts]
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError("--chat-template: this tokenizer has no chat template (a base model, not an instruct one)")
    texts = [tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
             for p in prompts]
    return [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]


def run_setting(models: Models, method: str, drafts: int, length: int, tokens: int, seed: int,
                prompts: Sequence[Sequence[int]]) -> dict:
    """One (method, K, L, seed) run over the encoded ``prompts``; the row holds the generated
    token ids (``"tokens"``) with the block efficiency, first-position match and LML bound."""
    device = models.target.device
    width = max(map(len, prompts))
    batch = torch.zeros(len(prompts), width, dtype=torch.long, device=device)
    for i, ids in enumerate(prompts):
        batch[i, :len(ids)] = torch.tensor(ids)
    matches, bounds = [], []

    def on_block(x, p, q, verified):
        matches.extend(verified.accepted[:, 0].double().tolist())
        bounds.extend(lml_bound(p[b, 0, 0], q[b, 0, 0], drafts) for b in range(len(x)))

    out = generate(method, batch, torch.tensor([len(ids) for ids in prompts], device=device), tokens, drafts, length,
                   models.draft_next, models.target_block, SharedNoise(seed), on_block=on_block)
    return {"method": method, "drafts": drafts, "seed": seed,
            "block_efficiency": out.emitted.sum().item() / out.target_calls.sum().item(),
            "matching_probability": statistics.fmean(matches), "lml_bound": statistics.fmean(bounds),
            "tokens": out.tokens.tolist()}


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
    parser.add_argument("--target", default=None, help="hub id, local directory or .gguf file "
                                                       "(default, or smollm2: the embedded SmolLM2-135M-Instruct)")
    parser.add_argument("--drafter", default=None, help="like --target, same tokenizer (default: the target itself)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--dtype", default="float32", choices=tuple(DTYPES))
    parser.add_argument("--chat-template", action="store_true", help="prompts as user turns (instruct models)")
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
    try:  # every setting is checked before a model is loaded
        mixed = [parse_mixed(spec) for spec in (MIXED_DEFAULT if args.mixed is None else args.mixed) if spec]
        check_sampling(args.top_k, [args.temperature, args.draft_temperature])
        for name in ("length", "tokens", "seeds", "mixed_length"):
            if getattr(args, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
        device, dtype = resolve_device(args.device), resolve_dtype(args.dtype)
        tokenizer, sources = load_tokenizer_pair(args.target, args.drafter)
        prompts = encode_prompts(tokenizer, PROMPTS, args.chat_template)
        target_model, drafter_model = load_models(*sources, len(tokenizer), device, dtype)
    except ConfigError as error:
        parser.error(str(error))
    names = sources[0].spec, "the target" if sources[1] is None else sources[1].spec
    log.info("target %s, drafter %s (%s, %s), %d prompts, %d tokens each, L = %d, top-k %d", *names, device, args.dtype,
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
        models = Models(target_model, args.top_k, target, temps, drafter=drafter_model)
        row = run_setting(models, method, k, length, args.tokens, seed, prompts)
        generated = row.pop("tokens")
        rows.append({"setting": setting, "length": length, **row, "text": [tokenizer.decode(t) for t in generated]})
    summary = summarize(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "results.json", {"args": {k: str(v) for k, v in vars(args).items()},
                                                   "environment": environment_record(device),
                                                   "summary": summary, "runs": rows,
                                                   "seconds": time.perf_counter() - start})
    text = markdown(summary, f"target {names[0]}, top-k {args.top_k}; iid: target at temperature "
                             f"{args.temperature:g}, drafts = {names[1]} at temperature {args.draft_temperature:g}, "
                             f"L = {args.length}; mixed settings: temperatures as named, L = {args.mixed_length}; "
                             f"{len(PROMPTS)} prompts x {args.tokens} tokens, {args.seeds} seeds, mean +- SE over "
                             f"seeds, {device} {args.dtype}, {time.perf_counter() - start:.0f} s")
    atomic_write_bytes(args.out / "results.md", text.encode())
    print(text)


if __name__ == "__main__":
    main()
