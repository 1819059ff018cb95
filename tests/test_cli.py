"""python -m dsc compress | decompress | inspect, end to end on the Gaussian source."""

from __future__ import annotations

import json

import torch

from dsc.cli import main


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
    assert code == 2 and "another model" in err
    code, err = run(capsys, "compress", "mnist", tmp_path / "m.dsc", "--count", 5)
    assert code == 2 and "--ckpt" in err and not (tmp_path / "m.dsc").exists()
    code, err = run(capsys, "compress", "gaussian", tmp_path / "r.dsc", "--rate-bits", 0)
    assert code == 2 and "rate_bits" in err and not (tmp_path / "r.dsc").exists()
