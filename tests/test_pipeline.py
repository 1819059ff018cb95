"""The one coding pipeline (dsc.pipeline): it gives bit for bit what each job computed on its
own before it existed (the per-job code is kept here as the reference), its halves compose, and
the bitstream codec and the evaluations see the same picks."""

from __future__ import annotations

import torch

from dsc import pipeline
from dsc.codec import CodingSetting, compress, decompress
from dsc.coding import CounterRandomness, ImportanceCoder
from dsc.eval.gaussian import GaussianRateDistortion
from dsc.eval.image_point import ImageSplitModel, SplitFeatures, code_images, make_coder
from dsc.lit.image_module import ImageCodecModule
from dsc.models.gaussian import AnalyticGaussianModel, GaussianModel
from dsc.models.image_codec import ImageModel, Posterior, PosteriorLogRatio
from dsc.models.network_model import EstimatorLogRatio
from dsc.sources.gaussian import GaussianSource
from dsc.sources.images import ImageHalves, SideInfo

TINY = dict(channels=8, hidden=32, features=16, estimator_hidden=32)


def _reference_gaussian_batch(s2, seed, messages, k, coder, check_bits):
    """The Gaussian job's batch as it was written before the pipeline: picks, reconstructions,
    matches, acceptances and fallbacks straight from the coder."""
    model = AnalyticGaussianModel(s2, 0.5)
    draw = GaussianSource(0.5).sample(CounterRandomness(seed), messages, k)
    encoder_weight = model.encoder_log_weight(draw.source)
    sent = coder.encode(messages, encoder_weight, encoder_weight.maximum())
    decoder_weight = model.decoder_log_weight(draw.side_info)
    got = coder.decode(messages, sent.label, decoder_weight, log_weight_max=decoder_weight.maximum())
    recon = model.reconstruct(got.candidate[..., 0].double(), draw.side_info)
    checks = pipeline.check_values(seed, messages, torch.cat([sent.index[:, None], got.index], dim=1), check_bits)
    accepted = got.found & (checks[:, 1:] == checks[:, :1])
    return draw, sent, got, recon, accepted, model.decoder_mean(draw.side_info.double())


def test_gaussian_pipeline_equals_the_per_job_code_bit_for_bit():
    for scheme, check_bits in (("gls", 0), ("gls", 4), ("shared_randomness", 3)):
        coder = ImportanceCoder(seed=5, prior=AnalyticGaussianModel(0.003).prior, num_candidates=1024, num_labels=4,
                                num_decoders=3, scheme=scheme)
        messages = torch.arange(100, 400)
        draw, sent, got, recon, accepted, fallback = _reference_gaussian_batch(0.003, 5, messages, 3, coder, check_bits)
        coded = pipeline.code(GaussianModel(0.003), coder, messages, draw.source, draw.side_info, check_bits)
        assert torch.equal(coded.encoded.index, sent.index) and torch.equal(coded.encoded.label, sent.label)
        assert torch.equal(coded.decoded.index, got.index) and torch.equal(coded.decoded.picked, recon)
        assert torch.equal(coded.decoded.accepted, accepted) and torch.equal(coded.decoded.fallback, fallback)
        assert torch.equal(coded.match, got.index == sent.index[:, None])
        # and the evaluation job's totals are those of the pipeline's outputs
        job = GaussianRateDistortion(scheme=scheme, num_decoders=3, rate_bits=2, num_candidates=1024,
                                     check_bits=check_bits, test_channel_variances=[0.003], progress=False)
        totals = job.simulate_batch(0.003, 5, messages)
        assert totals.matches == int(coded.match.any(dim=1).sum())
        best = ((draw.source[:, None] - recon) ** 2).min(dim=1).values
        assert totals.best == best.sum().item()


def _split(k=3, n=60):
    torch.manual_seed(0)
    nets = ImageCodecModule(**TINY).nets.eval()
    halves = ImageHalves(torch.rand(n, 28, 28), k, SideInfo("crop", 7), seed=0)
    return nets, halves, SplitFeatures.compute(nets, halves, torch.device("cpu"))


def test_mnist_pipeline_equals_the_per_job_code_bit_for_bit():
    nets, _, split = _split()
    coder = make_coder(1, 4, "gls", 3, 2, 64)
    index = torch.arange(10, 50)
    with torch.no_grad():
        encoder_weight = PosteriorLogRatio(Posterior(split.mean[index], split.log_var[index]))
        sent = coder.encode(index, encoder_weight, encoder_weight.maximum())
        got = coder.decode(index, sent.label, EstimatorLogRatio(nets.estimator, split.crop_bias[index, :3]))
        features = split.features[index, :3].flatten(0, 1)
        recon = nets.decoder(got.candidate.flatten(0, 1).to(features.dtype), features).view(40, 3, 1, 28, 14)
        fallback = nets.decoder(torch.zeros(120, 4), features).view(40, 3, 1, 28, 14)
    coded = code_images(nets, split, coder, index, check_bits=6, fallback=True)
    assert torch.equal(coded.encoded.index, sent.index) and torch.equal(coded.decoded.index, got.index)
    assert torch.equal(coded.decoded.picked, recon) and torch.equal(coded.decoded.fallback, fallback)
    assert bool(coded.decoded.accepted[coded.match].all())


def test_split_features_model_and_network_model_give_the_same_picks_and_images():
    """The evaluation's model (network outputs computed once per split) and the codec's model
    (networks run on images and crops) are the same model: same picks, same reconstructions."""
    nets, halves, split = _split()
    coder = make_coder(2, 4, "gls", 3, 2, 64)
    index = torch.arange(60)
    source, crops = halves.batch(index)
    with torch.no_grad():
        from_split = code_images(nets, split, coder, index, check_bits=2, fallback=True)
        from_nets = pipeline.code(ImageModel(nets), coder, index, source, crops, check_bits=2)
    assert torch.equal(from_split.encoded.index, from_nets.encoded.index)
    assert torch.equal(from_split.decoded.index, from_nets.decoded.index)
    assert torch.allclose(from_split.decoded.output, from_nets.decoded.output, atol=1e-6)
    assert ImageSplitModel(nets, split).identity() == ImageModel(nets).identity()


def test_decoding_a_subset_of_decoders_equals_those_columns_and_outputs_fall_back():
    model = GaussianModel(0.005)
    coder = ImportanceCoder(seed=0, prior=model.prior, num_candidates=64, num_labels=16, num_decoders=4)
    messages = torch.arange(500)
    draw = GaussianSource(0.5).sample(CounterRandomness(0), messages, 4)
    coded = pipeline.code(model, coder, messages, draw.source, draw.side_info, check_bits=2)
    some = pipeline.decode(model, coder, messages, coded.encoded.label, coded.encoded.check, draw.side_info[:, [3, 1]],
                           decoders=[3, 1], check_bits=2)
    full = coded.decoded
    assert torch.equal(some.index, full.index[:, [3, 1]]) and torch.equal(some.accepted, full.accepted[:, [3, 1]])
    assert torch.equal(some.picked, full.picked[:, [3, 1]])
    rejected = ~full.accepted
    assert rejected.any() and full.accepted.any()  # 16 labels x 64 candidates: some bins miss
    assert torch.equal(full.output[rejected], full.fallback[rejected])
    assert torch.equal(full.output[full.accepted], full.picked[full.accepted])


def test_a_bitstream_carries_exactly_the_pipelines_labels_and_decoder_outputs():
    model = GaussianModel(0.003)
    setting = CodingSetting(seed=4, num_candidates=512, rate_bits=3, num_decoders=2, check_bits=5)
    draw = GaussianSource(0.5).sample(CounterRandomness(9), torch.arange(200), 2)
    data = compress(model, draw.source, setting)
    messages = torch.arange(200)  # the stream's message ids (first_message 0)
    coded = pipeline.code(model, setting.coder(model.prior), messages, draw.source, draw.side_info, check_bits=5)
    for k in range(2):
        out = decompress(data, model, draw.side_info[:, k], setting, decoder=k)
        assert torch.equal(out.index, coded.decoded.index[:, k])
        assert torch.equal(out.accepted, coded.decoded.accepted[:, k])
        assert torch.equal(out.reconstruction, coded.decoded.output[:, k])
