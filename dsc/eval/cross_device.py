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
import copy
import json
import time
from dataclasses import asdict, dataclass
from typing import Iterator, Sequence

import torch

from dsc.coding import CounterRandomness, ImportanceCoder
from dsc.coding.validation import check_positive_int
from dsc.environment import strict_float32
from dsc.errors import ConfigError
from dsc.eval.mnist import MnistSplitModel, SplitFeatures, load_codec, make_coder, split_dataset
from dsc.lit.mnist_module import MnistCodecModule
from dsc.models.gaussian import GaussianModel
from dsc.models.mnist import MnistCodecNetworks
from dsc.pipeline import decode, encode
from dsc.sources.gaussian import GaussianSource
from dsc.sources.mnist import MnistHalves


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


def gaussian_agreement(messages: int, reference: torch.device | str, other: torch.device | str, *,
                       num_decoders: int = 4, rate_bits: int = 2, num_candidates: int = 2**12,
                       s2: float = 0.005, noise_var: float = 0.5, seed: int = 0, batch: int = 4096,
                       dtype: torch.dtype = torch.float32) -> Agreement:
    """The Gaussian source through the GLS coder (the paper's K-decoder setting), coded on
    ``reference`` and on ``other``; sources and side information are drawn on the reference
    device and copied, so only the coding differs."""
    reference, other = torch.device(reference), torch.device(other)
    model = GaussianModel(s2, noise_var)
    coder = ImportanceCoder(seed=seed, prior=model.prior, num_candidates=num_candidates,
                            num_labels=2**rate_bits, num_decoders=num_decoders, dtype=dtype)
    source, rng = GaussianSource(noise_var), CounterRandomness(seed)
    counts = Agreement()
    for start, stop in _batches(messages, batch):
        ids = torch.arange(start, stop, device=reference)
        draw = source.sample(rng, ids, num_decoders)
        sent_r = encode(model, coder, ids, draw.source)
        got_r = decode(model, coder, ids, sent_r.label, sent_r.check, draw.side_info, fallback=False)
        ids_o = ids.to(other)
        sent_o = encode(model, coder, ids_o, draw.source.to(other))
        got_o = decode(model, coder, ids_o, sent_r.label.to(other), sent_r.check.to(other), draw.side_info.to(other),
                       fallback=False)
        counts.add(sent_r.index, sent_o.index, got_r.index, got_o.index)
    return counts


def mnist_agreement(codec: MnistCodecModule, dataset: MnistHalves, reference: torch.device | str,
                    other: torch.device | str, *, seeds: Sequence[int] = (0,), num_decoders: int = 4,
                    rate_bits: int = 2, num_candidates: int = 128, batch: int = 500) -> Agreement:
    """A trained MNIST codec on ``dataset`` (at least K crops per digit): the networks and the
    coder run on each device; every digit is one message per seed in ``seeds`` (messages =
    digits x len(seeds)). The decoders on ``other`` read the reference encoder's labels."""
    reference, other = torch.device(reference), torch.device(other)
    sides = []
    for device in (reference, other):
        nets = copy.deepcopy(codec.nets).eval().to(device)
        sides.append((device, nets, SplitFeatures.compute(nets, dataset, device, batch)))
    counts = Agreement()
    for seed in seeds:
        coder = make_coder(seed, sides[0][2].mean.shape[1], "gls", num_decoders, rate_bits, num_candidates)
        for start, stop in _batches(len(dataset), batch):
            (_, nets_r, split_r), (_, nets_o, split_o) = sides
            sent_r, got_r, label = _mnist_picks(nets_r, split_r, coder, torch.arange(start, stop, device=reference))
            sent_o, got_o, _ = _mnist_picks(nets_o, split_o, coder, torch.arange(start, stop, device=other),
                                            label.to(other))
            counts.add(sent_r, sent_o, got_r, got_o)
    return counts


@torch.no_grad()
def _mnist_picks(nets: MnistCodecNetworks, split: SplitFeatures, coder: ImportanceCoder, index: torch.Tensor,
                 sent_label: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(encoder index ``[B]``, decoder picks ``[B, K]``, label ``[B]``) on ``index``'s device; the
    decoders read ``sent_label`` when given (the reference encoder's message), else their own."""
    model = MnistSplitModel(nets, split)
    sent = encode(model, coder, index, index)
    label = sent.label if sent_label is None else sent_label
    got = decode(model, coder, index, label, torch.zeros_like(label), model.side(index, coder.num_decoders),
                 fallback=False)
    return sent.index, got.index, sent.label


def _device(name: str) -> torch.device:
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r}: CUDA is not available on this machine")
    return device


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dsc.eval.cross_device", description=__doc__.splitlines()[0])
    parser.add_argument("--source", choices=("gaussian", "mnist"), default="gaussian")
    parser.add_argument("--reference", default="cpu", help="device of the reference encoder and decoders")
    parser.add_argument("--other", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--messages", type=int, default=100_000, help="Gaussian messages")
    parser.add_argument("--ckpt", help="MNIST codec checkpoint (--source mnist)")
    parser.add_argument("--seeds", type=int, default=10, help="MNIST: coder seeds (messages = digits x seeds)")
    parser.add_argument("--limit", type=int, default=None, help="MNIST: first test digits only")
    parser.add_argument("--num-decoders", type=int, default=4)
    parser.add_argument("--rate-bits", type=int, default=2)
    parser.add_argument("--num-candidates", type=int, default=None, help="N (Gaussian 4096, MNIST 128)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    reference, other = _device(args.reference), _device(args.other)
    start = time.perf_counter()
    with strict_float32():
        if args.source == "gaussian":
            counts = gaussian_agreement(args.messages, reference, other, num_decoders=args.num_decoders,
                                        rate_bits=args.rate_bits, num_candidates=args.num_candidates or 2**12)
        else:
            if not args.ckpt:
                parser.error("--source mnist needs --ckpt (a checkpoint of model=mnist_vae)")
            codec = load_codec(args.ckpt)
            dataset, origin = split_dataset(codec, "test", args.num_decoders, 0, args.limit)
            print(f"data: {origin}, {len(dataset)} test digits")
            counts = mnist_agreement(codec, dataset, reference, other, seeds=range(args.seeds),
                                     num_decoders=args.num_decoders, rate_bits=args.rate_bits,
                                     num_candidates=args.num_candidates or 128)
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
