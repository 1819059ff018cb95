"""Block efficiency and token rate of multi-draft speculative sampling with a transformers target
and drafter, with a token-level cross-check of the verifiers.

    python -m dsc.speculative.study --out outputs/speculative      # the default grid
    python -m dsc.speculative.study --drafts 1,2 --seeds 2 --tokens 8 --mixed "" --out /tmp/quick
    python -m dsc.speculative.study --methods "" --out outputs/table2  # the paper's Table 2 settings only
    python -m dsc.speculative.study --target Qwen/Qwen2.5-7B-Instruct --drafter Qwen/Qwen2.5-0.5B-Instruct \\
        --device cuda --dtype bfloat16 --chat-template

Models (``--target``, ``--drafter``): a hub id, a local directory or a GGUF file
(:mod:`dsc.speculative.loading`); the target defaults to the embedded SmolLM2-135M-Instruct
GGUF file (offline). Target and drafter must share a tokenizer; distributions are taken over
its vocabulary. ``--chat-template`` wraps each prompt as a user turn of an instruct model.

Settings. ``iid``: the target at ``--temperature``, K i.i.d. drafts at ``--draft-temperature``
(2.0 by default; the drafter is the target itself unless ``--drafter`` is given), L =
``--length``, every method of ``--methods`` at every K of ``--drafts``. Block efficiency counts
target calls only, so a drafter that is the same network at another temperature gives a
controlled, high-acceptance setting on one offline model (an n-gram drafter would accept too
rarely to tell methods apart). Mixed settings (``--mixed TARGET:T1,T2``, repeatable): K drafts at
different temperatures, L = ``--mixed-length``; by default the paper's Table 2 (target 2.0,
drafts (0.5, 1.0), (1.0, 0.5), (1.0, 1.0), L = 5). Each runs GLS and SpecInfer (SpecTr assumes
i.i.d. drafts and is left out) and, as the token rate's reference, single-draft speculative
sampling with one draft at the first draft temperature.

Per run (method, K, seed; all prompts batched): block efficiency = emitted tokens / target
calls (bonus tokens included); the first position's match rate beside the list matching lemma
bound from that position's p and q; seconds and token rate (generated tokens / s of generation:
drafting, target calls and verification, after one untimed warm-up run, with the prefix caches
emptied before each run; the per-block statistics are not timed) and the TR ratio, the token
rate over the single-draft run of the same setting and seed. Runs go seed by seed, every method
within a seed, so that a drifting machine load reaches the methods alike. For each mixed setting
the first position of every block of its GLS and SpecInfer runs is kept (target and draft
distributions) for :mod:`dsc.speculative.crosscheck`: SpecInfer's exact acceptance, GLS's match
probability by Monte Carlo (``--crosscheck-samples`` draws per position) and single-draft
acceptance 1 - TV. Results: ``results.json`` and ``results.md`` (mean +- standard error over
seeds, the paper's Table 2 figures beside), written atomically.
"""

from __future__ import annotations

import argparse
import logging
import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from dsc.environment import environment_record, resolve_device
from dsc.errors import ConfigError
from dsc.helptext import HelpFormatter, first_paragraph
from dsc.io import atomic_write_bytes, atomic_write_json
from dsc.progress import progress_bar
from dsc.speculative import report
from dsc.speculative.backend import CausalLM
from dsc.speculative.crosscheck import compact, crosscheck
from dsc.speculative.distributions import probabilities
from dsc.speculative.generate import generate
from dsc.speculative.loading import DTYPES, load_models, load_tokenizer_pair, resolve_dtype
from dsc.speculative.noise import SharedNoise
from dsc.speculative.verifiers import METHODS, SINGLE_DRAFT_METHODS

log = logging.getLogger("dsc.speculative.study")

PROMPTS = (
    "The capital of France is",
    "Here is a short story about a robot who learns to paint:",
    "def fibonacci(n):",
    "Three tips for staying healthy are",
    ("Question: Natalia sold clips to 48 of her friends in April, and then she sold half as many clips "
     "in May. How many clips did Natalia sell altogether in April and May?\nAnswer:"),
    "import numpy as np\n\ndef moving_average(x, window):\n",
    "Why is the sky blue? Explain it to a ten year old.",
    "The three most important events of the nineteenth century were",
)
# the paper's Table 2 settings (dsc.speculative.report.PAPER_TABLE2_GSM8K), run with L = --mixed-length = 5
MIXED_DEFAULT = ("2.0:0.5,1.0", "2.0:1.0,0.5", "2.0:1.0,1.0")
MIXED_METHODS = ("gls", "specinfer")


def lml_bound(p: torch.Tensor, q: torch.Tensor, k: int) -> float:
    """The list matching lemma bound sum_j K / sum_i [max(q_i/q_j, p_i/p_j) + (K-1) q_i/q_j] over
    the support of q (``p``, ``q`` ``[V]``), in O(V log V) via sorting by p_i/q_i."""
    keep = q > 0
    outside = p[~keep].double().sum()  # tokens q never emits: r_i = inf, in every j's "above" sum
    p, q = p[keep].double(), q[keep].double()
    ratio = p / q  # sort by r_i = p_i / q_i: max(q_i/q_j, p_i/p_j) = (q_i/q_j) max(1, r_i/r_j)
    order = torch.argsort(ratio)
    qs, ps = q[order], p[order]
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


@dataclass(frozen=True)
class Setting:
    """A sampling setting: the target's temperature, the drafts' (draft k at
    ``draft_temperatures[k % len]``) and L; ``mixed``: K = len(draft_temperatures) drafts at their
    own temperatures, run with GLS and SpecInfer, and single draft at the first as the reference."""

    name: str
    target_temperature: float
    draft_temperatures: tuple[float, ...]
    length: int
    mixed: bool = False


def mixed_setting(target: float, temperatures: Sequence[float], length: int) -> Setting:
    """The mixed setting ``target T, drafts T1, T2`` of L = ``length``."""
    name = f"target {target:g}, drafts {', '.join(f'{t:g}' for t in temperatures)}"
    return Setting(name, float(target), tuple(float(t) for t in temperatures), length, mixed=True)


def plan(settings: Sequence[Setting], methods: Sequence[str], drafts: Sequence[int],
         seeds: int) -> list[tuple[Setting, str, int, int]]:
    """The runs (setting, method, K, seed): setting by setting, seed by seed, every method within a
    seed (the i.i.d. setting: ``methods`` at every K of ``drafts``, K = 1 for single-draft ones)."""
    jobs = []
    for setting in settings:
        if setting.mixed:
            pairs = [(m, len(setting.draft_temperatures)) for m in MIXED_METHODS] + [(report.REFERENCE_METHOD, 1)]
        else:
            pairs = [(m, k) for m in methods for k in ([1] if m in SINGLE_DRAFT_METHODS else drafts)]
        jobs += [(setting, method, k, seed) for seed in range(seeds) for method, k in pairs]
    return jobs


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_setting(models: Models, method: str, drafts: int, length: int, tokens: int, seed: int,
                prompts: Sequence[Sequence[int]], positions: list | None = None) -> dict:
    """One (method, K, L, seed) run over the encoded ``prompts``, from empty prefix caches. The row
    holds the generated token ids (``"tokens"``), block efficiency, first-position match, LML
    bound, ``target_calls`` (all prompts together), ``seconds`` of generation (the per-block
    statistics not included), ``generated_tokens`` and ``token_rate`` (tokens / s).
    ``positions``, if given, gains the first position of every block as ``(q [S], p [K, S])``
    (:func:`dsc.speculative.crosscheck.compact`)."""
    device = models.target.device
    width = max(map(len, prompts))
    batch = torch.zeros(len(prompts), width, dtype=torch.long, device=device)
    for i, ids in enumerate(prompts):
        batch[i, :len(ids)] = torch.tensor(ids)
    matches, bounds, untimed = [], [], 0.0

    def on_block(x, p, q, verified):
        nonlocal untimed
        _sync(device)
        start = time.perf_counter()
        matches.extend(verified.accepted[:, 0].double().tolist())
        bounds.extend(lml_bound(p[b, 0, 0], q[b, 0, 0], drafts) for b in range(len(x)))
        if positions is not None:
            positions.extend(compact(q[b, 0, 0], p[b, :, 0]) for b in range(len(x)))
        untimed += time.perf_counter() - start

    for lm in (models.target, models.drafter):
        lm.cache.clear()
    _sync(device)
    start = time.perf_counter()
    out = generate(method, batch, torch.tensor([len(ids) for ids in prompts], device=device), tokens, drafts, length,
                   models.draft_next, models.target_block, SharedNoise(seed), on_block=on_block)
    _sync(device)
    seconds = time.perf_counter() - start - untimed
    return {"method": method, "drafts": drafts, "seed": seed,
            "block_efficiency": out.emitted.sum().item() / out.target_calls.sum().item(),
            "matching_probability": statistics.fmean(matches), "lml_bound": statistics.fmean(bounds),
            "target_calls": out.target_calls.sum().item(), "seconds": seconds,
            "generated_tokens": out.tokens.numel(), "token_rate": out.tokens.numel() / seconds,
            "tokens": out.tokens.tolist()}


def parse_mixed(spec: str) -> tuple[float, list[float]]:
    """``"2.0:0.5,1.0"`` -> (target temperature 2.0, draft temperatures [0.5, 1.0])."""
    try:
        target, drafts = spec.split(":")
        temps = (float(target), [float(t) for t in drafts.split(",")])
    except ValueError:
        raise ConfigError(f"--mixed wants TARGET:T1,T2,... (e.g. 2.0:0.5,1.0), got {spec!r}") from None
    if not all(math.isfinite(t) and t > 0 for t in (temps[0], *temps[1])) or len(temps[1]) < 2:
        raise ConfigError(f"--mixed needs finite positive temperatures and at least two drafts, got {spec!r}")
    return temps


def parse_drafts(text: str) -> list[int]:
    """``"1,2,4"`` -> [1, 2, 4] (every K >= 1)."""
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise ConfigError(f"--drafts wants K values like 1,2,4,8, got {text!r}") from None
    if min(values) < 1:
        raise ConfigError(f"--drafts: every K must be >= 1, got {text!r}")
    return values


def parse_methods(text: str) -> list[str]:
    """``"gls,specinfer"`` -> ["gls", "specinfer"]; "" -> [] (the mixed settings only)."""
    methods = [m for m in text.split(",") if m]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ConfigError(f"--methods: unknown {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    return methods


def header(args, names: tuple[str, str], settings: Sequence[Setting], environment: dict, seconds: float) -> str:
    """The first paragraph of results.md: models, settings, timing and device."""
    parts = [f"target {names[0]}, drafter {names[1]}, top-k {args.top_k}"]
    if any(not s.mixed for s in settings):
        parts.append(f"iid: target at temperature {args.temperature:g}, drafts at {args.draft_temperature:g}, "
                     f"L = {args.length}")
    if any(s.mixed for s in settings):
        parts.append(f"mixed settings: temperatures as named, L = {args.mixed_length}; their single draft is one "
                     f"draft at the first draft temperature")
    threads = environment["cpu_threads"]
    device = environment["device_name"] if environment["device"].startswith("cuda") else \
        f"{environment['cpu_model']}, {threads} torch thread{'s' if threads != 1 else ''}"
    if names[1] == "the target":
        parts.append("the drafter is the target network itself, so a draft token costs about as much as a target "
                     "call: TR % weighs what extra drafts cost against the target calls they save")
    parts.append(f"{len(PROMPTS)} prompts x {args.tokens} tokens, {args.seeds} seeds, mean +- SE over seeds; "
                 f"tokens / s: generated tokens per second of generation (drafting, target calls, verification) "
                 f"on {environment['device']} ({device}), {args.dtype}; TR %: token rate over the single-draft run "
                 f"of the same setting and seed; {seconds:.0f} s in all")
    return "; ".join(parts)


def build_parser() -> argparse.ArgumentParser:
    """The command line (defaults: the i.i.d. grid and the paper's Table 2 mixed settings)."""
    parser = argparse.ArgumentParser(prog="python -m dsc.speculative.study", description=first_paragraph(__doc__),
                                     formatter_class=HelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("outputs/speculative"), help="where the results go")
    parser.add_argument("--target", default=None, help="hub id, local directory or .gguf file "
                                                       "(default, or smollm2: the embedded SmolLM2-135M-Instruct)")
    parser.add_argument("--drafter", default=None, help="like --target, same tokenizer (default: the target itself)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--dtype", default="float32", choices=tuple(DTYPES), help="the models' weights")
    parser.add_argument("--chat-template", action="store_true", help="prompts as user turns (instruct models)")
    parser.add_argument("--methods", default="gls,specinfer,spectr,single_draft",
                        help="methods of the iid setting (\"\": the mixed settings only)")
    parser.add_argument("--drafts", default="1,2,4,8", help="K values (single_draft always runs K = 1)")
    parser.add_argument("--length", type=int, default=4, help="L draft tokens per block")
    parser.add_argument("--tokens", type=int, default=24, help="tokens generated per prompt")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per setting (figures: mean and SE over seeds)")
    parser.add_argument("--top-k", type=int, default=50, help="top-k truncation of target and drafts")
    parser.add_argument("--temperature", type=float, default=1.0, help="target temperature")
    parser.add_argument("--draft-temperature", type=float, default=2.0, help="drafter temperature")
    parser.add_argument("--mixed", action="append", default=None, metavar="TARGET:T1,T2",
                        help="target temperature and one temperature per draft (GLS vs SpecInfer, single draft at "
                             f"T1 as the reference); repeatable, default the paper's Table 2: {' '.join(MIXED_DEFAULT)}"
                             "; \"\" skips the mixed settings")
    parser.add_argument("--mixed-length", type=int, default=5, help="L in the mixed-temperature settings")
    parser.add_argument("--crosscheck-samples", type=int, default=1000,
                        help="Monte Carlo draws per position for GLS's match probability (0: no cross-check)")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    start = time.perf_counter()
    try:  # every setting is checked before a model is loaded
        mixed = [parse_mixed(spec) for spec in (MIXED_DEFAULT if args.mixed is None else args.mixed) if spec]
        methods, drafts = parse_methods(args.methods), parse_drafts(args.drafts)
        check_sampling(args.top_k, [args.temperature, args.draft_temperature])
        for name in ("length", "tokens", "seeds", "mixed_length"):
            if getattr(args, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
        if args.crosscheck_samples < 0:
            raise ConfigError(f"--crosscheck-samples must be >= 0, got {args.crosscheck_samples}")
        settings = [Setting("iid", args.temperature, (args.draft_temperature,), args.length)] if methods else []
        settings += [mixed_setting(target, temps, args.mixed_length) for target, temps in mixed]
        if not settings:
            raise ConfigError("nothing to run: --methods \"\" and --mixed \"\" together leave no setting")
        device, dtype = resolve_device(args.device), resolve_dtype(args.dtype)
        tokenizer, sources = load_tokenizer_pair(args.target, args.drafter)
        prompts = encode_prompts(tokenizer, PROMPTS, args.chat_template)
        target_model, drafter_model = load_models(*sources, len(tokenizer), device, dtype)
    except ConfigError as error:
        parser.error(str(error))
    names = sources[0].spec, "the target" if sources[1] is None else sources[1].spec
    log.info("target %s, drafter %s (%s, %s), %d prompts, %d tokens each, top-k %d, settings: %s", *names, device,
             args.dtype, len(PROMPTS), args.tokens, args.top_k, "; ".join(s.name for s in settings))

    def models(setting: Setting) -> Models:
        return Models(target_model, args.top_k, setting.target_temperature, setting.draft_temperatures,
                      drafter=drafter_model)

    run_setting(models(settings[0]), "gls", 2, 2, 2, 0, prompts)  # untimed warm-up: first-call costs
    positions: dict[str, list] = {s.name: [] for s in settings if s.mixed}
    rows = []
    for setting, method, k, seed in progress_bar(plan(settings, methods, drafts, args.seeds), desc="speculative study",
                                         unit="run"):
        keep = positions.get(setting.name) if method in MIXED_METHODS else None
        row = run_setting(models(setting), method, k, setting.length, args.tokens, seed, prompts, positions=keep)
        generated = row.pop("tokens")
        temps = setting.draft_temperatures[:k] if setting.mixed else setting.draft_temperatures
        rows.append({"setting": setting.name, "length": setting.length,
                     "target_temperature": setting.target_temperature, "draft_temperatures": list(temps), **row,
                     "text": [tokenizer.decode(t) for t in generated]})
    crosschecks = {name: crosscheck(found, args.crosscheck_samples, seed=0) for name, found in positions.items()
                   if found and args.crosscheck_samples > 0}
    summary = report.summarize(rows)
    comparison = report.compare([asdict(s) for s in settings], rows, crosschecks)
    environment = environment_record(device)
    seconds = time.perf_counter() - start
    atomic_write_json(args.out / "results.json", {"args": {k: str(v) for k, v in vars(args).items()},
                                                   "environment": environment,
                                                   "settings": [asdict(s) for s in settings], "summary": summary,
                                                   "comparison": comparison, "runs": rows, "seconds": seconds})
    text = report.markdown(summary, comparison, header(args, names, settings, environment, seconds))
    atomic_write_bytes(args.out / "results.md", text.encode())
    print(text)


if __name__ == "__main__":
    main()
