"""Crafted streams and huge arguments: every size is checked before anything large is allocated,
only the decoding decoder's side information is built, and messages are coded in chunks.

The command-line cases run in one child process whose address space is limited (after its
imports) to what it already holds plus :data:`HEADROOM_MB`; each case's peak resident memory
above its start is measured and bounded as well. Before these fixes the same cases asked for
10 to 524 GB.
"""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import sys
import textwrap
import zlib

import pytest
import torch

import dsc
import dsc.codec
from dsc.bitstream import MAX_DECODERS, MAX_MESSAGES, MAX_STREAM_BYTES
from dsc.codec import CodingSetting, GaussianModel, compress, decompress, fingerprint
from dsc.coding import GaussianPrior, ImportanceCoder
from dsc.coding.streams import MAX_ROWS
from dsc.registry import get_source
from dsc.sources.images import ImageHalves, SideInfo

CPU = torch.device("cpu")

HEADROOM_MB = 512  # address space the child may add to what it holds after its imports
PEAK_MB = 300  # resident memory a case may add at its peak

CHILD = textwrap.dedent("""
    import contextlib, io, json, resource, sys, time
    import torch
    from dsc.cli import main

    def status():
        values = {}
        for line in open("/proc/self/status"):
            key, _, rest = line.partition(":")
            if rest.strip().endswith("kB"):
                values[key] = int(rest.split()[0]) / 1024
        return values

    def reset_peak():
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # resets VmHWM to the current resident size
            return True
        except OSError:
            return False

    def call(argv):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except BaseException as error:  # what would reach the user as a traceback
                code, err = None, io.StringIO(f"Traceback: {type(error).__name__}: {error}")
        return code, out.getvalue(), err.getvalue()

    cases, workdir, headroom = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    call(["compress", "gaussian", f"{workdir}/warm.dsc", "--count", "50"])  # lazy imports, thread pools
    call(["decompress", "gaussian", f"{workdir}/warm.dsc"])
    limit = int((status()["VmSize"] + headroom) * 2**20)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    results = {}
    for name, argv in cases.items():
        start = status()["VmRSS"]
        measured = reset_peak()
        began = time.perf_counter()
        code, out, err = call(argv)
        peak = status()["VmHWM"] - start if measured else None
        results[name] = {"code": code, "out": out, "err": err, "peak_mb": peak,
                         "seconds": time.perf_counter() - began}
    print("RESULTS " + json.dumps(results))
""")


def crafted(fingerprint_: bytes, num_candidates: int, label_bits: int, num_decoders: int, check_bits: int,
            num_messages: int) -> bytes:
    """A stream written out by hand from the documented layout, payload all zero bits."""
    head = (b"DSC\x1a" + bytes([1, 0]) + fingerprint_
            + struct.pack("<QIBHBQI", 0, num_candidates, label_bits, num_decoders, check_bits, 0, num_messages))
    body = head + bytes(math.ceil(num_messages * (label_bits + check_bits) / 8))
    return body + struct.pack("<I", zlib.crc32(body))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """Run every command-line case in one memory-limited child -> {case: result}."""
    work = tmp_path_factory.mktemp("hostile")
    setting = CodingSetting(seed=0, num_candidates=16, rate_bits=1, num_decoders=65535, check_bits=0)
    valid = fingerprint(GaussianModel(0.005, 0.5), setting, get_source("gaussian").stream_context({}))
    other = bytes(range(16))
    files = {
        "k_n_valid.dsc": crafted(valid, 16, 1, 65535, 0, 30_000),  # 3.8 KB; a full decode
        "k_n_foreign.dsc": crafted(other, 16, 1, 65535, 0, 30_000),  # 3.8 KB, another fingerprint
        "large_n.dsc": crafted(other, 16, 1, 4, 0, 10**7),  # 1.25 MB claiming 10^7 messages
        "largest_n.dsc": crafted(other, 64, 5, 65535, 1, MAX_MESSAGES),  # 768 KB: the most messages allowed
    }
    for name, data in files.items():
        (work / name).write_bytes(data)
    with (work / "sparse.dsc").open("wb") as f:  # 4 GiB that would be read before any check
        f.write(b"DSC\x1a")
        f.truncate(2**32)
    cases = {
        "k_n_valid": ["decompress", "gaussian", f"{work}/k_n_valid.dsc", "--decoder", "65534"],
        "k_n_foreign": ["decompress", "gaussian", f"{work}/k_n_foreign.dsc", "--decoder", "7"],
        "large_n": ["decompress", "gaussian", f"{work}/large_n.dsc"],
        "largest_n": ["decompress", "gaussian", f"{work}/largest_n.dsc"],
        "sparse": ["decompress", "gaussian", f"{work}/sparse.dsc"],
        "compress_many_decoders": ["compress", "gaussian", f"{work}/many.dsc", "--count", "20000",
                                   "--num-decoders", "65535"],
        "compress_too_many_decoders": ["compress", "gaussian", f"{work}/k.dsc", "--num-decoders", "65536"],
        "compress_too_many_messages": ["compress", "gaussian", f"{work}/n.dsc", "--count", str(MAX_MESSAGES + 1)],
    }
    env = {**os.environ, "MALLOC_ARENA_MAX": "2"}
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(cases), str(work), str(HEADROOM_MB)],
                          capture_output=True, text=True, timeout=300, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULTS ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    return {"work": work, **json.loads(lines[-1][len("RESULTS "):])}


def _refused(result: dict, says: str) -> None:
    """Exit 2 with one ``error:`` line that contains ``says``, no traceback, bounded memory."""
    err = result["err"]
    assert result["code"] == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert says in err, err
    assert result["peak_mb"] is None or result["peak_mb"] < PEAK_MB, result["peak_mb"]


def test_a_crafted_stream_for_k_65535_and_30000_messages_decodes_in_bounded_memory(hostile):
    """15.7 GB of side information for all K decoders before: now decoder 65534's only."""
    result = hostile["k_n_valid"]
    assert result["code"] == 0, result["err"]
    summary = json.loads(result["out"])
    assert summary["messages"] == 30_000 and summary["decoder"] == 65534 and 0 <= summary["accepted"] <= 1
    assert result["peak_mb"] is None or result["peak_mb"] < PEAK_MB, result["peak_mb"]


def test_crafted_streams_are_refused_before_anything_is_built(hostile):
    _refused(hostile["k_n_foreign"], "other source options or by another model")
    _refused(hostile["large_n"], f"at most {MAX_MESSAGES} messages")
    _refused(hostile["largest_n"], "other source options or by another model")
    _refused(hostile["sparse"], f"is {2**32} bytes; a dsc stream is at most {MAX_STREAM_BYTES}")


def test_compress_builds_no_side_information_and_checks_sizes_first(hostile):
    result = hostile["compress_many_decoders"]  # 10.5 GB of unused side information before
    assert result["code"] == 0, result["err"]
    assert json.loads(result["out"])["messages"] == 20_000
    assert (hostile["work"] / "many.dsc").stat().st_size == 54 + 20_000 * 2 // 8
    assert result["peak_mb"] is None or result["peak_mb"] < PEAK_MB, result["peak_mb"]
    _refused(hostile["compress_too_many_decoders"], f"[1, {MAX_DECODERS}]")
    _refused(hostile["compress_too_many_messages"], f"--count must be in [1, {MAX_MESSAGES}]")
    assert not (hostile["work"] / "k.dsc").exists() and not (hostile["work"] / "n.dsc").exists()


def test_one_limit_on_k_for_the_coder_and_the_format():
    assert MAX_DECODERS == MAX_ROWS == 2**16 - 1
    with pytest.raises(dsc.InvalidArgumentError, match=r"\[1, 65535\]"):
        ImportanceCoder(seed=0, prior=GaussianPrior(), num_candidates=8, num_labels=2, num_decoders=2**16)
    with pytest.raises(dsc.InvalidArgumentError, match=r"\[1, 65535\]"):
        CodingSetting(num_decoders=2**16)
    CodingSetting(num_decoders=2**16 - 1, num_candidates=8)  # the largest K is accepted by both


def test_coding_in_chunks_changes_no_byte_and_no_output(monkeypatch):
    gaussian = get_source("gaussian")
    got = gaussian.coding_inputs({}, torch.arange(100, 150), 3)
    setting = CodingSetting(seed=2, num_candidates=256, rate_bits=3, num_decoders=3, check_bits=2)
    whole = compress(got.model, got.sources, setting, first_message=100)
    outputs = decompress(whole, got.model, got.side_information[:, 2], decoder=2)
    monkeypatch.setattr(dsc.codec, "MESSAGE_CHUNK", 7)
    seen = []

    def sources(ids):  # rows from a function of message ids, 7 at a time
        seen.append(ids.tolist())
        return gaussian.coding_inputs({}, ids, decoders=[]).sources

    assert compress(got.model, sources, setting, first_message=100, count=50) == whole
    assert seen[0] == list(range(100, 107)) and len(seen) == math.ceil(50 / 7)
    chunked = decompress(whole, got.model, lambda ids: gaussian.coding_inputs({}, ids, decoders=[2])
                         .side_information[:, 0], decoder=2)
    assert torch.equal(chunked.reconstruction, outputs.reconstruction)
    assert torch.equal(chunked.accepted, outputs.accepted) and torch.equal(chunked.index, outputs.index)
    with pytest.raises(dsc.InvalidArgumentError, match="several streams"):
        compress(got.model, sources, setting, count=MAX_MESSAGES + 1)
    with pytest.raises(dsc.ShapeMismatchError, match=r"for 7 messages must be a tensor \[7, \.\.\.\]"):
        decompress(whole, got.model, lambda ids: torch.zeros(3), decoder=0)


def test_side_information_of_one_decoder_is_its_column_of_all():
    """Asking for decoder k alone gives exactly column k of all K (and K' = 0 the same sources)."""
    gaussian = get_source("gaussian")
    messages = torch.arange(20)
    every = gaussian.coding_inputs({"data_seed": 3}, messages, 6)
    for k in (0, 4, 5):
        alone = gaussian.coding_inputs({"data_seed": 3}, messages, decoders=[k])
        assert torch.equal(alone.side_information[:, 0], every.side_information[:, k])
    none = gaussian.coding_inputs({"data_seed": 3}, messages, decoders=[])
    assert none.side_information.shape == (20, 0) and torch.equal(none.sources, every.sources)
    with pytest.raises(dsc.InvalidArgumentError, match="either num_decoders"):
        gaussian.coding_inputs({}, messages, 2, decoders=[1])
    halves = ImageHalves(torch.rand(12, 28, 28), 5, SideInfo("crop", 7), seed=4)
    _, crops = halves.batch(torch.arange(12))
    _, crop_3 = halves.batch(torch.arange(12), torch.tensor([3]))
    assert torch.equal(crop_3[:, 0], crops[:, 3])


def test_an_mnist_evaluation_bounds_k_before_computing_anything(monkeypatch):
    """K = 65536 asked an MNIST evaluation for 8 GB of crops: K and digits x K are bounded first."""
    from dsc.eval import image_point as image_eval
    from dsc.models.image_codec import ImageCodecNetworks

    with pytest.raises(dsc.ConfigError, match=f"at most K = {image_eval.MAX_DECODERS} decoders"):
        image_eval.ImageRateDistortion("never-read.ckpt", num_decoders=65536)
    nets = ImageCodecNetworks(latent_dim=2, side_shape=(1, 7, 7), features=16, channels=8, hidden=32,
                              estimator_hidden=24)
    images = torch.rand(40, 28, 28)
    per_crop = 4 * (7 * 7 + 24 + 16)  # float32 crop, its estimator bias and its projected features
    monkeypatch.setattr(image_eval, "MAX_SPLIT_FEATURE_BYTES", 40 * 30 * per_crop)
    with pytest.raises(dsc.ConfigError, match="use num_decoders <= 30 for this many images"):
        image_eval.SplitFeatures.compute(nets, ImageHalves(images, 31, SideInfo("crop", 7), seed=0), CPU)
    fits = image_eval.SplitFeatures.compute(nets, ImageHalves(images, 30, SideInfo("crop", 7), seed=0), CPU)
    assert fits.features.shape == (40, 30, 16) and fits.crop_bias.shape == (40, 30, 24)
    monkeypatch.setattr(image_eval, "CROPS_PER_BATCH", 60)  # two digits per batch: the same features
    again = image_eval.SplitFeatures.compute(nets, ImageHalves(images, 30, SideInfo("crop", 7), seed=0), CPU)
    assert torch.allclose(again.features, fits.features, atol=1e-6)
    assert torch.equal(again.side_info, fits.side_info)
