"""Cross-device agreement of the encoder's and decoders' picks (dsc.eval.cross_device)."""

from __future__ import annotations

import json

import pytest
import torch

import dsc
from dsc.environment import strict_float32
from dsc.eval.cross_device import Agreement, agreement, gaussian_agreement, main

CPU = torch.device("cpu")


def test_agreement_counts_against_hand_computed_values():
    counts = Agreement()
    sent_ref = torch.tensor([3, 7, 1])
    sent_other = torch.tensor([3, 6, 1])  # message 1 encoded differently
    got_ref = torch.tensor([[3, 0], [7, 7], [2, 1]])
    got_other = torch.tensor([[3, 0], [7, 5], [1, 2]])  # three picks differ
    counts.add(sent_ref, sent_other, got_ref, got_other)
    summary = counts.summary()
    assert (counts.messages, counts.picks, counts.encoder, counts.decoder) == (3, 6, 2, 3)
    assert (counts.match_reference, counts.match_cross) == (4, 3)
    assert summary["encoder_agreement"] == pytest.approx(2 / 3)
    assert summary["decoder_agreement"] == pytest.approx(3 / 6)
    assert summary["match_rate_cross"] == pytest.approx(3 / 6)


def test_strict_float32_turns_tf32_off_and_restores_it_even_on_error():
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        with pytest.raises(RuntimeError, match="inside"):
            with strict_float32():
                assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
                raise RuntimeError("inside")
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


def test_the_same_device_agrees_exactly_and_decoders_often_recover_the_encoders_pick():
    counts = gaussian_agreement(3000, "cpu", "cpu", num_candidates=256, rate_bits=4, s2=0.01, batch=1024)
    summary = counts.summary()
    assert summary["encoder_agreement"] == summary["decoder_agreement"] == 1.0
    assert counts.match_reference == counts.match_cross
    # with 4 bits and N = 256 each decoder faces about 16 candidates of the sent label: far above chance (1/16)
    assert summary["match_rate_reference"] > 0.3


def test_command_line_writes_its_figures(tmp_path):
    out = tmp_path / "agreement.json"
    main(["--messages", "500", "--other", "cpu", "--num-candidates", "64", "--json", str(out)])
    figures = json.loads(out.read_text())
    assert figures["messages"] == 500 and figures["picks"] == 2000 and figures["decoder_agreement"] == 1.0


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised where CUDA is absent")
def test_asking_for_cuda_without_it_is_a_clear_error():
    with pytest.raises(dsc.ConfigError, match="CUDA is not available"):
        main(["--messages", "10", "--other", "cuda"])


@pytest.mark.gpu
def test_cpu_encoder_and_cuda_decoders_agree_on_gaussian_messages():
    """10**5 messages, K = 4: picks may flip only at near-ties of float32 log-weights."""
    with strict_float32():
        counts = gaussian_agreement(100_000, "cpu", "cuda", num_candidates=2**12, rate_bits=2, batch=8192)
    summary = counts.summary()
    assert summary["encoder_agreement"] >= 0.999, summary
    assert summary["decoder_agreement"] >= 0.999, summary
    assert abs(counts.match_cross - counts.match_reference) <= counts.picks - counts.decoder


@pytest.mark.gpu
def test_cpu_encoder_and_cuda_decoders_agree_on_mnist_digits(tiny_codec):
    with strict_float32():
        counts = agreement("mnist", {"ckpt": str(tiny_codec())}, 96, "cpu", "cuda", seeds=range(3), num_candidates=128)
    summary = counts.summary()
    assert counts.messages == 3 * 96
    assert summary["encoder_agreement"] >= 0.99, summary
    assert summary["decoder_agreement"] >= 0.99, summary


def test_every_network_that_feeds_a_selection_runs_without_tf32():
    """The MNIST evaluation's encoder, estimator and decoder see TF32 off even where the caller
    left it on (torch's default for cuDNN convolutions)."""
    from dsc.eval.image_point import SplitFeatures, code_images, make_coder
    from dsc.lit.image_module import ImageCodecModule
    from dsc.sources.images import ImageHalves, SideInfo

    nets = ImageCodecModule(channels=8, hidden=32, features=16, estimator_hidden=32).nets.eval()
    seen = []
    for name, layer in nets.named_modules():
        if isinstance(layer, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            layer.register_forward_hook(lambda *_, name=name: seen.append(
                (name.split(".")[0], torch.backends.cudnn.allow_tf32 or torch.backends.cuda.matmul.allow_tf32)))
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
        split = SplitFeatures.compute(nets, ImageHalves(torch.rand(6, 28, 28), 2, SideInfo("crop", 7), seed=0), CPU)
        code_images(nets, split, make_coder(0, 4, "gls", 2, 1, 16), torch.arange(6))
        assert torch.backends.cudnn.allow_tf32  # restored afterwards
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
    assert {net for net, _ in seen} == {"encoder", "estimator", "projection", "decoder"}
    assert not any(tf32 for _, tf32 in seen)
