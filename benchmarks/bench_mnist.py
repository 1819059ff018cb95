"""Speed of the MNIST codec: training steps and one evaluation point on the test split.

Run from the repository root::

    python -m benchmarks.bench_mnist                    # every available device
    python -m benchmarks.bench_mnist --device cpu --digits 2000

Prints, per device, with the paper's full-width networks (Table 12, untrained weights: the
timings do not depend on them):

- the median seconds of one training step (forward, backward, Adam) at ``--batch-size`` in
  float32 and in bfloat16 autocast (``trainer.precision=bf16-mixed``), the epoch time each
  implies for full MNIST (55,000 training digits, 5,000 validation digits) and their ratio;
- the seconds per step of a real Lightning fit (``train.py``'s own trainer, loggers and
  callbacks, ``--fit-steps`` batches) beside the bare step: the loop's overhead per step;
- the seconds to evaluate one (scheme, K, rate, N) point on ``--digits`` test digits, for the
  project's path (:func:`dsc.eval.image_point.evaluate_point`: networks run once per split, the
  estimator's crop share computed once per crop) and for a reference written here that reruns
  every network per point and scores candidates on the concatenation [w, projection(t)], in
  the same process, with their ratio. Both give the same MSE up to float rounding;
- with ``--processes P``, training steps per second of P concurrent processes against one;
- the codec's throughput as deployed: encode (encoder network + GLS encode) and decode at K
  decoders (estimator + GLS decode + reconstruction), digits per second.
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Sequence

import lightning as L
import torch

from benchmarks.timing import median_seconds, sync
from dsc import pipeline
from dsc.eval.image_point import (
    PosteriorLogRatio,
    SplitFeatures,
    evaluate_point,
    make_coder,
    split_dataset,
)
from dsc.helptext import HelpFormatter, first_paragraph
from dsc.lit.image_module import ImageCodecModule
from dsc.models.image_codec import ImageModel
from dsc.sources.images import ImageHalves, ImageItem, SideInfo

TRAIN_DIGITS, VAL_DIGITS = 55_000, 5_000


PRECISIONS = ("32-true", "bf16-mixed")


def time_training(module: ImageCodecModule, dataset, device: torch.device, batch_size: int,
                  steps: int, precision: str = "32-true") -> tuple[float, float]:
    """Median seconds of a training step and of a validation step at ``batch_size``, under
    ``precision`` (32-true, or bf16-mixed: the networks in bfloat16 autocast, as Lightning does)."""
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16-mixed")
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
    batches = [dataset[i % len(dataset)] for i in range(batch_size)]
    source = torch.stack([b.source for b in batches]).to(device)
    side = torch.stack([b.side_info for b in batches]).to(device)
    batch = ImageItem(source, side, torch.arange(batch_size))

    def train_step():
        module.train()
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            loss = module.losses(batch)["loss"]
        loss.backward()
        optimizer.step()

    def val_step():
        module.eval()
        with torch.no_grad(), autocast:
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
def time_encode_decode(nets, dataset, coder, batch_size: int, device: torch.device,
                       repeats: int) -> tuple[float, float]:
    """Seconds to encode every digit (encoder network + GLS encode) and to decode them at the
    coder's K decoders (estimator + GLS decode + projection + reconstruction), as a deployment
    runs them: each side computes its own networks, data already on the device."""
    k = coder.num_decoders
    model = ImageModel(nets)
    batches = []
    for start in range(0, len(dataset), batch_size):
        index = torch.arange(start, min(start + batch_size, len(dataset)))
        source, crops = (t.to(device) for t in dataset.batch(index))
        batches.append((index.to(device), source, crops[:, :k]))
    labels = []

    def encode():
        labels.clear()
        for index, source, _ in batches:
            labels.append(pipeline.encode(model, coder, index, source).label)

    def decode():
        for (index, _, crops), label in zip(batches, labels):
            pipeline.decode(model, coder, index, label, torch.zeros_like(label), crops, fallback=False)

    encode()  # warm-up, and the labels for decode()
    return median_seconds(encode, device, repeats), median_seconds(decode, device, repeats)


class _TrainLoopTimer(L.Callback):
    """Wall-clock seconds and batches of the training loop alone (validation excluded)."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.seconds, self.batches = device, 0.0, 0

    def on_train_epoch_start(self, trainer, module) -> None:
        sync(self.device)
        self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.batches += 1

    def on_train_epoch_end(self, trainer, module) -> None:
        sync(self.device)
        self.seconds += time.perf_counter() - self.start


def time_fit(device: torch.device, batch_size: int, steps: int, precision: str, output_dir: Path) -> float:
    """Seconds per training step of a real ``train.py`` fit (the real configs: default model,
    CSV logger, every callback) over ``steps`` batches, measured inside the training loop."""
    from hydra import compose, initialize_config_module

    from dsc.lit.train import run_training

    overrides = [f"data.limit={steps * batch_size}", f"data.batch_size={batch_size}", "trainer.max_epochs=1",
                 "trainer.limit_val_batches=1", f"trainer.precision={precision}", "logger=csv",
                 "trainer.enable_progress_bar=false", "+trainer.enable_model_summary=false", f"device={device}",
                 f"paths.output_dir={output_dir}"]
    with initialize_config_module("dsc.conf", version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    timer = _TrainLoopTimer(device)
    run_training(cfg, extra_callbacks=[timer])
    return timer.seconds / timer.batches


def time_precisions(device: torch.device, dataset, args) -> None:
    """The training-speed table: bare step, validation step, implied epoch and (``--fit-steps``)
    the Lightning loop per step, for each precision, with ratios against float32."""
    steps_per_epoch = math.ceil(TRAIN_DIGITS / args.batch_size), math.ceil(VAL_DIGITS / args.batch_size)
    print(f"{'precision':>12} {'train step':>11} {'val step':>9} {'epoch (implied)':>16} {'30 epochs':>10} "
          f"{'vs 32-true':>10} {'Lightning step':>15} {'loop overhead':>14}")
    reference = None
    for precision in args.precision or PRECISIONS:
        torch.manual_seed(0)
        module = ImageCodecModule().to(device)
        step, val_step = time_training(module, dataset, device, args.batch_size, args.steps, precision)
        epoch = steps_per_epoch[0] * step + steps_per_epoch[1] * val_step
        reference = reference or epoch
        fit = ""
        if args.fit_steps:
            with tempfile.TemporaryDirectory() as tmp:
                fit_step = time_fit(device, args.batch_size, args.fit_steps, precision, Path(tmp))
            fit = f"{fit_step * 1e3:12.1f} ms {(fit_step - step) * 1e3:11.1f} ms"
        print(f"{precision:>12} {step * 1e3:8.1f} ms {val_step * 1e3:6.1f} ms {epoch:14.1f} s "
              f"{30 * epoch / 60:7.1f} min {reference / epoch:9.2f}x {fit}")
    fit = f"; Lightning step: {args.fit_steps} batches of a real fit" if args.fit_steps else ""
    print(f"(medians of {args.steps} steps at batch {args.batch_size}; epoch = {steps_per_epoch[0]} training + "
          f"{steps_per_epoch[1]} validation steps{fit})")


def _concurrent_worker(device_name: str, threads: int, batch_size: int, steps: int, precision: str, barrier,
                       results) -> None:
    """One of several training processes on one device: warm up, wait for the others, time."""
    torch.set_num_threads(threads)
    device = torch.device(device_name)
    torch.manual_seed(0)
    module = ImageCodecModule().to(device)
    dataset = ImageHalves(torch.rand(batch_size, 28, 28), 1, SideInfo("crop", 7))
    time_training(module, dataset, device, batch_size, 2, precision)  # warm-up
    barrier.wait()
    results.put(time_training(module, dataset, device, batch_size, steps, precision)[0])


def time_concurrent(device: torch.device, args, precision: str) -> None:
    """Training steps per second of one process against ``--processes`` concurrent ones on the
    same device (the CPU's threads split evenly between them): what training several betas at
    once (``JOBS`` in studies/mnist_paper/run.sh) gains over one after the other."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    total_threads = torch.get_num_threads()
    rates = {}
    for processes in (1, args.processes):
        threads = max(1, total_threads // processes) if device.type == "cpu" else total_threads
        barrier, results = context.Barrier(processes), context.Queue()
        workers = [context.Process(target=_concurrent_worker, args=(str(device), threads, args.batch_size, args.steps,
                                                                    precision, barrier, results))
                   for _ in range(processes)]
        for worker in workers:
            worker.start()
        steps = [results.get() for _ in workers]
        for worker in workers:
            worker.join()
        rates[processes] = sum(1 / s for s in steps)
        print(f"{processes} training process(es) x {threads} thread(s), {precision}: {rates[processes]:.2f} steps/s "
              f"in all (median step {statistics.median(steps) * 1e3:.0f} ms)")
    print(f"{args.processes} concurrent processes / 1 process: "
          f"{rates[args.processes] / rates[1]:.2f}x the steps per second")


def run(device: torch.device, args) -> None:
    torch.manual_seed(0)
    module = ImageCodecModule().to(device)
    dataset, origin = split_dataset(module, "test", args.num_decoders, seed=0, limit=args.digits)
    print(f"\n[{device}] data: {origin}")
    time_precisions(device, dataset, args)
    if args.processes > 1:
        time_concurrent(device, args, (args.precision or PRECISIONS)[-1])

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
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_mnist", description=first_paragraph(__doc__),
                                     formatter_class=HelpFormatter)
    parser.add_argument("--device", action="append", help="cpu, cuda, ... (default: every available device)")
    parser.add_argument("--batch-size", type=int, default=64, help="training batch size (paper: 64)")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps")
    parser.add_argument("--precision", action="append", choices=PRECISIONS,
                        help="training precision to time (default: both)")
    parser.add_argument("--fit-steps", type=int, default=60,
                        help="batches of a real Lightning fit to time per precision (0: skip)")
    parser.add_argument("--processes", type=int, default=1,
                        help="also time this many concurrent training processes against one (1: skip)")
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
