"""Trials per second of the Gaussian K-decoder evaluation against a straightforward reference.

Run from the repository root::

    python -m benchmarks.bench_gaussian                 # every available device
    python -m benchmarks.bench_gaussian --device cpu --trials 20000

For N = 2**15 candidates, K = 4 decoders and rates 1 and 6 bits it times

- the project's evaluation: :meth:`dsc.eval.gaussian.GaussianRateDistortion.simulate` (shared
  counter-based randomness, candidates in arrival order, certified early stopping, per-message
  exit), and
- a reference written here: float64, torch's own generator, every [B, K, N] array
  materialised, no chunking, the paper's algorithm read literally;

in the same process, on the same device, and prints trials/s, their ratio and the paper-metric
distortion of both (they estimate the same quantity). Peak memory is printed on CUDA.
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import time
from typing import Sequence

import torch

from benchmarks.timing import sync
from dsc.eval.gaussian import GaussianRateDistortion
from dsc.helptext import HelpFormatter, first_paragraph

NUM_CANDIDATES = 2**15
NUM_DECODERS = 4
NOISE_VAR = 0.5
POINTS = ((1, 0.005), (6, 0.001))  # (rate bits, s2): the paper's usual choice at K = 4


def _log_normal(x, mean, var):
    return -0.5 * (x - mean) ** 2 / var - 0.5 * math.log(2 * math.pi * var)


def reference_trials(batch: int, rate_bits: int, s2: float, generator: torch.Generator, device) -> float:
    """One batch of the materialised float64 reference; returns the sum of per-trial dB."""
    f64, n, k, labels_count = torch.float64, NUM_CANDIDATES, NUM_DECODERS, 2**rate_bits
    a = torch.randn(batch, generator=generator, dtype=f64, device=device)
    t = a[:, None] + math.sqrt(NOISE_VAR) * torch.randn(batch, k, generator=generator, dtype=f64, device=device)
    u = math.sqrt(1 + s2) * torch.randn(batch, n, generator=generator, dtype=f64, device=device)
    labels = torch.randint(labels_count, (batch, n), generator=generator, device=device)
    e = -torch.log(torch.rand(batch, k, n, generator=generator, dtype=f64, device=device))
    encoder_weight = _log_normal(u, a[:, None], s2) - _log_normal(u, 0.0, 1 + s2)
    y = torch.argmin(torch.log(e.min(dim=1).values) - encoder_weight, dim=1)
    message = labels.gather(1, y[:, None])
    decoder_var = NOISE_VAR / (1 + NOISE_VAR) + s2
    decoder_mean = t[:, :, None] / (1 + NOISE_VAR)
    decoder_weight = _log_normal(u[:, None, :], decoder_mean, decoder_var) - _log_normal(u[:, None, :], 0.0, 1 + s2)
    scores = (torch.log(e) - decoder_weight).masked_fill((labels != message)[:, None, :], float("inf"))
    w = u.gather(1, torch.argmin(scores, dim=2))
    estimate = (w / s2 + t / NOISE_VAR) / (1 + 1 / s2 + 1 / NOISE_VAR)
    best = ((a[:, None] - estimate) ** 2).min(dim=1).values
    return (10 * torch.log10(best)).sum().item()


def time_reference(trials: int, batch: int, rate_bits: int, s2: float, device, repeats: int):
    generator = torch.Generator(device=device).manual_seed(0)
    reference_trials(min(batch, 8), rate_bits, s2, generator, device)  # warm-up
    rates, db = [], 0.0
    for _ in range(repeats):
        sync(device)
        start, total = time.perf_counter(), 0.0
        for done in range(0, trials, batch):
            total += reference_trials(min(batch, trials - done), rate_bits, s2, generator, device)
        sync(device)
        rates.append(trials / (time.perf_counter() - start))
        db = total / trials
    return statistics.median(rates), db


def time_project(trials: int, batch: int | None, rate_bits: int, s2: float, device, repeats: int,
                 chunk: int | None = None):
    job = GaussianRateDistortion(num_decoders=NUM_DECODERS, rate_bits=rate_bits, num_candidates=NUM_CANDIDATES,
                                 trials=trials, test_channel_variances=[s2], batch_trials=batch,
                                 chunk_size=chunk, noise_var=NOISE_VAR, progress=False)
    job.simulate(s2, 0, 0, 64, device, "warm-up")
    rates, db = [], 0.0
    for repeat in range(repeats):
        sync(device)
        start = time.perf_counter()
        totals = job.simulate(s2, 0, (repeat + 1) * trials, trials, device, "bench")
        sync(device)
        rates.append(trials / (time.perf_counter() - start))
        db = totals.distortion_db
    return statistics.median(rates), db


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (torch {torch.__version__})"
    return (f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads "
            f"(torch {torch.__version__})")


def run(device: torch.device, trials: int, reference_trials_count: int, batch: int | None, reference_batch: int,
        repeats: int, chunk: int | None = None) -> None:
    per_batch = GaussianRateDistortion(batch_trials=batch).batch_for(device)
    print(f"\n[{device}] {describe(device)}: N = {NUM_CANDIDATES:,}, K = {NUM_DECODERS}, median of {repeats}, "
          f"{per_batch:,} trials per batch, chunk {chunk or 'auto'}")
    header = (f"{'rate':>4} {'s2':>6} {'project trials/s':>17} {'reference trials/s':>19} {'ratio':>7} "
              f"{'dB project':>11} {'dB reference':>13}")
    print(header + ("  peak MiB" if device.type == "cuda" else ""))
    for rate_bits, s2 in POINTS:
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        ours, ours_db = time_project(trials, batch, rate_bits, s2, device, repeats, chunk)
        peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
        ref, ref_db = time_reference(reference_trials_count, reference_batch, rate_bits, s2, device, repeats)
        line = (f"{rate_bits:>4} {s2:>6g} {ours:>17,.0f} {ref:>19,.0f} {ours / ref:>6.1f}x {ours_db:>11.2f} "
                f"{ref_db:>13.2f}")
        print(line + (f"  {peak:8.0f}" if peak is not None else ""))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_gaussian", description=first_paragraph(__doc__),
                                     formatter_class=HelpFormatter)
    parser.add_argument("--device", choices=("cpu", "cuda", "all"), default="all")
    parser.add_argument("--trials", type=int, default=None, help="project trials per repeat (cpu 20000, cuda 1000000)")
    parser.add_argument("--reference-trials", type=int, default=None,
                        help="reference trials per repeat (cpu 512, cuda 20000)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=None,
                        help="project trials per batch (default: the evaluation's choice for the device)")
    parser.add_argument("--chunk", type=int, default=None,
                        help="candidates per message per scan step (default: the coder's automatic choice)")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available on this machine")
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    if args.device != "all":
        devices = [torch.device(args.device)]
    for device in devices:
        gpu = device.type == "cuda"
        run(device,
            trials=args.trials or (1_000_000 if gpu else 20_000),
            reference_trials_count=args.reference_trials or (20_000 if gpu else 512),
            batch=args.batch,
            reference_batch=64 if gpu else 16,
            repeats=args.repeats,
            chunk=args.chunk)


if __name__ == "__main__":
    main()
