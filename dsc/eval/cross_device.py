"""Do an encoder on one device and decoders on another pick the same candidates?

The shared randomness is bit-identical on every device (counter-based words and uniforms), but
log-weights computed by different math libraries, and for MNIST by different convolution
algorithms, can differ in the last ulps; a pick flips only where two candidates nearly tie.
Each function here codes the same messages through :mod:`dsc.pipeline` on a reference device
and on a second device and counts how often the two agree:

- ``encoder``: the encoder's candidate index, encoded on either device;
- ``decoder``: each decoder's pick from the reference encoder's labels, decoded on either device;
- ``match_reference`` / ``match_cross``: picks equal to the reference encoder's index, decoded on
  the reference device / on the second device (what a deployment with the encoder on one machine
  and the decoders on another gets).

Run ``python -m dsc.eval.cross_device --help``. Everything runs under
:func:`dsc.environment.strict_float32` (TF32 off), as the MNIST evaluation does.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from typing import Any, Iterator, Mapping, Sequence

import torch

from dsc.coding import CodingPoint, Scheme
from dsc.coding.validation import check_positive_int
from dsc.environment import strict_float32
from dsc.errors import ConfigError, DscError
from dsc.helptext import HelpFormatter, first_paragraph
from dsc.pipeline import decode, encode
from dsc.registry import get_source, source_names

DEFAULT_MESSAGES = 100_000


@dataclass
class Agreement:
    """Counts over ``messages`` messages and ``picks`` = messages x K decoder picks."""

    messages: int = 0
    picks: int = 0
    encoder: int = 0
    decoder: int = 0
    match_reference: int = 0
    match_cross: int = 0

    def add(self, sent_ref: torch.Tensor, sent_other: torch.Tensor, got_ref: torch.Tensor,
            got_other: torch.Tensor) -> None:
        """Encoder indices ``[B]`` and decoder picks ``[B, K]`` on the reference / other device."""
        sent_ref, sent_other, got_ref, got_other = (t.cpu() for t in (sent_ref, sent_other, got_ref, got_other))
        self.messages += sent_ref.shape[0]
        self.picks += got_ref.numel()
        self.encoder += int((sent_ref == sent_other).sum())
        self.decoder += int((got_ref == got_other).sum())
        self.match_reference += int((got_ref == sent_ref[:, None]).sum())
        self.match_cross += int((got_other == sent_ref[:, None]).sum())

    def summary(self) -> dict:
        rate = lambda count, total: count / total if total else float("nan")  # noqa: E731
        return {
            **asdict(self),
            "encoder_agreement": rate(self.encoder, self.messages),
            "decoder_agreement": rate(self.decoder, self.picks),
            "match_rate_reference": rate(self.match_reference, self.picks),
            "match_rate_cross": rate(self.match_cross, self.picks),
        }


def _batches(total: int, batch: int) -> Iterator[tuple[int, int]]:
    check_positive_int(total, "messages")
    check_positive_int(batch, "batch")
    for start in range(0, total, batch):
        yield start, min(start + batch, total)


@torch.no_grad()
def agreement(source: str, options: Mapping[str, Any] | None, messages: int, reference: torch.device | str,
              other: torch.device | str, *, seeds: Sequence[int] = (0,), num_decoders: int = 4, rate_bits: int = 2,
              num_candidates: int | None = None, batch: int = 4096) -> Agreement:
    """Messages 0 .. ``messages`` - 1 of the registered ``source`` (with ``options``) coded on
    ``reference`` and on ``other``, once per coder seed in ``seeds``: the source's model runs on
    each device; sources and side information are drawn on the reference device and copied, so
    only the coding differs. The decoders on ``other`` read the reference encoder's labels.
    ``num_candidates`` None: the source's usual N."""
    reference, other = torch.device(reference), torch.device(other)
    spec = get_source(source)
    point = CodingPoint(Scheme.GLS.value, num_decoders, rate_bits, num_candidates or spec.num_candidates)
    counts = Agreement()
    for seed in seeds:
        for start, stop in _batches(messages, batch):
            ids = torch.arange(start, stop, device=reference)
            got = spec.coding_inputs(options, ids, num_decoders)
            coder = point.coder(seed, got.model.prior)
            sent_r = encode(got.model, coder, ids, got.sources)
            got_r = decode(got.model, coder, ids, sent_r.label, sent_r.check, got.side_information, fallback=False)
            model_o, ids_o = got.model.to(other), ids.to(other)
            sent_o = encode(model_o, coder, ids_o, got.sources.to(other))
            got_o = decode(model_o, coder, ids_o, sent_r.label.to(other), sent_r.check.to(other),
                           got.side_information.to(other), fallback=False)
            counts.add(sent_r.index, sent_o.index, got_r.index, got_o.index)
    return counts


def gaussian_agreement(messages: int, reference: torch.device | str, other: torch.device | str, *,
                       s2: float = 0.005, noise_var: float = 0.5, seed: int = 0, **settings) -> Agreement:
    """:func:`agreement` on the Gaussian source (the paper's K-decoder setting)."""
    return agreement("gaussian", {"s2": s2, "noise_var": noise_var}, messages, reference, other, seeds=(seed,),
                     **settings)


def _device(name: str) -> torch.device:
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r}: CUDA is not available on this machine")
    return device


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dsc.eval.cross_device", description=first_paragraph(__doc__),
                                     formatter_class=HelpFormatter)
    parser.add_argument("--source", choices=source_names(), default="gaussian", help="a registered source")
    parser.add_argument("--reference", default="cpu", help="device of the reference encoder and decoders")
    parser.add_argument("--other", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="device of the other encoder and decoders")
    parser.add_argument("--messages", type=int, default=None,
                        help=f"message ids 0 .. M-1 (default {DEFAULT_MESSAGES:,}, or all of a smaller data set)")
    parser.add_argument("--ckpt", help="the trained codec's checkpoint (--source mnist)")
    parser.add_argument("--seeds", type=int, default=1, help="coder seeds: every message is coded once per seed")
    parser.add_argument("--batch", type=int, default=4096, help="messages coded at once")
    parser.add_argument("--num-decoders", type=int, default=4, help="K")
    parser.add_argument("--rate-bits", type=int, default=2, help="label bits per message")
    parser.add_argument("--num-candidates", type=int, default=None,
                        help="N (default: the source's usual N; Gaussian 4096, MNIST 128)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    reference, other = _device(args.reference), _device(args.other)
    options = {} if args.ckpt is None else {"ckpt": args.ckpt}
    start = time.perf_counter()
    try:
        available = get_source(args.source).num_messages(options)
        count = args.messages or min(DEFAULT_MESSAGES, available or DEFAULT_MESSAGES)
        if available is not None and count > available:
            raise ConfigError(f"--messages {count}: {args.source} has {available} (message ids 0 .. {available - 1})")
        with strict_float32():
            counts = agreement(args.source, options, count, reference, other, seeds=range(args.seeds),
                               num_decoders=args.num_decoders, rate_bits=args.rate_bits,
                               num_candidates=args.num_candidates, batch=args.batch)
    except DscError as error:
        parser.exit(2, f"error: {error}\n")
    summary = {"source": args.source, "reference": str(reference), "other": str(other),
               **counts.summary(), "seconds": time.perf_counter() - start}
    if other.type == "cuda":
        summary["other_device_name"] = torch.cuda.get_device_name(other)
    print(json.dumps(summary, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)


if __name__ == "__main__":
    main()
