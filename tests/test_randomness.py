"""Counter-based shared randomness (:mod:`dsc.coding.randomness`) and the stream layout
(:mod:`dsc.coding.streams`).

Sections: determinism; random access (ranges, chunks, large counters, shapes, broadcast
streams); independence of streams; statistical quality; range and format of every value type;
argument checks; CPU/CUDA bit-identity; the int/tensor equivalence of the key derivation.

Statistical checks use fixed seeds (so they are deterministic) and tolerances derived from the
sample size: Pearson correlations within 5/sqrt(n), proportions within 4.5 standard errors,
and p-values (Kolmogorov-Smirnov, chi-square, from scipy as the independent reference) above
``P_MIN``. The default selection uses 10**6 values per sample; ``-m slow`` repeats the main
checks at 10**7.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch
from scipy import special, stats

import dsc
from dsc.coding.randomness import (
    CounterRandomness,
    _stream_keys,
    exponential,
    integers,
    mix32,
    normal,
    random_words,
    uniform,
)
from dsc.coding.streams import MAX_MESSAGE, MAX_ROW, Purpose, stream_id
from tests._stats import binomial_margin

SEED = 20240611
N = 10**6  # default sample size
N_SLOW = 10**7  # sample size of the slow checks
N_FORMAT = 2**18  # sample size of the exact format checks
P_MIN = 1e-4  # smallest acceptable p-value of a goodness-of-fit test
CORR_Z = 5.0  # correlations must lie within CORR_Z / sqrt(n)

EXP = Purpose.EXPONENTIAL
STREAM = stream_id(EXP, 3, 1)  # a typical stream id used where the stream does not matter


# --------------------------------------------------------------------------------------------
# helpers


def _all_kinds(seed, stream, index):
    """Every value type the generator produces, keyed by a readable name."""
    return {
        "words0": random_words(seed, stream, index, 0),
        "words1": random_words(seed, stream, index, 1),
        "words7": random_words(seed, stream, index, 7),
        "uniform32": uniform(seed, stream, index, torch.float32),
        "uniform64": uniform(seed, stream, index, torch.float64),
        "exponential32": exponential(seed, stream, index, torch.float32),
        "exponential64": exponential(seed, stream, index, torch.float64),
        "normal32": normal(seed, stream, index, torch.float32),
        "normal64": normal(seed, stream, index, torch.float64),
        "integers10": integers(seed, stream, index, 10),
        "integers64": integers(seed, stream, index, 64),
    }


def _uniforms(seed: int, stream: int, n: int, start: int = 0, dtype=torch.float32) -> np.ndarray:
    """Cached numpy copy of uniforms at counters [start, start + n) (read-only)."""
    return _cached_uniforms(seed, stream, n, start, dtype)


@functools.lru_cache(maxsize=32)
def _cached_uniforms(seed, stream, n, start, dtype) -> np.ndarray:
    u = uniform(seed, stream, torch.arange(start, start + n), dtype).numpy()
    u.setflags(write=False)
    return u


@functools.lru_cache(maxsize=12)
def _sample(kind: str, n: int, seed: int = SEED, stream: int = STREAM, start: int = 0):
    """Cached sample of one distribution as float64 numpy, with the scipy name of its law."""
    index = torch.arange(start, start + n)
    dtype = torch.float64 if kind.endswith("64") else torch.float32
    if kind.startswith("uniform"):
        return uniform(seed, stream, index, dtype).double().numpy(), "uniform"
    if kind.startswith("exponential"):
        return exponential(seed, stream, index, dtype).double().numpy(), "expon"
    if kind.startswith("normal"):
        return normal(seed, stream, index, dtype).double().numpy(), "norm"
    raise AssertionError(kind)


def _bit_frequencies(values: torch.Tensor, bits: int) -> np.ndarray:
    """Frequency with which each of the low ``bits`` bits of non-negative int64 values is set."""
    raw = values.numpy().astype("<u8").view(np.uint8).reshape(-1, 8)
    return np.unpackbits(raw, axis=1, bitorder="little")[:, :bits].mean(axis=0)


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.corrcoef(x, y)[0, 1])


def _assert_uncorrelated(x: np.ndarray, y: np.ndarray, what: str) -> None:
    r, bound = _pearson(x, y), CORR_Z / math.sqrt(len(x))
    assert abs(r) < bound, f"{what}: Pearson correlation {r:.2e} exceeds {bound:.2e}"


def _assert_pairs_uniform(x: np.ndarray, y: np.ndarray, bins: int, what: str) -> None:
    """Chi-square test that (x, y), with x, y in (0, 1), fall uniformly in a bins x bins grid."""
    cells = np.floor(x * bins).astype(np.int64) * bins + np.floor(y * bins).astype(np.int64)
    counts = np.bincount(cells, minlength=bins * bins)
    assert counts.size == bins * bins
    pvalue = stats.chisquare(counts).pvalue
    assert pvalue > P_MIN, f"{what}: chi-square p-value {pvalue:.2e} on {bins}x{bins} cells"


def _assert_labels_uniform(labels: np.ndarray, high: int, what: str) -> None:
    counts = np.bincount(labels, minlength=high)
    assert counts.size == high, f"{what}: a label >= {high}"
    pvalue = stats.chisquare(counts).pvalue
    assert pvalue > P_MIN, f"{what}: chi-square p-value {pvalue:.2e} over {high} labels"


# --------------------------------------------------------------------------------------------
# 1. determinism


def test_same_arguments_give_identical_values():
    """Every value type is a pure function of (seed, stream, index): repeated calls, the
    function and the CounterRandomness method, and two equal sources agree bit for bit."""
    index = torch.arange(5000) * 37 + 11
    first, second = _all_kinds(SEED, STREAM, index), _all_kinds(SEED, STREAM, index.clone())
    rng_a, rng_b = CounterRandomness(SEED), CounterRandomness(SEED)
    methods = {
        "words0": rng_a.words(STREAM, index),
        "words1": rng_b.words(STREAM, index, 1),
        "uniform32": rng_a.uniform(STREAM, index),
        "uniform64": rng_b.uniform(STREAM, index, torch.float64),
        "exponential32": rng_a.exponential(STREAM, index),
        "exponential64": rng_b.exponential(STREAM, index, torch.float64),
        "normal32": rng_a.normal(STREAM, index),
        "normal64": rng_b.normal(STREAM, index, torch.float64),
        "integers10": rng_a.integers(STREAM, index, 10),
    }
    for name, value in first.items():
        assert torch.equal(value, second[name]), name
    for name, value in methods.items():
        assert value.dtype == first[name].dtype, name
        assert torch.equal(value, first[name]), name


@pytest.mark.parametrize(
    "seed_a, seed_b",
    [(0, 1), (SEED, SEED + 1), (5, 5 + 2**32), (2**32 - 1, 2**32), (0, 2**63 - 1)],
    ids=["0-1", "adjacent", "high-half-only", "carry-into-high-half", "0-max"],
)
def test_different_seeds_give_different_values(seed_a, seed_b):
    """Seeds that differ anywhere, including only in their high 32 bits, give different
    values; coincidences are as rare as chance allows (about n / 2**32 words, n / 2**23
    float32 uniforms, n / high integers)."""
    n = 10_000
    index = torch.arange(n)
    a, b = _all_kinds(seed_a, STREAM, index), _all_kinds(seed_b, STREAM, index)
    for name in a:
        same = int((a[name] == b[name]).sum())
        if name.startswith("integers"):
            high = int(name.removeprefix("integers"))
            assert same / n < 1 / high + binomial_margin(1 / high, n), name
        else:
            assert same <= 1, f"{name}: {same} of {n} values coincide"


def test_different_words_of_a_counter_differ():
    """The ``word`` argument selects distinct words of the same counter."""
    index = torch.arange(10_000)
    words = [random_words(SEED, STREAM, index, w) for w in range(4)]
    for i in range(4):
        for j in range(i):
            assert int((words[i] == words[j]).sum()) <= 1, (i, j)


# --------------------------------------------------------------------------------------------
# 2. random access


@pytest.mark.parametrize(
    "a, b, prefix",
    [(0, 1, 10), (0, 1000, 1000), (17, 18, 100), (123, 4567, 5000), (999, 1000, 1000)],
)
def test_range_equals_slice_of_prefix(a, b, prefix):
    """Counters [a, b) give the same values as positions a..b-1 of a generation over
    [0, prefix), for every value type: no value depends on what else is generated."""
    whole = _all_kinds(SEED, STREAM, torch.arange(prefix))
    part = _all_kinds(SEED, STREAM, torch.arange(a, b))
    for name in whole:
        assert torch.equal(part[name], whole[name][a:b]), name


def test_chunks_in_any_order_equal_one_generation():
    """Generating in chunks of random sizes, in shuffled order, and concatenating equals one
    generation of the whole range."""
    n = 20_000
    gen = np.random.default_rng(1)
    cuts = np.sort(gen.choice(np.arange(1, n), size=40, replace=False))
    bounds = list(zip([0, *cuts], [*cuts, n]))
    order = gen.permutation(len(bounds))
    whole = _all_kinds(SEED, STREAM, torch.arange(n))
    pieces = {int(k): _all_kinds(SEED, STREAM, torch.arange(*bounds[k])) for k in order}
    for name, value in whole.items():
        joined = torch.cat([pieces[k][name] for k in range(len(bounds))])
        assert torch.equal(joined, value), name


@pytest.mark.parametrize("base", [2**32, 2**40, 2**62, 2**63 - 10_000])
def test_large_counters(base):
    """Counters >= 2**32 are valid: they are in range, random access still holds there, and
    they do not repeat the values of the low counters (the high counter bits are used)."""
    k = torch.arange(10_000)
    high = _all_kinds(SEED, STREAM, base + k)
    low = _all_kinds(SEED, STREAM, k)
    for name in ("words0", "words1", "uniform32", "uniform64"):
        assert int((high[name] == low[name]).sum()) <= 1, name
    words = high["words0"]
    assert words.dtype == torch.int64 and 0 <= int(words.min()) and int(words.max()) < 2**32
    u = high["uniform64"]
    assert 0 < float(u.min()) and float(u.max()) < 1
    # random access at large counters: a sub-range equals the slice
    sub = _all_kinds(SEED, STREAM, base + k[1234:5678])
    for name, value in sub.items():
        assert torch.equal(value, high[name][1234:5678]), name


def test_counters_straddling_2_32():
    """A range across 2**32 equals the concatenation of the ranges on either side, and the
    values just above 2**32 differ from those just above 0."""
    n = 5000
    across = random_words(SEED, STREAM, torch.arange(2**32 - n, 2**32 + n))
    below = random_words(SEED, STREAM, torch.arange(2**32 - n, 2**32))
    above = random_words(SEED, STREAM, torch.arange(2**32, 2**32 + n))
    assert torch.equal(across, torch.cat([below, above]))
    assert int((above == random_words(SEED, STREAM, torch.arange(n))).sum()) <= 1


@pytest.mark.parametrize("shape", [(), (1,), (0,), (7, 13), (3, 4, 5), (2, 1, 3, 1)])
def test_index_of_any_shape(shape):
    """An index tensor of any shape (scalar, empty, 2-D, ...) gives a result of that shape,
    equal elementwise to the values of a flat index."""
    numel = math.prod(shape)
    flat = torch.from_numpy(np.random.default_rng(2).integers(0, 2**45, size=numel))
    shaped = flat.reshape(shape)
    ref = _all_kinds(SEED, STREAM, flat)
    got = _all_kinds(SEED, STREAM, shaped)
    for name in ref:
        assert got[name].shape == torch.Size(shape), name
        assert torch.equal(got[name].reshape(-1), ref[name]), name


def test_int32_index_equals_int64_index():
    """int32 counters give the same values as the same int64 counters."""
    index = torch.arange(0, 2**31 - 1, 65_537)
    a = _all_kinds(SEED, STREAM, index)
    b = _all_kinds(SEED, STREAM, index.to(torch.int32))
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_broadcast_stream_tensor_equals_scalar_streams():
    """A stream tensor broadcasts against the index; every slice equals the call with that
    stream as a Python int (also for stream ids >= 2**32 and an int32 stream tensor)."""
    messages = torch.tensor([0, 1, 4095, 4096, 12345, MAX_MESSAGE])
    rows = torch.tensor([0, 1, MAX_ROW])
    streams = stream_id(EXP, messages[:, None, None], rows[None, :, None])  # [6, 3, 1]
    index = torch.arange(2**40, 2**40 + 2000)[None, None, :].expand(1, 3, -1)  # [1, 3, n]
    got = _all_kinds(SEED, streams, index)
    for name, value in got.items():
        assert value.shape == (6, 3, 2000), name
    for i, m in enumerate(messages.tolist()):
        for j, r in enumerate(rows.tolist()):
            sid = stream_id(EXP, m, r)
            assert isinstance(sid, int) and sid == int(streams[i, j, 0])
            ref = _all_kinds(SEED, sid, index[0, j])
            for name, value in ref.items():
                assert torch.equal(got[name][i, j], value), (name, m, r)
    # an elementwise stream tensor (same shape as the index), and int32 stream tensors
    small = torch.tensor([[1, 2, 3], [2**31 - 1, 17, 5]])
    idx = torch.tensor([[5, 6, 7], [8, 9, 10]])
    words = random_words(SEED, small, idx)
    assert torch.equal(words, random_words(SEED, small.to(torch.int32), idx))
    for (i, j), s in np.ndenumerate(small.numpy()):
        assert int(words[i, j]) == int(random_words(SEED, int(s), idx[i, j]))


def test_stream_id_tensor_matches_int_layout():
    """stream_id packs (message, row, purpose) identically for ints and int64 tensors, with
    the documented layout message * 2**20 + row * 2**4 + purpose, and distinct triples give
    distinct ids."""
    messages, rows = (0, 1, 2**12, MAX_MESSAGE), (0, 1, MAX_ROW)
    cases = [(p, m, r) for p in Purpose for m in messages for r in rows]
    ids = set()
    for p, m, r in cases:
        sid = stream_id(p, m, r)
        assert sid == m * 2**20 + r * 2**4 + int(p)
        assert 0 <= sid < 2**63
        assert int(stream_id(p, torch.tensor(m), torch.tensor(r))) == sid
        assert int(stream_id(p, torch.tensor([m]), r)[0]) == sid
        ids.add(sid)
    assert len(ids) == len(cases)


# --------------------------------------------------------------------------------------------
# 3. independence of streams

STREAM_PAIRS = {
    "candidate-vs-label": (stream_id(Purpose.CANDIDATE, 0), stream_id(Purpose.LABEL, 0)),
    "label-vs-exponential": (stream_id(Purpose.LABEL, 3), stream_id(EXP, 3)),
    "exponential-vs-source": (stream_id(EXP, 3), stream_id(Purpose.SOURCE, 3)),
    "message-0-vs-1": (stream_id(EXP, 0), stream_id(EXP, 1)),
    "message-m-vs-m+1": (stream_id(EXP, 12345), stream_id(EXP, 12346)),
    "message-carry-into-bit-32": (stream_id(EXP, 2**12 - 1), stream_id(EXP, 2**12)),
    "message-high-half-only": (stream_id(EXP, 5), stream_id(EXP, 5 + 2**12)),
    "message-max": (stream_id(EXP, MAX_MESSAGE - 1), stream_id(EXP, MAX_MESSAGE)),
    "row-0-vs-1": (stream_id(EXP, 7, 0), stream_id(EXP, 7, 1)),
    "row-k-vs-k+1": (stream_id(EXP, 7, 41), stream_id(EXP, 7, 42)),
    "row-max": (stream_id(EXP, 7, MAX_ROW - 1), stream_id(EXP, 7, MAX_ROW)),
    "source-row-0-vs-1": (stream_id(Purpose.SOURCE, 2, 0), stream_id(Purpose.SOURCE, 2, 1)),
}


@pytest.mark.parametrize("pair", list(STREAM_PAIRS), ids=list(STREAM_PAIRS))
def test_streams_are_uncorrelated(pair):
    """Uniforms of two different streams at the same counters are uncorrelated, also with
    a shift of one counter (u_a[i] against u_b[i + 1])."""
    a, b = STREAM_PAIRS[pair]
    assert a != b
    ua, ub = _uniforms(SEED, a, N), _uniforms(SEED, b, N)
    _assert_uncorrelated(ua, ub, pair)
    _assert_uncorrelated(ua[1:], ub[:-1], pair + " (shift +1)")
    _assert_uncorrelated(ua[:-1], ub[1:], pair + " (shift -1)")


@pytest.mark.parametrize("pair", list(STREAM_PAIRS), ids=list(STREAM_PAIRS))
def test_stream_pairs_fill_the_unit_square(pair):
    """The pairs (u_a[i], u_b[i]) of two streams are uniform on a 16 x 16 grid (chi-square)."""
    a, b = STREAM_PAIRS[pair]
    _assert_pairs_uniform(_uniforms(SEED, a, N), _uniforms(SEED, b, N), 16, pair)


def test_neighbouring_message_labels_are_independent():
    """Labels (high = 10) of messages m and m + 1 at the same candidate index are jointly
    uniform over the 10 x 10 pairs."""
    index = torch.arange(N)
    la = integers(SEED, stream_id(Purpose.LABEL, 99), index, 10).numpy()
    lb = integers(SEED, stream_id(Purpose.LABEL, 100), index, 10).numpy()
    _assert_labels_uniform(la * 10 + lb, 100, "label pairs of messages 99 and 100")


def test_neighbouring_seeds_are_independent():
    """Seeds s and s + 1 give uncorrelated, jointly uniform uniforms on the same stream."""
    ua, ub = _uniforms(SEED, STREAM, N), _uniforms(SEED + 1, STREAM, N)
    _assert_uncorrelated(ua, ub, "seed s vs s+1")
    _assert_pairs_uniform(ua, ub, 16, "seed s vs s+1")


def test_words_of_one_counter_are_independent():
    """Word 0 and word 1 of the same counter (both feed a float64 uniform) are uncorrelated
    and jointly uniform."""
    index = torch.arange(N)
    wa = random_words(SEED, STREAM, index, 0).double().numpy()
    wb = random_words(SEED, STREAM, index, 1).double().numpy()
    ua, ub = (wa + 0.5) / 2**32, (wb + 0.5) / 2**32
    _assert_uncorrelated(ua, ub, "word 0 vs word 1")
    _assert_pairs_uniform(ua, ub, 16, "word 0 vs word 1")


# --------------------------------------------------------------------------------------------
# 4. statistical quality

KS_KINDS = ["uniform32", "uniform64", "exponential32", "exponential64", "normal32", "normal64"]


def _check_ks(kind: str, n: int, start: int = 0) -> None:
    draw = _sample if n <= N else _sample.__wrapped__  # do not keep 10**7 samples around
    x, law = draw(kind, n, start=start)
    result = stats.kstest(x, law)
    assert result.pvalue > P_MIN, (
        f"{kind} at counters [{start}, {start + n}): KS statistic {result.statistic:.2e}, "
        f"p-value {result.pvalue:.2e} against {law}"
    )


@pytest.mark.parametrize("kind", KS_KINDS)
def test_kolmogorov_smirnov(kind):
    """Uniforms (float32, float64) follow U(0, 1), exponentials Exp(1), normals N(0, 1):
    Kolmogorov-Smirnov p-value above P_MIN at 10**6 samples."""
    _check_ks(kind, N)


@pytest.mark.parametrize(
    "start", [2**32 - N // 2, 2**40, 2**63 - N - 1], ids=["2**32", "2**40", "2**63"]
)
def test_kolmogorov_smirnov_at_large_counters(start):
    """Float32 uniforms at counters across 2**32, at 2**40 and just below 2**63 are U(0, 1)."""
    _check_ks("uniform32", N, start)


@pytest.mark.slow
@pytest.mark.parametrize("kind", KS_KINDS)
def test_kolmogorov_smirnov_slow(kind):
    """As test_kolmogorov_smirnov at 10**7 samples."""
    _check_ks(kind, N_SLOW)


def test_moments():
    """Sample mean and variance of uniforms, exponentials and normals (float32 and float64)
    match 1/2 and 1/12, 1 and 1, 0 and 1 within 5 standard errors; this catches tail defects
    that the KS test is blind to (e.g. a wrong largest exponential)."""
    n = N
    # law: (mean, variance, standard error of the mean, standard error of the sample variance)
    moments = {
        "uniform": (0.5, 1 / 12, math.sqrt(1 / 12 / n), math.sqrt((1 / 80 - 1 / 144) / n)),
        "expon": (1.0, 1.0, math.sqrt(1 / n), math.sqrt(8 / n)),
        "norm": (0.0, 1.0, math.sqrt(1 / n), math.sqrt(2 / n)),
    }
    for kind in KS_KINDS:
        x, law = _sample(kind, n, start=0)  # the cached sample of test_kolmogorov_smirnov
        mean, var, se_mean, se_var = moments[law]
        assert abs(x.mean() - mean) < 5 * se_mean, (kind, x.mean())
        assert abs(x.var() - var) < 5 * se_var, (kind, x.var())


SERIAL_LAGS = [1, 2, 3, 5, 8, 16, 31, 32, 64, 255, 256, 1024, 4096, 65_536]


def _check_serial_correlation(n: int, dtype) -> None:
    u = _uniforms(SEED, STREAM, n, 0, dtype) if n <= N else uniform(
        SEED, STREAM, torch.arange(n), dtype
    ).double().numpy()
    for lag in SERIAL_LAGS:
        _assert_uncorrelated(u[:-lag], u[lag:], f"lag {lag}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_serial_correlation(dtype):
    """Lag-k autocorrelation of uniforms (k = 1 ... 65536) lies within 5/sqrt(n)."""
    _check_serial_correlation(N, dtype)


@pytest.mark.slow
def test_serial_correlation_slow():
    """As test_serial_correlation at 10**7 float32 uniforms."""
    _check_serial_correlation(N_SLOW, torch.float32)


def _check_serial_pairs(n: int) -> None:
    u = _uniforms(SEED, STREAM, n) if n <= N else uniform(
        SEED, STREAM, torch.arange(n)
    ).double().numpy()
    pairs = u[: n - n % 2].reshape(-1, 2)  # non-overlapping (u[2i], u[2i + 1])
    _assert_pairs_uniform(pairs[:, 0], pairs[:, 1], 16, "consecutive pairs")
    triples = u[: n - n % 3].reshape(-1, 3)  # non-overlapping (u[3i], u[3i + 2]): lag 2
    _assert_pairs_uniform(triples[:, 0], triples[:, 2], 16, "pairs at lag 2")


def test_serial_pairs():
    """Serial test: non-overlapping consecutive pairs (and pairs at lag 2) of uniforms are
    uniform over a 16 x 16 grid (chi-square)."""
    _check_serial_pairs(N)


@pytest.mark.slow
def test_serial_pairs_slow():
    """As test_serial_pairs at 10**7 uniforms."""
    _check_serial_pairs(N_SLOW)


INTEGER_HIGHS = [2, 3, 10, 64, 1000, 1024]


@pytest.mark.parametrize("high", INTEGER_HIGHS)
def test_integers_chi_square(high):
    """Integer labels are uniform over [0, high), powers of two and not (chi-square)."""
    labels = integers(SEED, stream_id(Purpose.LABEL, 1), torch.arange(N), high).numpy()
    _assert_labels_uniform(labels, high, f"high={high}")


def test_integer_label_pairs_chi_square():
    """Consecutive non-overlapping label pairs (high = 10) are uniform over 100 cells."""
    labels = integers(SEED, stream_id(Purpose.LABEL, 2), torch.arange(N), 10).numpy()
    pairs = labels.reshape(-1, 2)
    _assert_labels_uniform(pairs[:, 0] * 10 + pairs[:, 1], 100, "label pairs")


@pytest.mark.slow
@pytest.mark.parametrize("high", [10, 64])
def test_integers_chi_square_slow(high):
    """As test_integers_chi_square at 10**7 labels, and label pairs over high**2 cells."""
    labels = integers(SEED, stream_id(Purpose.LABEL, 1), torch.arange(N_SLOW), high).numpy()
    _assert_labels_uniform(labels, high, f"high={high}")
    pairs = labels.reshape(-1, 2)
    _assert_labels_uniform(pairs[:, 0] * high + pairs[:, 1], high * high, f"pairs high={high}")


def test_word_bits_are_fair():
    """Each of the 32 bits of the words (words 0 and 1) is set with frequency 1/2 within
    4.5 standard errors: no stuck or biased bit, the low ones included."""
    index = torch.arange(N)
    for w in (0, 1):
        freqs = _bit_frequencies(random_words(SEED, STREAM, index, w), 32)
        for bit, freq in enumerate(freqs):
            assert abs(freq - 0.5) < binomial_margin(0.5, N), (w, bit, freq)


# --------------------------------------------------------------------------------------------
# 5. range and format


def test_float32_uniforms_are_odd_multiples_of_2_pow_minus_24():
    """float32 uniforms lie strictly in (0, 1) and are odd multiples of 2**-24; they are the
    documented function (2 * (w >> 9) + 1) * 2**-24 of word 0, so w = 0 and w = 2**32 - 1
    map to 2**-24 and 1 - 2**-24, strictly inside (0, 1)."""
    index = torch.arange(N_FORMAT)
    u = uniform(SEED, STREAM, index, torch.float32)
    assert u.dtype == torch.float32
    assert float(u.min()) > 0 and float(u.max()) < 1
    scaled = u.double() * 2**24  # exact: power-of-two scaling of a 24-bit significand
    assert torch.equal(scaled, scaled.floor())
    assert bool((scaled.long() % 2 == 1).all())
    words = random_words(SEED, STREAM, index, 0)
    assert torch.equal(scaled.long(), 2 * (words >> 9) + 1)


def test_float64_uniforms_are_odd_multiples_of_2_pow_minus_53():
    """float64 uniforms lie strictly in (0, 1), are odd multiples of 2**-53, and each of the 52
    random bits m of u = (2 m + 1) 2**-53 is fair (so both words contribute)."""
    n = N_FORMAT
    u = uniform(SEED, STREAM, torch.arange(n), torch.float64)
    assert u.dtype == torch.float64
    assert float(u.min()) > 0 and float(u.max()) < 1
    scaled = u * 2**53
    assert torch.equal(scaled, scaled.floor())
    odd = scaled.long()
    assert bool((odd % 2 == 1).all())
    m = odd >> 1
    assert 0 <= int(m.min()) and int(m.max()) < 2**52
    for bit, freq in enumerate(_bit_frequencies(m, 52)):
        assert abs(freq - 0.5) < binomial_margin(0.5, n), (bit, freq)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_exponentials_and_normals_are_finite_transforms_of_the_uniforms(dtype):
    """Exponentials are finite, > 0 and equal -log(u); normals are finite and equal the
    inverse normal CDF of u (scipy.special.ndtri as reference), in the requested dtype."""
    index = torch.arange(N_FORMAT)
    u = uniform(SEED, STREAM, index, dtype).double().numpy()
    e = exponential(SEED, STREAM, index, dtype)
    z = normal(SEED, STREAM, index, dtype)
    assert e.dtype == dtype and z.dtype == dtype
    assert bool(torch.isfinite(e).all()) and float(e.min()) > 0
    assert bool(torch.isfinite(z).all())
    tol = {torch.float32: 2e-6, torch.float64: 1e-13}[dtype]
    np.testing.assert_allclose(e.double().numpy(), -np.log(u), rtol=tol, atol=tol)
    np.testing.assert_allclose(z.double().numpy(), special.ndtri(u), rtol=tol, atol=tol)


@pytest.mark.parametrize("high", [1, 2, 3, 10, 64, 1000, 2**31 - 1, 2**31])
def test_integers_lie_in_range(high):
    """integers(high) are int64 in [0, high), for the extreme highs 1 and 2**31 too, and are
    the documented floor(w * high / 2**32) of word 0 (exact rational arithmetic on Python ints),
    which makes them non-decreasing in w."""
    index = torch.arange(20_000)
    labels = integers(SEED, STREAM, index, high)
    assert labels.dtype == torch.int64
    assert 0 <= int(labels.min()) and int(labels.max()) < high
    words = random_words(SEED, STREAM, index, 0)
    expected = [(w * high) // 2**32 for w in words.tolist()]
    assert labels.tolist() == expected
    order = torch.argsort(words)
    assert bool((labels[order].diff() >= 0).all())


@pytest.mark.parametrize("log2_high", range(0, 32))
def test_power_of_two_integers_are_the_top_bits_of_word_0(log2_high):
    """For high = 2**k, integers(high) equals the top k bits of word 0 (w >> (32 - k)), so it
    is exactly uniform: each label is taken by exactly 2**(32 - k) of the 2**32 words."""
    index = torch.arange(2**40, 2**40 + 20_000)
    high = 2**log2_high
    labels = integers(SEED, STREAM, index, high)
    assert torch.equal(labels, random_words(SEED, STREAM, index, 0) >> (32 - log2_high))


@pytest.mark.parametrize("word", [0, 1, 2, 31])
def test_words_lie_in_range(word):
    """Words are int64 in [0, 2**32) and use the whole range (min near 0, max near 2**32)."""
    words = random_words(SEED, STREAM, torch.arange(N), word)
    assert words.dtype == torch.int64
    lo, hi = int(words.min()), int(words.max())
    assert 0 <= lo and hi < 2**32
    # the extremes of N uniform words are within 2**32 * 20 / N of the ends w.p. 1 - 2e-9
    assert lo < 20 * 2**32 // N and hi > 2**32 - 20 * 2**32 // N


# --------------------------------------------------------------------------------------------
# 6. bad input

INDEX = torch.arange(4)
BAD_CALLS = {
    "negative-seed": lambda: random_words(-1, 0, INDEX),
    "seed-2**63": lambda: random_words(2**63, 0, INDEX),
    "float-seed": lambda: uniform(1.0, 0, INDEX),
    "str-seed": lambda: uniform("1", 0, INDEX),
    "none-seed": lambda: uniform(None, 0, INDEX),
    "bool-seed": lambda: uniform(True, 0, INDEX),
    "tensor-seed": lambda: uniform(torch.tensor(1), 0, INDEX),
    "source-negative-seed": lambda: CounterRandomness(-1),
    "source-seed-2**63": lambda: CounterRandomness(2**63),
    "float-index": lambda: random_words(0, 0, torch.arange(4.0)),
    "float64-index": lambda: uniform(0, 0, torch.arange(4, dtype=torch.float64)),
    "bool-index": lambda: uniform(0, 0, torch.ones(4, dtype=torch.bool)),
    "list-index": lambda: uniform(0, 0, [0, 1, 2]),
    "int-index": lambda: uniform(0, 0, 3),
    "negative-stream": lambda: random_words(0, -1, INDEX),
    "stream-2**63": lambda: random_words(0, 2**63, INDEX),
    "float-stream": lambda: random_words(0, 1.0, INDEX),
    "bool-stream": lambda: random_words(0, True, INDEX),
    "float-stream-tensor": lambda: random_words(0, torch.tensor([1.0]), INDEX),
    "high-0": lambda: integers(0, 0, INDEX, 0),
    "high-negative": lambda: integers(0, 0, INDEX, -4),
    "high-2**31+1": lambda: integers(0, 0, INDEX, 2**31 + 1),
    "high-2**32": lambda: integers(0, 0, INDEX, 2**32),
    "high-float": lambda: integers(0, 0, INDEX, 10.0),
    "high-bool": lambda: integers(0, 0, INDEX, True),
    "uniform-float16": lambda: uniform(0, 0, INDEX, torch.float16),
    "uniform-bfloat16": lambda: uniform(0, 0, INDEX, torch.bfloat16),
    "uniform-int64": lambda: uniform(0, 0, INDEX, torch.int64),
    "exponential-float16": lambda: exponential(0, 0, INDEX, torch.float16),
    "normal-float16": lambda: normal(0, 0, INDEX, torch.float16),
    "method-float16": lambda: CounterRandomness(0).uniform(0, INDEX, torch.float16),
    "method-high-0": lambda: CounterRandomness(0).integers(0, INDEX, 0),
    "row-negative": lambda: stream_id(EXP, 0, -1),
    "row-2**16": lambda: stream_id(EXP, 0, MAX_ROW + 1),
    "message-negative": lambda: stream_id(EXP, -1),
    "message-2**43": lambda: stream_id(EXP, MAX_MESSAGE + 1),
}


@pytest.mark.parametrize("call", list(BAD_CALLS), ids=list(BAD_CALLS))
def test_bad_input_raises_dsc_error(call):
    """Invalid seeds, counters, streams, highs, dtypes and stream-id fields raise a DscError
    (also a ValueError) whose message names the offending argument."""
    with pytest.raises(dsc.DscError) as info:
        BAD_CALLS[call]()
    assert isinstance(info.value, ValueError)
    assert str(info.value)


def test_extreme_valid_arguments_are_accepted():
    """The boundary values of the documented ranges are accepted: seed 0 and 2**63 - 1,
    stream 2**63 - 1, high 1 and 2**31, message 2**43 - 1 and row 2**16 - 1."""
    for seed in (0, 2**63 - 1):
        CounterRandomness(seed)
        assert random_words(seed, 2**63 - 1, INDEX).shape == (4,)
    assert bool((integers(0, 0, INDEX, 1) == 0).all())
    assert integers(0, 0, INDEX, 2**31).shape == (4,)
    assert stream_id(EXP, MAX_MESSAGE, MAX_ROW) == 2**63 - 1 - 15 + int(EXP)


# --------------------------------------------------------------------------------------------
# 7. CPU / CUDA bit-identity


@pytest.mark.gpu
def test_cpu_and_cuda_are_bit_identical():
    """Words, float32/float64 uniforms and integers are bit-identical on CPU and CUDA for 10**6
    counters (low and >= 2**40) and a broadcast stream tensor; exponentials and normals agree
    to within a few ulps (device math libraries may differ in the last unit)."""
    cuda = torch.device("cuda")
    streams = stream_id(EXP, torch.tensor([0, 1, 4096])[:, None], torch.tensor([0, 5]))[..., None]
    for start in (0, 2**40):
        index = torch.arange(start, start + N)
        cpu = {
            "words0": random_words(SEED, streams, index, 0),
            "words1": random_words(SEED, streams, index, 1),
            "uniform32": uniform(SEED, streams, index, torch.float32),
            "uniform64": uniform(SEED, streams, index, torch.float64),
            "integers10": integers(SEED, streams, index, 10),
        }
        gpu = {
            "words0": random_words(SEED, streams.to(cuda), index.to(cuda), 0),
            # a CPU stream tensor is moved to the index's device
            "words1": random_words(SEED, streams, index.to(cuda), 1),
            "uniform32": uniform(SEED, streams.to(cuda), index.to(cuda), torch.float32),
            "uniform64": uniform(SEED, streams.to(cuda), index.to(cuda), torch.float64),
            "integers10": integers(SEED, streams.to(cuda), index.to(cuda), 10),
        }
        for name, value in cpu.items():
            assert gpu[name].device.type == "cuda", name
            assert torch.equal(gpu[name].cpu(), value), (name, start)
        for fn in (exponential, normal):
            for dtype in (torch.float32, torch.float64):
                ref = fn(SEED, streams, index, dtype)
                got = fn(SEED, streams.to(cuda), index.to(cuda), dtype).cpu()
                eps = torch.finfo(dtype).eps
                torch.testing.assert_close(got, ref, rtol=8 * eps, atol=8 * eps)


# --------------------------------------------------------------------------------------------
# 8. key derivation on Python ints and on tensors


def _random_u32(count: int, seed: int) -> list[int]:
    edges = [0, 1, 2, 2**15, 2**16 - 1, 2**16, 2**31 - 1, 2**31, 2**32 - 2, 2**32 - 1]
    values = np.random.default_rng(seed).integers(0, 2**32, size=count, dtype=np.uint64)
    return edges + [int(v) for v in values]


def test_mix32_ints_and_tensors_agree():
    """mix32 gives the same results on Python ints and on int64 tensors, stays in [0, 2**32),
    and (being a bijection) never maps two distinct inputs of the sample to one output."""
    xs = _random_u32(5000, 3)
    from_ints = [mix32(x) for x in xs]
    from_tensor = mix32(torch.tensor(xs, dtype=torch.int64))
    assert from_tensor.dtype == torch.int64
    assert from_tensor.tolist() == from_ints
    assert all(0 <= y < 2**32 for y in from_ints)
    assert len(set(from_ints)) == len(set(xs))


def test_mix32_is_injective_on_structured_sets():
    """mix32 has no collision on 2**19 consecutive inputs, nor on 2**19 inputs differing only
    in their high 19 bits (a necessary condition of its documented bijectivity)."""
    k = torch.arange(2**19)
    for xs in (k, k << 13, (k << 13) | 0xABC, 2**32 - 1 - k):
        ys = mix32(xs)
        assert 0 <= int(ys.min()) and int(ys.max()) < 2**32
        assert torch.unique(ys).numel() == xs.numel()


def test_stream_keys_ints_and_tensors_agree():
    """The round keys derived from an int stream equal those derived from the same stream
    held in an int64 tensor, for streams across the whole range [0, 2**63) and several
    seeds and words."""
    low = _random_u32(300, 4)
    streams = low + [s << 31 for s in low] + [2**63 - 1, 2**32, 2**32 - 1]
    streams = [s for s in streams if s < 2**63]
    tensor = torch.tensor(streams, dtype=torch.int64)
    for seed in (0, SEED, 2**32 + 7, 2**63 - 1):
        for word in (0, 1, 5):
            keys_t = _stream_keys(seed, tensor, word)
            keys_i = [_stream_keys(seed, s, word) for s in streams]
            for r in range(3):
                assert keys_t[r].tolist() == [k[r] for k in keys_i], (seed, word, r)


def test_scalar_and_tensor_streams_agree():
    """Generation with a Python-int stream equals generation with the same stream as a 0-d
    tensor and as a full tensor of that value, for every value type."""
    index = torch.arange(2**32 - 500, 2**32 + 500)
    for stream in (0, 1, STREAM, 2**32 - 1, 2**32, stream_id(Purpose.SOURCE, MAX_MESSAGE, 3),
                   2**63 - 1):
        by_int = _all_kinds(SEED, stream, index)
        by_scalar_tensor = _all_kinds(SEED, torch.tensor(stream), index)
        by_full_tensor = _all_kinds(SEED, torch.full_like(index, stream), index)
        for name, value in by_int.items():
            assert torch.equal(by_scalar_tensor[name], value), (stream, name)
            assert torch.equal(by_full_tensor[name], value), (stream, name)


def test_arguments_are_not_modified():
    """mix32 and every generator leave their index and stream tensors untouched (an int64
    index or stream may be used without a copy, so an in-place step would corrupt it)."""
    xs = torch.tensor(_random_u32(1000, 5), dtype=torch.int64)
    before = xs.clone()
    mix32(xs)
    assert torch.equal(xs, before)
    index = torch.arange(2**32 - 100, 2**32 + 100)
    streams = torch.tensor([STREAM, 2**40 + 3])[:, None]
    index_before, streams_before = index.clone(), streams.clone()
    _all_kinds(SEED, streams, index)
    _all_kinds(SEED, STREAM, index)
    CounterRandomness(SEED).uniform(streams, index)
    assert torch.equal(index, index_before)
    assert torch.equal(streams, streams_before)


@pytest.mark.parametrize(
    "message, row",
    [
        (torch.tensor([0]), torch.tensor([MAX_ROW + 1])),
        (torch.tensor([MAX_MESSAGE + 1]), 0),
        (torch.tensor([-1]), 0),
        (0, torch.tensor([-2])),
        (torch.tensor([0.5]), 0),
    ],
)
def test_stream_id_rejects_tensor_parts_that_would_collide(message, row):
    """Out-of-range tensor parts would alias other streams; they are errors, not ids."""
    with pytest.raises(dsc.DscError):
        stream_id(Purpose.EXPONENTIAL, message, row)


def test_stream_id_widens_int32_tensors_instead_of_overflowing():
    row = torch.tensor([1], dtype=torch.int32)
    packed = stream_id(Purpose.LABEL, 3000, row)
    assert packed.dtype == torch.int64
    assert packed.item() == stream_id(Purpose.LABEL, 3000, 1) == 3000 * 2**20 + 1 * 2**4 + 2


def test_negative_stream_tensors_and_counters_are_rejected():
    with pytest.raises(dsc.DscError):
        random_words(0, torch.tensor([-5]), torch.arange(2))
    with pytest.raises(dsc.DscError):
        random_words(0, 1, torch.tensor([3, -1]))


def test_numpy_integer_seeds_are_accepted():
    index = torch.arange(10)
    assert torch.equal(random_words(np.int64(7), 1, index), random_words(7, 1, index))


@pytest.mark.parametrize(
    "stream_shape, index_shape",
    [((1,), (300_000,)), ((7, 3, 1), (1, 1, 20_000)), ((1, 5, 1), (40_000,)), ((1, 1), (2, 200_000))],
)
def test_cache_sized_slices_equal_whole_tensor_generation(stream_shape, index_shape):
    """The CPU slicing of large outputs changes no value, whatever the broadcast layout."""
    from dsc.coding import randomness as r

    streams = torch.arange(math.prod(stream_shape)).reshape(stream_shape) * 977 + 5
    index = torch.arange(math.prod(index_shape)).reshape(index_shape) + 2**33
    for sliced, whole, arg in [
        (r._exponential, r._exponential_whole, torch.float32),
        (r._uniform, r._uniform_whole, torch.float64),
        (r._normal, r._normal_whole, torch.float32),
        (r._integers, r._integers_whole, 10),
    ]:
        assert torch.equal(sliced(SEED, streams, index, arg), whole(SEED, streams, index, arg))
