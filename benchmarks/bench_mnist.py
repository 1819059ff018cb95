"""Speed of the MNIST codec: training steps and one evaluation point on the test split.

Run from the repository root::

    python -m benchmarks.bench_mnist                    # every available device
    python -m benchmarks.bench_mnist --device cpu --digits 2000

Prints, per device, with the paper's full-width networks (Table 12, untrained weights: the
timings do not depend on them):

- the median seconds of one training step (forward, backward, Adam) at ``--batch-size``, and
  the epoch time it implies for full MNIST (55,000 training digits, 5,000 validation digits);
- the seconds to evaluate one (scheme, K, rate, N) point on ``--digits`` test digits, for the
  project's path (:func:`dsc.eval.mnist.evaluate_point`: networks run once per split, the
  estimator's crop share computed once per crop) and for a reference written here that reruns
  every network per point and scores candidates on the concatenation [w, projection(t)], in
  the same process, with their ratio. Both give the same MSE up to float rounding;
- the codec's throughput as deployed: encode (encoder network + GLS encode) and decode at K
  decoders (estimator + GLS decode + reconstruction), digits per second.
"""

from __future__ import annotations

import argparse
import math
import platform
from typing import Sequence

import torch

from benchmarks.timing import median_seconds
from dsc.eval.mnist import (
    DecoderLogRatio, PosteriorLogRatio, SplitFeatures, evaluate_point, make_coder, split_dataset,
)
from dsc.lit.mnist_module import MnistCodecModule
from dsc.sources.mnist import MnistItem

TRAIN_DIGITS, VAL_DIGITS = 55_000, 5_000


def time_training(module: MnistCodecModule, dataset, device: torch.device, batch_size: int,
                  steps: int) -> tuple[float, float]:
    """Median seconds of a training step and of a validation step at ``batch_size``."""
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
    batches = [dataset[i % len(dataset)] for i in range(batch_size)]
    source = torch.stack([b.source for b in batches]).to(device)
    side = torch.stack([b.side_info for b in batches]).to(device)
    batch = MnistItem(source, side, torch.arange(batch_size))

    def train_step():
        module.train()
        optimizer.zero_grad(set_to_none=True)
        module.losses(batch)["loss"].backward()
        optimizer.step()

    def val_step():
        module.eval()
        with torch.no_grad():
            module.losses(batch)

    train_step()  # warm-up
    val_step()
    return median_seconds(train_step, device, steps), median_seconds(val_step, device, steps)


@torch.no_grad()
def reference_point(nets, dataset, coder, batch_size: int) -> float:
    """Best-of-K MSE of one point, every network rerun per batch, estimator on concatenations."""
    k, total, count = coder.num_decoders, 0.0, 0
    device = next(nets.parameters()).device
    for start in range(0, len(dataset), batch_size):
        index = torch.arange(start, min(start + batch_size, len(dataset)), device=device)
        source, crops = (t.to(device) for t in dataset.batch(index.cpu()))
        encoder_weight = PosteriorLogRatio(nets.encoder(source))
        sent = coder.encode(index, encoder_weight, encoder_weight.maximum())

        def decoder_weight(w):  # [B, n, d] -> [B, K, n]
            scores = []
            for j in range(k):
                features = nets.estimator.projection(crops[:, j])[:, None, :].expand(-1, w.shape[1], -1)
                scores.append(nets.estimator.net(torch.cat([w, features], dim=-1)).squeeze(-1))
            return torch.stack(scores, dim=1)

        got = coder.decode(index, sent.label, decoder_weight)
        recon = nets.decoder(got.candidate.flatten(0, 1), nets.projection(crops.flatten(0, 1)))
        mse = ((recon.view(index.shape[0], k, 1, 28, 14) - source[:, None]) / 2).pow(2).flatten(2).mean(-1)
        total += mse.min(1).values.sum().item()
        count += index.shape[0]
    return total / count


@torch.no_grad()
def time_encode_decode(nets, dataset, coder, batch_size: int, device: torch.device, repeats: int) -> tuple[float, float]:
    """Seconds to encode every digit (encoder network + GLS encode) and to decode them at the
    coder's K decoders (estimator + GLS decode + projection + reconstruction), as a deployment
    runs them: each side computes its own networks, data already on the device."""
    k = coder.num_decoders
    batches = []
    for start in range(0, len(dataset), batch_size):
        index = torch.arange(start, min(start + batch_size, len(dataset)))
        source, crops = (t.to(device) for t in dataset.batch(index))
        batches.append((index.to(device), source, crops[:, :k]))
    labels = []

    def encode():
        labels.clear()
        for index, source, _ in batches:
            weight = PosteriorLogRatio(nets.encoder(source))
            labels.append(coder.encode(index, weight, weight.maximum()).label)

    def decode():
        for (index, _, crops), label in zip(batches, labels):
            got = coder.decode(index, label, DecoderLogRatio(nets.estimator, nets.estimator.crop_bias(crops)))
            nets.decoder(got.candidate.flatten(0, 1), nets.projection(crops.flatten(0, 1)))

    encode()  # warm-up, and the labels for decode()
    return median_seconds(encode, device, repeats), median_seconds(decode, device, repeats)


def run(device: torch.device, args) -> None:
    torch.manual_seed(0)
    module = MnistCodecModule().to(device)
    dataset, origin = split_dataset(module, "test", args.num_decoders, seed=0, limit=args.digits)
    step, val_step = time_training(module, dataset, device, args.batch_size, args.steps)
    epoch = math.ceil(TRAIN_DIGITS / args.batch_size) * step + math.ceil(VAL_DIGITS / args.batch_size) * val_step
    print(f"\n[{device}] data: {origin}")
    print(f"training step, batch {args.batch_size}: {step * 1e3:.1f} ms (median of {args.steps}); "
          f"validation step {val_step * 1e3:.1f} ms")
    print(f"implied epoch on full MNIST: {epoch:.1f} s; 30 epochs: {30 * epoch / 60:.1f} min")

    module.eval()
    coder = make_coder(0, module.hparams.latent_dim, args.scheme, args.num_decoders, args.rate_bits,
                       args.num_candidates)
    outcome = {}

    def features():
        outcome["split"] = SplitFeatures.compute(module.nets, dataset, device, args.eval_batch)

    def point():
        outcome["mse"] = evaluate_point(module.nets, outcome["split"], coder, args.eval_batch).summary()["mse"]

    def reference():
        outcome["reference"] = reference_point(module.nets, dataset, coder, args.eval_batch)

    features_s = median_seconds(features, device, args.repeats)
    point_s = median_seconds(point, device, args.repeats)
    reference_s = median_seconds(reference, device, args.repeats)
    print(f"evaluation point {args.scheme} K={args.num_decoders} R={args.rate_bits} N={args.num_candidates} "
          f"on {len(dataset)} test digits:")
    print(f"{'':>34} {'seconds':>9} {'digits/s':>10} {'best-of-K mse':>14}")
    rows = (("dsc, networks once per split", features_s, None),
            ("dsc, each point", point_s, outcome["mse"]),
            ("dsc, first point (both above)", features_s + point_s, outcome["mse"]),
            ("reference, every point", reference_s, outcome["reference"]))
    for name, seconds, mse in rows:
        shown = "" if mse is None else f"{mse:14.5f}"
        print(f"{name:>34} {seconds:9.2f} {len(dataset) / seconds:10.0f} {shown}")
    print(f"reference / dsc: {reference_s / (features_s + point_s):.2f}x for one point, "
          f"{reference_s / point_s:.2f}x per further point on the same split (the protocol's case)")
    encode_s, decode_s = time_encode_decode(module.nets, dataset, coder, args.eval_batch, device, args.repeats)
    print(f"codec throughput: encode {len(dataset) / encode_s:,.0f} digits/s, decode at {args.num_decoders} "
          f"decoders {len(dataset) / decode_s:,.0f} digits/s ({args.num_decoders * len(dataset) / decode_s:,.0f} "
          "decoder outputs/s)")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_mnist", description=__doc__.splitlines()[0])
    parser.add_argument("--device", action="append", help="cpu, cuda, ... (default: every available device)")
    parser.add_argument("--batch-size", type=int, default=64, help="training batch size (paper: 64)")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps")
    parser.add_argument("--digits", type=int, default=10_000, help="test digits of the evaluation point")
    parser.add_argument("--eval-batch", type=int, default=500)
    parser.add_argument("--scheme", default="gls")
    parser.add_argument("--num-decoders", type=int, default=4)
    parser.add_argument("--rate-bits", type=int, default=2)
    parser.add_argument("--num-candidates", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=1, help="timed repeats of the evaluation point")
    args = parser.parse_args(argv)
    devices = args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    print(f"torch {torch.__version__} | {platform.processor() or platform.machine()} | "
          f"{torch.get_num_threads()} CPU threads")
    for name in devices:
        device = torch.device(name)
        if device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
            print(f"GPU: {torch.cuda.get_device_name(device)}")
        run(device, args)


if __name__ == "__main__":
    main()
