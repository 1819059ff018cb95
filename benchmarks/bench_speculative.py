"""Verification time of multi-draft speculative sampling, no model calls.

Run from the repository root::

    python -m benchmarks.bench_speculative                  # CPU; CUDA too when present
    python -m benchmarks.bench_speculative --batch 4 --repeats 5

For vocabularies of 49,152 (SmolLM2) and 151,936 (Qwen2.5) tokens, K = 8 drafts of L = 4 tokens
and a batch of sequences, random target and draft distributions (softmax of Gaussian logits,
temperature 1), it times :func:`dsc.speculative.verify_block` for every method in the same
process and prints medians and the ratio of each to SpecInfer. GLS and Gumbel receive the draft
rows of the shared noise as the drafter drew them (drawing them is drafting's cost, as sampling
the drafts is for the other methods); the rejection methods draw their own uniforms and residual
noise inside the timed call.
"""

from __future__ import annotations

import argparse
from typing import Sequence

import torch

from benchmarks.timing import median_seconds
from dsc.helptext import HelpFormatter, first_paragraph
from dsc.speculative import METHODS, SharedNoise, verify_block
from dsc.speculative.noise import gumbel_sample
from dsc.speculative.verifiers import SINGLE_DRAFT_METHODS

VOCABS = (49_152, 151_936)


def case(batch: int, drafts: int, length: int, vocab: int, device: torch.device, seed: int = 0):
    g = torch.Generator(device=device).manual_seed(seed)
    logits = lambda *shape: torch.randn(*shape, vocab, generator=g, device=device, dtype=torch.float64)  # noqa: E731
    target = torch.softmax(logits(batch, drafts, length + 1), dim=-1)
    draft_probs = torch.softmax(logits(batch, drafts, length) * 0.8, dim=-1)
    noise = SharedNoise(seed)
    sequences, start = torch.arange(batch, device=device), torch.zeros(batch, dtype=torch.long, device=device)
    rows = torch.stack([noise.draft_rows(sequences, start + j, drafts, vocab) for j in range(length + 1)], dim=2)
    tokens = gumbel_sample(rows[:, :, :length], draft_probs)
    return tokens, draft_probs, target, noise, sequences, start, rows


def time_method(method: str, inputs, repeats: int, device: torch.device) -> float:
    tokens, draft_probs, target, noise, sequences, start, rows = inputs
    if method in SINGLE_DRAFT_METHODS:
        tokens, draft_probs, target, rows = tokens[:, :1], draft_probs[:, :1], target[:, :1], rows[:, :1]
    run = lambda: verify_block(method, tokens, draft_probs, target, noise, sequences, start, draft_noise=rows)  # noqa: E731
    run()  # warm-up
    return median_seconds(run, device, repeats)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_speculative",
                                     description=first_paragraph(__doc__), formatter_class=HelpFormatter)
    parser.add_argument("--device", action="append", help="cpu, cuda (default: every available device)")
    parser.add_argument("--batch", type=int, default=4, help="sequences verified at once")
    parser.add_argument("--drafts", type=int, default=8)
    parser.add_argument("--length", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--vocab", type=int, action="append", help=f"vocabulary sizes (default {VOCABS})")
    args = parser.parse_args(argv)
    devices = args.device or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    for name in devices:
        device = torch.device(name)
        for vocab in args.vocab or VOCABS:
            inputs = case(args.batch, args.drafts, args.length, vocab, device)
            print(f"\n[{device}] V = {vocab:,}, K = {args.drafts}, L = {args.length}, batch {args.batch}, "
                  f"median of {args.repeats} (torch {torch.__version__}, {torch.get_num_threads()} threads)")
            seconds = {m: time_method(m, inputs, args.repeats, device) for m in METHODS}
            for method, s in seconds.items():
                print(f"{method:>14} {s * 1e3:9.2f} ms   {s / seconds['specinfer']:5.2f}x SpecInfer")


if __name__ == "__main__":
    main()
