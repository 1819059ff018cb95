"""Throughput of dsc's counter-based randomness and of the importance-sampled GLS coder.

Run from the repository root (``make bench`` does the same)::

    .venv/bin/python -m benchmarks.bench_coding            # full run on every available device
    .venv/bin/python -m benchmarks.bench_coding --quick    # tiny sizes, a smoke test (seconds)
    .venv/bin/python -m benchmarks.bench_coding --device cuda --compile --batch 4096
    .venv/bin/python -m benchmarks.bench_coding --device cpu --only bounds   # weight bounds vs full scans

Flags: ``--device cpu|cuda|all``, ``--size``, ``--repeats``, ``--batch``, ``--threads``,
``--compile``, ``--quick``, ``--only generators|coder|bounds``; see ``--help``. CPU figures are
only meaningful on an otherwise idle machine: the header prints the load average, and with
other processes on the cores torch's intra-op threads wait on each other (``--threads 1`` is
then the steadier measurement).

Every figure is the median of ``--repeats`` timed runs after one untimed warm-up run (for the
coder on CPU the warm-up uses at most 32 messages), timed with ``time.perf_counter`` and, on
CUDA, ``torch.cuda.synchronize`` before and after.

What the numbers mean:

1. Generators (:mod:`dsc.coding.randomness`): values per second for ``--size`` indices
   (``torch.arange(size)``, built once and not timed). "vs torch.rand" is our throughput divided
   by ``torch.rand``'s (a stateful ``torch.Generator``) for the same size, of the row's float
   dtype (float32 for the integer-valued rows): below 1 is the cost of counter-based,
   device-independent randomness. With ``--compile`` the same function wrapped in
   ``torch.compile`` is timed as well: "compiled/eager" is the throughput ratio, "compile s" the
   first call, compiling included (inductor's on-disk cache shortens it on later runs), and
   "same bits" whether the compiled output equals the eager one bit for bit.
2. Coder (:class:`dsc.coding.importance.ImportanceCoder`, scheme ``gls``) without weight
   bounds, so every party scans all N arrivals (``benchmarks.bench_gaussian`` times the bounded,
   early-stopping evaluation): a Gaussian source
   A ~ N(0, 1), K side informations T_k = A + N(0, 0.5), a test channel U = A + N(0, s2) with
   s2 = 0.005 and N candidates from the prior N(0, 1 + s2). The encoder weighs candidate u by
   N(u; a, s2) / N(u; 0, 1 + s2); decoder k by N(u; t_k / 1.5, 1 + s2 - 1 / 1.5) / N(u; 0, 1 + s2).

   - encode Mcand/s: B * N / encode time (candidates scored, all K exponential rows included);
   - decode Mpair/s: B * N * K / decode time, candidate-decoder pairs (every arrival is
     scanned; only those in the received bin are scored);
   - trials/s: B / (encode + decode time);
   - match: fraction of trials whose encoded index is in the decoders' list (any k), over all
     timed trials (B * repeats, distinct message ids) - a sanity figure, not a speed;
   - peak MiB (CUDA only): ``torch.cuda.max_memory_allocated`` during the timed trials. A last
     line runs N = 2**13, 2**15, 2**17 at a fixed chunk_size to show that peak memory does not
     grow with N (the coder scans candidates in chunks).
3. Weight bounds (``--only bounds``): the generic coder through its public API with the Gaussian
   example of docs/api.md (K = 4, L_max = 8, the same source and weights as above), encode +
   decode per message, at N = 2**10 .. 2**18, in three forms of the same weights:

   - no bound: plain callables (declaring ``maximum = None``), every party scans all N arrivals;
   - maximum(): the same callables with their closed-form maxima attached, so every party stops
     early, but the batch runs until its slowest message has stopped;
   - GaussianLogWeight: :class:`dsc.coding.GaussianLogWeight`, which derives the maximum and lets
     finished messages leave the batch (``subset``);

   "x faster" is the no-bound time over each bounded time (one process, one run, the same
   messages), and "same picks" checks that all three pick the same candidates (exact stopping).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time
from dataclasses import dataclass
from typing import Callable, Sequence, TypeVar

import torch
from torch import Tensor

from dsc.coding import GaussianLogWeight, randomness
from dsc.coding.importance import GaussianPrior, ImportanceCoder, Scheme
from dsc.coding.randomness import CounterRandomness
from dsc.coding.streams import Purpose, stream_id
from dsc.environment import cpu_model
from dsc.helptext import HelpFormatter

SEED = 20240917
STREAM = 12345
INTEGERS_HIGH = 1000

NUM_DECODERS = 4
LABEL_COUNTS = (2, 64)  # 1 and 6 bits
MEMORY_SWEEP = (2**13, 2**15, 2**17)
BOUND_LABELS = 8  # 3 bits, as in docs/api.md
BOUND_SIZES = tuple(2**e for e in range(10, 19))
SECTIONS = ("generators", "coder", "bounds")


@dataclass(frozen=True)
class Sizes:
    """Problem sizes of one run (full or --quick)."""

    size: int
    repeats: int
    num_candidates: int
    chunk_size: int | None  # None: the coder's automatic, device-dependent choice
    memory_sweep: tuple[int, ...]
    batch: int | None  # None: the device default
    bound_sizes: tuple[int, ...] = BOUND_SIZES


FULL = Sizes(10**7, 5, 2**15, None, MEMORY_SWEEP, None)
QUICK = Sizes(10**5, 2, 2**10, 256, (2**9, 2**10, 2**11), 16, (2**8, 2**10))
DEFAULT_BATCH = {"cpu": 256, "cuda": 8192}
CPU_WARMUP_BATCH = 32  # a full-size warm-up batch would only add minutes on CPU

T = TypeVar("T")


# ----------------------------------------------------------------------------- timing


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], T], device: torch.device) -> tuple[float, T]:
    """Seconds taken by ``fn()`` (device work included) and its result."""
    synchronize(device)
    start = time.perf_counter()
    result = fn()
    synchronize(device)
    return time.perf_counter() - start, result


def median_seconds(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Median time of ``repeats`` calls after one untimed warm-up call."""
    timed(fn, device)
    return statistics.median(timed(fn, device)[0] for _ in range(repeats))


# ----------------------------------------------------------------------------- output


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """First column left-aligned, the others right-aligned."""
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:]))
        return "  ".join([first, *rest])

    print(line(headers))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))


def millions(count: float, seconds: float) -> str:
    return f"{count / seconds / 1e6:,.1f}"


def print_machine(devices: Sequence[torch.device]) -> None:
    print("Machine")
    print(f"  CPU     : {cpu_model()}, {os.cpu_count()} logical cores, "
          f"torch intra-op threads: {torch.get_num_threads()}")
    if hasattr(os, "getloadavg"):
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"  load    : {load} (1/5/15-min load average at start; above the core count, "
              "other work shares the CPUs)")
    print(f"  torch   : {torch.__version__} (python {platform.python_version()})")
    if torch.cuda.is_available():
        names = sorted({torch.cuda.get_device_name(d) for d in devices if d.type == "cuda"})
        print(f"  GPU     : {', '.join(names) or torch.cuda.get_device_name(0)} "
              f"(CUDA {torch.version.cuda})")
    else:
        print("  GPU     : none (CUDA not available)")
    print(f"  devices : {', '.join(str(d) for d in devices)}")


# ----------------------------------------------------------------------------- generators

def _keyed(fn: Callable[..., Tensor], *args: object) -> Callable[[Tensor], Tensor]:
    """``index -> fn(SEED, STREAM, index, *args)``."""
    return lambda index: fn(SEED, STREAM, index, *args)


F32, F64 = torch.float32, torch.float64
GENERATORS: dict[str, tuple[Callable[[Tensor], Tensor], torch.dtype]] = {
    # name: (function of the index tensor, dtype of the torch.rand it is compared with)
    "random_words": (_keyed(randomness.random_words), F32),
    "uniform float32": (_keyed(randomness.uniform, F32), F32),
    "uniform float64": (_keyed(randomness.uniform, F64), F64),
    "exponential float32": (_keyed(randomness.exponential, F32), F32),
    "normal float32": (_keyed(randomness.normal, F32), F32),
    f"integers(high={INTEGERS_HIGH})": (_keyed(randomness.integers, INTEGERS_HIGH), F32),
}


def torch_rand_seconds(device: torch.device, size: int, dtype: torch.dtype, repeats: int) -> float:
    generator = torch.Generator(device=device)
    generator.manual_seed(SEED)
    return median_seconds(
        lambda: torch.rand(size, generator=generator, device=device, dtype=dtype), device, repeats
    )


@dataclass(frozen=True)
class CompiledTiming:
    first: float  # seconds of the first call, compiling included
    median: float
    identical: bool  # bit-identical to the eager output


def time_compiled(
    fn: Callable[[Tensor], Tensor], index: Tensor, repeats: int
) -> CompiledTiming | str:
    """Time ``torch.compile(fn)`` on ``index``, or say why compiling failed."""
    # All generators share the code object of _keyed's lambda: start from empty compile caches
    # so that no run hits dynamo's recompile limit and silently falls back to eager.
    torch.compiler.reset()
    compiled = torch.compile(fn, dynamic=False)
    try:
        first, out = timed(lambda: compiled(index), index.device)
    except Exception as error:  # a missing compiler or backend must not end the benchmark
        return f"failed: {type(error).__name__}"
    median = median_seconds(lambda: compiled(index), index.device, repeats)
    return CompiledTiming(first, median, torch.equal(out, fn(index)))


def bench_generators(device: torch.device, sizes: Sizes, compile_too: bool) -> None:
    size, repeats = sizes.size, sizes.repeats
    print(f"\n[{device}] shared-randomness generators: {size:,} indices, "
          f"median of {repeats}, M values/s")
    index = torch.arange(size, device=device)
    reference = {
        dtype: torch_rand_seconds(device, size, dtype, repeats)
        for dtype in (torch.float32, torch.float64)
    }
    headers = ["function", "eager Mval/s", "vs torch.rand"]
    if compile_too:
        headers += ["compiled Mval/s", "compiled/eager", "compile s", "same bits"]
    rows = []
    for name, (fn, ref_dtype) in GENERATORS.items():
        eager = median_seconds(lambda fn=fn: fn(index), device, repeats)
        row = [name, millions(size, eager), f"{reference[ref_dtype] / eager:.3f}"]
        if compile_too:
            result = time_compiled(fn, index, repeats)
            if isinstance(result, str):
                row += [result, "-", "-", "-"]
            else:
                row += [
                    millions(size, result.median),
                    f"{eager / result.median:.2f}",
                    f"{result.first:.1f}",
                    "yes" if result.identical else "NO",
                ]
        rows.append(row)
    for dtype, seconds in reference.items():
        name = f"torch.rand {str(dtype).removeprefix('torch.')} (reference)"
        rows.append([name, millions(size, seconds), "1.000"] + ["-"] * (len(headers) - 3))
    print_table(headers, rows)
    if compile_too:
        print("  same bits: the compiled output equals the eager one bit for bit (parties that "
              "mix compiled and eager code need this).")


# ----------------------------------------------------------------------------- coder


def log_normal(x: Tensor, mean: Tensor | float, var: float) -> Tensor:
    """Log density of N(mean, var) at x."""
    return -0.5 * (x - mean) ** 2 / var - 0.5 * math.log(2 * math.pi * var)


@dataclass(frozen=True)
class GaussianSetup:
    """A ~ N(0, 1); T_k = A + N(0, side_var); test channel U = A + N(0, s2)."""

    s2: float = 0.005
    side_var: float = 0.5

    @property
    def prior(self) -> GaussianPrior:
        return GaussianPrior(dim=1, std=math.sqrt(1 + self.s2))

    def sources(self, messages: Tensor, num_decoders: int) -> tuple[Tensor, Tensor]:
        """Source ``a`` ``[B]`` and side information ``t`` ``[B, K]`` from the SOURCE streams."""
        rng = CounterRandomness(SEED)
        zero = torch.zeros(1, dtype=torch.long, device=messages.device)
        a = rng.normal(stream_id(Purpose.SOURCE, messages[:, None], 0), zero)[:, 0]
        decoders = torch.arange(num_decoders, device=messages.device)
        noise = rng.normal(stream_id(Purpose.SOURCE, messages[:, None], 1), decoders)
        return a, a[:, None] + math.sqrt(self.side_var) * noise

    def encoder_log_weight(self, a: Tensor) -> Callable[[Tensor], Tensor]:
        """log N(u; a, s2) - log N(u; 0, 1 + s2): ``[B, n, 1]`` -> ``[B, n]``."""

        def log_weight(u: Tensor) -> Tensor:
            u = u[..., 0]
            return log_normal(u, a[:, None], self.s2) - log_normal(u, 0.0, 1 + self.s2)

        return log_weight

    def decoder_log_weight(self, t: Tensor) -> Callable[[Tensor], Tensor]:
        """log N(u; E[U | t_k], Var[U | T]) - log N(u; 0, 1 + s2): ``[B, n, 1]`` -> ``[B, K, n]``.

        With Var[T] = 1 + side_var: E[U | t] = t / Var[T], Var[U | T] = 1 + s2 - 1 / Var[T].
        """
        var_t = 1 + self.side_var
        posterior_var = self.decoder_var

        def log_weight(u: Tensor) -> Tensor:
            u = u[:, None, :, 0]
            posterior_mean = (t / var_t)[:, :, None]
            return log_normal(u, posterior_mean, posterior_var) - log_normal(u, 0.0, 1 + self.s2)

        return log_weight

    @property
    def decoder_var(self) -> float:
        """Var[U | T] = 1 + s2 - 1 / (1 + side_var)."""
        return (1 + self.s2) - 1 / (1 + self.side_var)

    def bounded_weights(self, a: Tensor, t: Tensor) -> tuple[Callable, Callable]:
        """The same two callables with their closed-form maxima attached (``maximum()``: ``[B]``,
        ``[B, K]``): max_u log N(u; m, v) / N(u; 0, p) = m^2 / (2 (p - v)) + log(p / v) / 2."""
        prior_var = 1 + self.s2

        def maximum(mean: Tensor, var: float) -> Callable[[], Tensor]:
            return lambda: mean.double() ** 2 / (2 * (prior_var - var)) + 0.5 * math.log(prior_var / var)

        encoder, decoder = self.encoder_log_weight(a), self.decoder_log_weight(t)
        encoder.maximum = maximum(a, self.s2)
        decoder.maximum = maximum(t / (1 + self.side_var), self.decoder_var)
        return encoder, decoder

    def gaussian_weights(self, a: Tensor, t: Tensor) -> tuple[GaussianLogWeight, GaussianLogWeight]:
        """The same weights as :class:`dsc.coding.GaussianLogWeight`s (maximum() and subset())."""
        return (GaussianLogWeight(a[:, None], self.prior, var=self.s2),
                GaussianLogWeight((t / (1 + self.side_var))[..., None], self.prior, var=self.decoder_var))

    def unbounded_weights(self, a: Tensor, t: Tensor) -> tuple[Callable, Callable]:
        """The plain callables, declaring that they have no bound (a full scan, no warning)."""
        encoder, decoder = self.encoder_log_weight(a), self.decoder_log_weight(t)
        encoder.maximum = decoder.maximum = None
        return encoder, decoder


@dataclass
class TrialTimes:
    encode: float
    decode: float
    matches: int


def run_trials(coder: ImportanceCoder, setup: GaussianSetup, messages: Tensor) -> TrialTimes:
    """Encode and decode one batch of messages (sources drawn outside the timings)."""
    device = messages.device
    a, t = setup.sources(messages, coder.num_decoders)
    encode_s, encoded = timed(lambda: coder.encode(messages, setup.encoder_log_weight(a)), device)
    decode_s, decoded = timed(
        lambda: coder.decode(messages, encoded.label, setup.decoder_log_weight(t)), device
    )
    matches = (decoded.index == encoded.index[:, None]).any(-1).sum()
    return TrialTimes(encode_s, decode_s, int(matches))


def make_coder(
    num_candidates: int, num_labels: int, balanced: bool, chunk_size: int | None
) -> ImportanceCoder:
    return ImportanceCoder(
        seed=SEED,
        prior=GaussianSetup().prior,
        num_candidates=num_candidates,
        num_labels=num_labels,
        num_decoders=NUM_DECODERS,
        scheme=Scheme.GLS,
        balanced_labels=balanced,
        chunk_size=chunk_size,
    )


def message_batch(batch: int, which: int, device: torch.device) -> Tensor:
    """Distinct message ids for each batch: ``which * batch + arange(batch)``."""
    return torch.arange(which * batch, (which + 1) * batch, device=device)


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_mib(device: torch.device) -> str:
    return f"{torch.cuda.max_memory_allocated(device) / 2**20:,.0f}"


def bench_config(
    coder: ImportanceCoder, batch: int, repeats: int, device: torch.device
) -> list[str]:
    """One table row: an untimed warm-up batch, then timed batches 1..repeats."""
    setup = GaussianSetup()
    warmup = batch if device.type == "cuda" else min(batch, CPU_WARMUP_BATCH)
    run_trials(coder, setup, message_batch(warmup, 0, device))
    reset_peak_memory(device)
    trials = [run_trials(coder, setup, message_batch(batch, r + 1, device)) for r in range(repeats)]
    n, k = coder.num_candidates, coder.num_decoders
    encode = statistics.median(t.encode for t in trials)
    decode = statistics.median(t.decode for t in trials)
    total = statistics.median(t.encode + t.decode for t in trials)
    match = sum(t.matches for t in trials) / (batch * repeats)
    row = [
        f"{coder.num_labels:>3} ({coder.rate_bits:.0f} bit{'s' if coder.rate_bits != 1 else ''})",
        "yes" if coder.balanced_labels else "no",
        millions(batch * n, encode),
        millions(batch * n * k, decode),
        f"{batch / total:,.0f}",
        f"{match:.3f}",
    ]
    if device.type == "cuda":
        row.append(peak_mib(device))
    return row


def bench_coder(device: torch.device, sizes: Sizes, batch: int) -> None:
    n, repeats = sizes.num_candidates, sizes.repeats
    print(f"\n[{device}] importance-sampled GLS: N = {n:,} candidates, K = {NUM_DECODERS} "
          f"decoders, B = {batch:,} messages, chunk_size = {sizes.chunk_size or 'auto'}, "
          f"median of {repeats}")
    headers = ["L_max (rate)", "balanced", "encode Mcand/s", "decode Mpair/s", "trials/s", "match"]
    if device.type == "cuda":
        headers.append("peak MiB")
    rows = [
        bench_config(make_coder(n, labels, balanced, sizes.chunk_size), batch, repeats, device)
        for labels in LABEL_COUNTS
        for balanced in (False, True)
    ]
    print_table(headers, rows)
    print("  full scans (no weight bounds): decode Mpair/s counts B*N*K candidate-decoder pairs.")
    print(f"  match: encoded index in the decoders' list (any k), over {batch * repeats:,} trials.")


def bench_memory_sweep(device: torch.device, sizes: Sizes, batch: int) -> None:
    """Peak CUDA memory of one encode + decode for growing N at a fixed chunk size."""
    if device.type != "cuda":
        return
    setup = GaussianSetup()
    peaks = []
    for n in sizes.memory_sweep:
        coder = make_coder(n, LABEL_COUNTS[0], False, sizes.chunk_size)
        reset_peak_memory(device)  # allocated bytes need no warm-up
        run_trials(coder, setup, message_batch(batch, 1, device))
        peaks.append(f"N = {n:,}: {peak_mib(device)} MiB")
    print(f"  peak memory vs N (L_max = {LABEL_COUNTS[0]}, chunk_size = {sizes.chunk_size or 'auto'}, "
          f"B = {batch:,}): " + ", ".join(peaks))


BOUND_FORMS = ("no bound", "maximum()", "GaussianLogWeight")


def bench_bounds(device: torch.device, sizes: Sizes, batch: int) -> None:
    """The generic coder with and without weight bounds at growing N (module docstring, item 3)."""
    repeats, setup = sizes.repeats, GaussianSetup()
    forms = {"no bound": setup.unbounded_weights, "maximum()": setup.bounded_weights,
             "GaussianLogWeight": setup.gaussian_weights}
    print(f"\n[{device}] generic coder with and without weight bounds: K = {NUM_DECODERS}, L_max = {BOUND_LABELS} "
          f"(3 bits), B = {batch:,} messages, chunk_size = {sizes.chunk_size or 'auto'}, encode + decode, "
          f"median of {repeats}")
    headers = ["N", *(f"{form} ms/msg" for form in BOUND_FORMS), "maximum() x faster", "GaussianLogWeight x faster",
               "same picks"]
    rows = []
    for n in sizes.bound_sizes:
        coder = make_coder(n, BOUND_LABELS, False, sizes.chunk_size)
        seconds, picks = {}, {}
        for form, weights in forms.items():
            def trial(messages: Tensor, weights=weights) -> tuple[Tensor, Tensor]:
                a, t = setup.sources(messages, coder.num_decoders)
                encoder, decoder = weights(a, t)
                sent = coder.encode(messages, encoder)
                return sent.index, coder.decode(messages, sent.label, decoder).index

            warmup = batch if device.type == "cuda" else min(batch, CPU_WARMUP_BATCH)
            trial(message_batch(warmup, 0, device))
            times = []
            for r in range(repeats):
                elapsed, picked = timed(lambda r=r: trial(message_batch(batch, r + 1, device)), device)
                times.append(elapsed)
                picks.setdefault(form, []).append(picked)
            seconds[form] = statistics.median(times)
        same = all(torch.equal(a, b) for form in BOUND_FORMS[1:]
                   for x, y in zip(picks[form], picks[BOUND_FORMS[0]]) for a, b in zip(x, y))
        rows.append([f"2^{int(math.log2(n))}", *(f"{seconds[form] / batch * 1e3:.3f}" for form in BOUND_FORMS),
                     *(f"{seconds['no bound'] / seconds[form]:.1f}x" for form in BOUND_FORMS[1:]),
                     "yes" if same else "NO"])
    print_table(headers, rows)
    print("  ms/msg: encode + decode time per message (all K decoders); x faster: no-bound time over each bounded "
          "time, same process, same messages.")


# ----------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_coding",
        description="Throughput of dsc's counter-based randomness and importance-sampled GLS.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--device", choices=("cpu", "cuda", "all"), default="all",
                        help="where to run (default: all available devices)")
    parser.add_argument("--size", type=int, default=None,
                        help=f"indices per generator call (default {FULL.size:,}, "
                        f"quick {QUICK.size:,})")
    parser.add_argument("--repeats", type=int, default=None,
                        help=f"timed repeats, the median is quoted (default {FULL.repeats}, "
                        f"quick {QUICK.repeats})")
    parser.add_argument("--batch", type=int, default=None,
                        help="messages B per coder call (default: 256 on cpu, 8192 on cuda)")
    parser.add_argument("--chunk-size", type=int, default=None,
                        help="candidates per chunk in the coder (default: the coder's automatic choice)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op CPU threads (default: torch's choice)")
    parser.add_argument("--compile", action="store_true",
                        help="also time torch.compile'd generators (compiling takes about a "
                        "minute on a small CPU, --quick included)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes: a smoke test that runs in seconds")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS),
                        help="which sections to run (default: all): the generators, the coder's full-scan "
                        "throughput, the coder with and without weight bounds")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available on this machine")
    for name in ("size", "repeats", "batch", "threads", "chunk_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name} must be >= 1, got {value}")
    return args


def select_devices(choice: str) -> list[torch.device]:
    if choice == "all":
        return [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    return [torch.device(choice)]


def resolve_sizes(args: argparse.Namespace) -> Sizes:
    base = QUICK if args.quick else FULL
    return Sizes(
        size=args.size or base.size,
        repeats=args.repeats or base.repeats,
        num_candidates=base.num_candidates,
        chunk_size=args.chunk_size or base.chunk_size,
        memory_sweep=base.memory_sweep,
        batch=args.batch or base.batch,
        bound_sizes=base.bound_sizes,
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = resolve_sizes(args)
    devices = select_devices(args.device)
    print_machine(devices)
    for device in devices:
        batch = sizes.batch or DEFAULT_BATCH[device.type]
        if "generators" in args.only:
            bench_generators(device, sizes, args.compile)
        if "coder" in args.only:
            bench_coder(device, sizes, batch)
            bench_memory_sweep(device, sizes, batch)
        if "bounds" in args.only:
            bench_bounds(device, sizes, batch)


if __name__ == "__main__":
    main()
