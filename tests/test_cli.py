"""python -m dsc compress | decompress | inspect, end to end: round trips, refusals, file safety, fingerprints."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import re

import pytest
import torch

import dsc
from dsc.bitstream import read_header
from dsc.cli import main, parser, run_decompress
from dsc.codec import CodingSetting, compress
from dsc.helptext import plain
from dsc.registry import get_source


def run(capsys, *argv) -> tuple[int, dict | str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, json.loads(out) if code == 0 else err


def test_compress_inspect_decompress_round_trip(tmp_path, capsys):
    stream, decoded = tmp_path / "msgs.dsc", tmp_path / "decoded.pt"
    code, wrote = run(capsys, "compress", "gaussian", stream, "--count", 300, "--num-candidates", 512,
                      "--rate-bits", 3, "--check-bits", 8, "--first", 1000)
    assert code == 0 and wrote["bytes"] == stream.stat().st_size == 54 + 300 * 11 // 8 + 1
    code, header = run(capsys, "inspect", stream)
    assert code == 0 and header["num_messages"] == 300 and header["first_message"] == 1000
    assert header["rate_bits_per_message"] == 11 and header["num_candidates"] == 512
    code, summary = run(capsys, "decompress", "gaussian", stream, "--decoder", 3, "--out", decoded)
    assert code == 0 and summary["messages"] == 300
    saved = torch.load(decoded, weights_only=True)
    assert saved["reconstruction"].shape == (300,) and saved["accepted"].float().mean() == summary["accepted"]
    # accepted picks (the decoder recovered the encoder's candidate, up to 2^-8 false accepts)
    # are far better than the side-information-only fallback, whose MSE is var(A | T) = 1/3
    assert summary["mse_accepted"] < 0.1 and summary["mse"] < 1 / 3


def test_bad_input_exits_with_a_message_and_writes_nothing(tmp_path, capsys):
    garbage = tmp_path / "garbage.dsc"
    garbage.write_bytes(b"not a stream at all")
    code, err = run(capsys, "inspect", garbage)
    assert code == 2 and "not a dsc bitstream" in err
    stream = tmp_path / "msgs.dsc"
    assert run(capsys, "compress", "gaussian", stream, "--count", 10)[0] == 0
    code, err = run(capsys, "decompress", "gaussian", stream, "--decoder", 9)
    assert code == 2 and "--decoder must be in [0, 4)" in err
    code, err = run(capsys, "decompress", "gaussian", stream, "--s2", 0.01)
    assert code == 2 and "written with s2 = 0.005" in err and "(--s2 0.005)" in err
    code, err = run(capsys, "decompress", "gaussian", stream, "--s2", 0.01, "--data-seed", 4)
    assert code == 2 and "other source options or by another model" in err
    code, err = run(capsys, "compress", "mnist", tmp_path / "m.dsc", "--count", 5)
    assert code == 2 and "--ckpt" in err and not (tmp_path / "m.dsc").exists()
    code, err = run(capsys, "compress", "gaussian", tmp_path / "r.dsc", "--rate-bits", 0)
    assert code == 2 and "rate_bits" in err and not (tmp_path / "r.dsc").exists()


def test_outputs_never_replace_the_input_and_existing_files_need_force(tmp_path, capsys):
    stream = tmp_path / "msgs.dsc"
    assert run(capsys, "compress", "gaussian", stream, "--count", 20)[0] == 0
    original = stream.read_bytes()
    same = [stream, tmp_path / "sub" / ".." / "msgs.dsc", tmp_path / "link.dsc"]
    (tmp_path / "sub").mkdir()
    os.link(stream, tmp_path / "link.dsc")  # another name of the same file
    for out in same:
        for force in ((), ("--force",)):
            code, err = run(capsys, "decompress", "gaussian", stream, "--out", out, *force)
            assert code == 2 and "is the input stream" in err, (out, force)
            assert stream.read_bytes() == original
    # compress onto an existing file: refused without --force, the file untouched
    code, err = run(capsys, "compress", "gaussian", stream, "--count", 30, "--seed", 3)
    assert code == 2 and "exists; pass --force" in err and stream.read_bytes() == original
    code, wrote = run(capsys, "compress", "gaussian", stream, "--count", 30, "--seed", 3, "--force")
    assert code == 0 and wrote["messages"] == 30 and stream.read_bytes() != original
    # an existing --out likewise
    decoded = tmp_path / "decoded.pt"
    decoded.write_bytes(b"keep me")
    code, err = run(capsys, "decompress", "gaussian", stream, "--out", decoded)
    assert code == 2 and "exists; pass --force" in err and decoded.read_bytes() == b"keep me"
    assert run(capsys, "decompress", "gaussian", stream, "--out", decoded, "--force")[0] == 0
    assert torch.load(decoded, weights_only=True)["reconstruction"].shape == (30,)


def _help(capsys, verb: str) -> str:
    with pytest.raises(SystemExit):
        main([verb, "--help"])
    return capsys.readouterr().out


def test_help_says_outputs_are_atomic_and_need_force(capsys):
    for verb in ("compress", "decompress"):
        text = " ".join(_help(capsys, verb).split())
        assert "--force" in text and "written atomically" in text


MARKUP = re.compile(r"``|:(mod|class|func|meth|data|attr):`")  # reST a terminal would show raw


def test_help_shows_every_default_and_no_markup(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    root = capsys.readouterr().out
    assert root.startswith("usage: dsc") and "dsc compress gaussian msgs.dsc" in root  # the examples
    texts = {verb: _help(capsys, verb) for verb in ("compress", "decompress", "inspect")}
    for text in (root, *texts.values()):
        assert not MARKUP.search(text) and "(default: None)" not in text
    compress, decompress = (" ".join(texts[verb].split()) for verb in ("compress", "decompress"))
    usual_n = ", ".join(f"{name} {get_source(name).num_candidates}" for name in ("gaussian", "image_folder", "mnist"))
    for expected in ("sources to encode by message id (default: 1000;", "shared-randomness seed (default: 0)",
                     f"N, the shared candidates (default: the source's usual N: {usual_n})",
                     "log2(L_max) (default: 2)", "K, the decoders (default: 4)",
                     "c check bits per message (default: 0)", "test-channel variance (default: 0.005)",
                     "side-information noise variance (default: 0.5)", "digits of this split (default: test)"):
        assert expected in compress, expected
    assert "which decoder (0 .. K-1) decodes (default: 0)" in decompress


@pytest.mark.parametrize("module", ["dsc.report.sweep", "tools.docs_tables", "studies.mnist_paper.convergence",
                                    "dsc.eval.cross_device", "studies.mnist_beta_scan.report",
                                    "dsc.speculative.study"])
def test_the_tools_help_has_no_markup_and_a_whole_description(module, capsys):
    tool = importlib.import_module(module)
    with pytest.raises(SystemExit):
        tool.main(["--help"])
    text = capsys.readouterr().out
    assert not MARKUP.search(text)
    description = " ".join(text.split("\n\n")[1].split())  # the paragraph after the usage
    assert description.endswith((".", "?")) and description == plain(" ".join(tool.__doc__.split("\n\n")[0].split()))


def test_plain_text_of_rest_markup():
    assert plain("``x = 1`` via :func:`dsc.pipeline.code` or :class:`~dsc.codec.CodingSetting`") == \
        "x = 1 via dsc.pipeline.code or CodingSetting"


def expected_cli_fingerprint(setting: CodingSetting, options: dict) -> bytes:
    """The documented fingerprint of a command-line Gaussian stream, written out independently:
    BLAKE2b-128 of the sorted JSON of the model's identity, the setting and the context."""
    record = {"model": {"model": "gaussian", "test_channel_var": options["s2"], "noise_var": options["noise_var"]},
              "setting": {"seed": setting.seed, "num_candidates": setting.num_candidates,
                          "rate_bits": setting.rate_bits, "num_decoders": setting.num_decoders,
                          "check_bits": setting.check_bits, "scheme": "gls"},
              "context": {"source": "gaussian", "options": options}}
    return hashlib.blake2b(json.dumps(record, sort_keys=True).encode(), digest_size=16).digest()


def test_every_option_that_changes_decoding_enters_the_fingerprint(tmp_path, capsys):
    stream = tmp_path / "msgs.dsc"
    assert run(capsys, "compress", "gaussian", stream, "--count", 50, "--data-seed", 7, "--noise-var", 0.25,
               "--rate-bits", 3, "--num-decoders", 2)[0] == 0
    header = read_header(stream.read_bytes())
    usual_n = get_source("gaussian").num_candidates  # without --num-candidates: the source's usual N
    assert header.num_candidates == usual_n == 4096
    setting = CodingSetting(seed=0, num_candidates=usual_n, rate_bits=3, num_decoders=2, check_bits=0)
    assert header.fingerprint == expected_cli_fingerprint(setting, {"s2": 0.005, "noise_var": 0.25, "data_seed": 7})
    # the matching options decode; another data seed or noise is a FingerprintMismatchError
    assert run(capsys, "decompress", "gaussian", stream, "--data-seed", 7, "--noise-var", 0.25)[0] == 0
    for wrong in (("--noise-var", 0.25), ("--data-seed", 7), ("--data-seed", 8, "--noise-var", 0.25)):
        args = parser().parse_args(["decompress", "gaussian", str(stream), *map(str, wrong)])
        with pytest.raises(dsc.FingerprintMismatchError, match="other source options or by another model"):
            run_decompress(args)
        code, err = run(capsys, "decompress", "gaussian", stream, *wrong)
        assert code == 2 and err.startswith("error: ") and "data_seed" in err and "Traceback" not in err
    # where the encoder left an option at its default, the message names it
    default = tmp_path / "default.dsc"
    assert run(capsys, "compress", "gaussian", default, "--count", 50)[0] == 0
    for wrong, says in ((("--data-seed", 3), "written with data_seed = 0, this decoder was given data_seed = 3"),
                        (("--noise-var", 0.25), "written with noise_var = 0.5"),
                        (("--option", "s2=0.01"), "(--s2 0.005)")):
        code, err = run(capsys, "decompress", "gaussian", default, *wrong)
        assert code == 2 and says in err, (wrong, err)
    assert run(capsys, "decompress", "gaussian", default, "--option", "s2=0.005", "--option", "data_seed=0")[0] == 0
    # a stream of the Python API (no source options in its fingerprint) is told apart
    draw = get_source("gaussian").coding_inputs({}, torch.arange(10), 1)
    plain = tmp_path / "plain.dsc"
    plain.write_bytes(compress(draw.model, draw.sources, CodingSetting(num_decoders=1)))
    code, err = run(capsys, "decompress", "gaussian", plain)
    assert code == 2 and "without source options" in err


def test_a_split_mismatch_is_refused(tmp_path, capsys, tiny_codec):
    ckpt = tiny_codec()
    capsys.readouterr()  # the training run's own output
    stream = tmp_path / "digits.dsc"
    assert run(capsys, "compress", "mnist", stream, "--ckpt", ckpt, "--count", 6, "--num-candidates", 16)[0] == 0
    code, summary = run(capsys, "decompress", "mnist", stream, "--ckpt", ckpt, "--split", "test", "--decoder", 1)
    assert code == 0 and summary["messages"] == 6 and "test split" in summary["data"]
    args = parser().parse_args(["decompress", "mnist", str(stream), "--ckpt", str(ckpt), "--split", "val"])
    with pytest.raises(dsc.FingerprintMismatchError, match="written with split = 'test'.*given split = 'val'"):
        run_decompress(args)
    code, err = run(capsys, "decompress", "mnist", stream, "--ckpt", ckpt, "--split", "val")
    assert code == 2 and err.startswith("error: the stream was written with split = 'test'") and "(--split test)" in err


def test_a_stream_decodes_with_any_decoder_estimate(tmp_path, capsys):
    """The estimate is the decoder's own choice: one stream (K = 1, 2 bits, s2 = 0.1) decodes with
    pick, shrink and bayes, and the Bayes decoder's MSE is the lowest of the three (the pick's
    misses cost it about a third of the messages; 400 messages put the gap at many standard errors)."""
    stream = tmp_path / "msgs.dsc"
    common = ["--s2", 0.1, "--num-candidates", 1024]
    code, _ = run(capsys, "compress", "gaussian", stream, "--count", 400, "--rate-bits", 2, "--num-decoders", 1,
                  *common)
    assert code == 0
    mse = {}
    for estimate in ("pick", "shrink", "bayes"):
        code, summary = run(capsys, "decompress", "gaussian", stream, "--s2", 0.1, "--option", f"estimate={estimate}",
                            "--option", "calibration_trials=4000", "--option", "posterior_draws=64",
                            "--out", tmp_path / f"{estimate}.npy")
        assert code == 0, summary
        mse[estimate] = summary["mse"]
    assert mse["bayes"] < mse["shrink"] < mse["pick"], mse
    code, err = run(capsys, "decompress", "gaussian", stream, "--s2", 0.1, "--option", "estimate=mean",
                    "--out", tmp_path / "x.npy")
    assert code == 2 and "unknown estimate 'mean'" in err
