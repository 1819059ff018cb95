"""A committed Gaussian bitstream decodes to committed reconstructions.

``tests/data/golden_gaussian.dsc`` holds 12 messages of the quadratic-Gaussian model (seed 11,
N = 256, 3 label bits, 2 check bits, K = 3, messages 100..111); ``golden_gaussian.json`` holds
their sources, the decoders' side information and, per decoder, the pick, whether its check
passed and the reconstruction. The expected picks and reconstructions come from a reference
decoder written here in plain Python from the documented method (the stream layout of
``dsc.coding.streams``, the hash of ``tests/_reference_hash.py``, the closed-form weights and
the MMSE estimate E[A | W, T_k]), not from the library. A change to the generator, the stream
layout, the coder's arithmetic or the byte format makes the library decode old streams to
something else, and fails here.

Regenerate the data only for a deliberate format change: ``python tests/test_golden_decode.py``
(the stream from the library's encoder, the expectations from the reference below).
"""

from __future__ import annotations

import json
import math
import struct
import sys
from pathlib import Path

import torch

DATA = Path(__file__).resolve().parent / "data"
STREAM, EXPECTED = DATA / "golden_gaussian.dsc", DATA / "golden_gaussian.json"
S2, NOISE_VAR = 0.005, 0.5
SEED, N, LABEL_BITS, CHECK_BITS, K, FIRST, COUNT = 11, 256, 3, 2, 3, 100, 12
HEADER_BYTES = 50  # the version-1 header (docs/bitstreams.md)


def _reference():
    if __package__ in (None, ""):
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests import _reference_hash

    return _reference_hash


# ----------------------------------------------------------------------------- the reference


def log_normal(x: float, mean: float, var: float) -> float:
    return -0.5 * (x - mean) ** 2 / var - 0.5 * math.log(2 * math.pi * var)


def shared_values(message: int) -> list[dict]:
    """Per candidate j (in arrival order): the candidate U_j, its label, log M_(j), the row r_j
    attaining M_(j) and log E_j^(k) for every row k (E = M on row r_j, M + D_j^(k) elsewhere)."""
    ref = _reference()
    prior_std = math.sqrt(1 + S2)
    fixed, out = 0, []
    for j in range(N):
        fixed += ref.arrival_increment(SEED, message, j, N, K)
        m = fixed * 2.0**-52
        row = ref.integers(SEED, ref.stream(ref.WINNING_ROW, message), j, K)
        log_e = [math.log(m) if k == row else
                 math.log(m + ref.exponential(ref.uniform64(SEED, ref.stream(ref.EXPONENTIAL, message, k), j)))
                 for k in range(K)]
        u = prior_std * ref.normal(ref.uniform32(SEED, ref.stream(ref.CANDIDATE, message), j))
        out.append({"u": u, "label": ref.integers(SEED, ref.stream(ref.LABEL, message), j, 2**LABEL_BITS),
                    "log_m": math.log(m), "log_e": log_e})
    return out


def check_value(message: int, index: int) -> int:
    ref = _reference()
    return ref.word(SEED, ref.stream(ref.CHECK, message), index) & ((1 << CHECK_BITS) - 1)


def reference_encode(message: int, a: float) -> tuple[int, int, int]:
    """GLS encoder: Y = argmin_j log M_(j) - log w_j, w = N(u; a, s2) / N(u; 0, 1 + s2) ->
    (Y, label, check value)."""
    values = shared_values(message)
    scores = [v["log_m"] - (log_normal(v["u"], a, S2) - log_normal(v["u"], 0.0, 1 + S2)) for v in values]
    y = min(range(N), key=lambda j: (scores[j], j))
    return y, values[y]["label"], check_value(message, y)


def reference_decode(message: int, label: int, check: int, t: float, k: int) -> tuple[int, bool, float]:
    """Decoder k: X = argmin over the bin {j: l_j = label} of log E_j^(k) - log v_j, v = N(u; t/1.5,
    1/3 + s2) / N(u; 0, 1 + s2) -> (X, accepted, reconstruction: E[A | U_X, t] when the check
    passes, E[A | t] = t / 1.5 otherwise)."""
    values = shared_values(message)
    mean, var = t / (1 + NOISE_VAR), NOISE_VAR / (1 + NOISE_VAR) + S2
    scores = {j: v["log_e"][k] - (log_normal(v["u"], mean, var) - log_normal(v["u"], 0.0, 1 + S2))
              for j, v in enumerate(values) if v["label"] == label}
    if not scores:
        return -1, False, t / (1 + NOISE_VAR)
    x = min(scores, key=lambda j: (scores[j], j))
    if check_value(message, x) != check:
        return x, False, t / (1 + NOISE_VAR)
    w = values[x]["u"]
    return x, True, (w / S2 + t / NOISE_VAR) / (1 + 1 / S2 + 1 / NOISE_VAR)


def payload_fields(data: bytes) -> list[tuple[int, int]]:
    """(label, check) per message from the stream's payload: MSB-first fields of label_bits +
    check_bits bits after the header, a CRC-32 at the end."""
    bits = LABEL_BITS + CHECK_BITS
    payload = int.from_bytes(data[HEADER_BYTES:-4], "big")
    total = 8 * (len(data) - HEADER_BYTES - 4)
    fields = [(payload >> (total - bits * (i + 1))) & ((1 << bits) - 1) for i in range(COUNT)]
    return [(f >> CHECK_BITS, f & ((1 << CHECK_BITS) - 1)) for f in fields]


# ----------------------------------------------------------------------------- the tests


def _setting():
    from dsc.codec import CodingSetting, GaussianModel

    setting = CodingSetting(seed=SEED, num_candidates=N, rate_bits=LABEL_BITS, num_decoders=K, check_bits=CHECK_BITS)
    return GaussianModel(test_channel_var=S2, noise_var=NOISE_VAR), setting


def test_the_committed_stream_decodes_to_the_committed_reconstructions():
    from dsc.codec import decompress

    model, setting = _setting()
    expected = json.loads(EXPECTED.read_text())
    side = torch.tensor(expected["side_information"], dtype=torch.float64)  # [n, K]
    for k in range(K):
        out = decompress(STREAM.read_bytes(), model, side[:, k], setting, decoder=k)
        assert out.index.tolist() == expected["index"][k]
        assert out.accepted.tolist() == expected["accepted"][k]
        got = torch.tensor(expected["reconstruction"][k], dtype=torch.float64)
        # the candidates are float32 (inverse normal CDF of a float32 uniform): 1e-6 absolute
        assert torch.allclose(out.reconstruction, got, rtol=0, atol=1e-6), k


def test_the_committed_stream_is_what_the_encoder_writes_and_the_reference_encoder_picks():
    from dsc.codec import compress

    model, setting = _setting()
    expected = json.loads(EXPECTED.read_text())
    data = STREAM.read_bytes()
    sources = torch.tensor(expected["sources"], dtype=torch.float64)
    assert compress(model, sources, setting, first_message=FIRST) == data
    assert struct.unpack("<Q", data[22:30])[0] == SEED and struct.unpack("<I", data[30:34])[0] == N
    fields = payload_fields(data)
    for i, a in enumerate(expected["sources"]):
        _, label, check = reference_encode(FIRST + i, a)
        assert fields[i] == (label, check), i


def test_the_committed_reconstructions_are_the_reference_decoders():
    expected = json.loads(EXPECTED.read_text())
    fields = payload_fields(STREAM.read_bytes())
    for k in range(K):
        for i, (label, check) in enumerate(fields):
            t = expected["side_information"][i][k]
            x, accepted, reconstruction = reference_decode(FIRST + i, label, check, t, k)
            assert (x, accepted) == (expected["index"][k][i], expected["accepted"][k][i]), (k, i)
            assert reconstruction == expected["reconstruction"][k][i], (k, i)
    # the data exercise both outcomes: picks that pass the check and picks that fall back
    flags = sum(expected["accepted"], [])
    assert any(flags) and not all(flags)


def write() -> None:
    """Regenerate the committed stream (library encoder) and its expectations (reference decoder)."""
    from dsc.codec import compress
    from dsc.coding import CounterRandomness
    from dsc.sources.gaussian import GaussianSource

    model, setting = _setting()
    draw = GaussianSource(NOISE_VAR).sample(CounterRandomness(3), torch.arange(FIRST, FIRST + COUNT), K)
    data = compress(model, draw.source, setting, first_message=FIRST)
    fields = payload_fields(data)
    sources, side = draw.source.tolist(), draw.side_info.tolist()
    decoded = [[reference_decode(FIRST + i, label, check, side[i][k], k) for i, (label, check) in enumerate(fields)]
               for k in range(K)]
    DATA.mkdir(exist_ok=True)
    STREAM.write_bytes(data)
    EXPECTED.write_text(json.dumps({
        "setting": {"seed": SEED, "num_candidates": N, "label_bits": LABEL_BITS, "check_bits": CHECK_BITS,
                    "num_decoders": K, "first_message": FIRST, "test_channel_var": S2, "noise_var": NOISE_VAR},
        "sources": sources, "side_information": side,
        "index": [[d[0] for d in row] for row in decoded],
        "accepted": [[d[1] for d in row] for row in decoded],
        "reconstruction": [[d[2] for d in row] for row in decoded],
    }, indent=1) + "\n")


if __name__ == "__main__":
    write()
