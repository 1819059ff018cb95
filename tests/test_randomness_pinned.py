"""Pinned values of the shared generator: every bitstream depends on them, so a change to the
hash, the derived values or the stream layout must fail here, not silently turn old streams into
garbage. The literals below were computed once by ``tests/_reference_hash.py``, an independent
plain-Python implementation of the documented hash (``dsc.coding.randomness``) and stream
layout (``dsc.coding.streams``), never by the library."""

from __future__ import annotations

import math

import pytest
import torch

from dsc.coding import randomness
from dsc.coding.randomness import CounterRandomness
from dsc.coding.streams import (
    Purpose,
    arrival_increments,
    balanced_labels,
    candidate_labels,
    stream_id,
)
from tests import _reference_hash as reference

SEEDS = (7, 2**35 + 11)  # the second exercises the seed's high word
MESSAGES = ((0, 0), (5000, 3))  # (message, row): the second stream id is above 2**32
INDEX = (0, 1, 2, 2**32 + 5)  # the last exercises the counter's high word

PINNED = {
    'word0': {
        7: [[1748422849, 2033723502, 4101632819, 1483689463],
            [1335004627, 2345639798, 3973220459, 1156927119]],
        34359738379: [[607625396, 3730659066, 2635023116, 1543915093],
                      [277206686, 1670743473, 786331826, 1570744349]],
    },
    'word1': {
        7: [[1847420513, 4231083119, 2124181175, 3560894868],
            [2118059989, 3638796099, 3083315928, 2088686962]],
        34359738379: [[1647268042, 1736184423, 394627155, 534122704],
                      [1496075285, 1575766009, 692167981, 300671144]],
    },
    'uniform_float32': {
        7: [[0.07313436269760132, 0.8432992100715637, 0.5756147503852844, 0.4372928738594055],
            [0.8127227425575256, 0.8869838118553162, 0.4201536774635315, 0.5568018555641174]],
        34359738379: [[0.30926936864852905, 0.5457392334938049, 0.4665403962135315, 0.6133950352668762],
                      [0.7103691697120667, 0.6513398289680481, 0.7609328627586365, 0.23915034532546997]],
    },
    'uniform_float64': {
        7: [[0.07313439090421359, 0.8432992448379971, 0.5756147182150336, 0.43729281509982953],
            [0.8127227838922612, 0.8869838338265971, 0.4201537149630249, 0.5568018775728801]],
        34359738379: [[0.30926940697939875, 0.5457391860179993, 0.46654045479326955, 0.6133950040917459],
                      [0.710369196972736, 0.6513398107778913, 0.7609328568087629, 0.23915029977729263]],
    },
    'exponential_float32': {
        7: [[0.008451371050823057, 0.42178828715008965, 2.4786224113916444, 0.013799493715641117],
            [0.37634770795850625, 0.4743140724067045, 0.9733400295875233, 0.40218707546823546]],
        34359738379: [[0.7188741496145737, 0.47837627063619315, 0.21821388610534584, 0.47178238237814385],
                      [0.07272438721038725, 0.04663768212610954, 4.1944152340959855, 1.8212537634432464]],
    },
    'exponential_float64': {
        7: [[0.008451327908027188, 0.4217882240965932, 2.4786225123447636, 0.013799517521602094],
            [0.37634775879409565, 0.47431409776725303, 0.973339936542433, 0.4021870751948925]],
        34359738379: [[0.7188742045997378, 0.47837618690339917, 0.21821393884437662, 0.47178238185315663],
                      [0.0727244297326907, 0.046637705889806765, 4.194419058110534, 1.8212537945691336]],
    },
    'normal_float32': {
        7: [[-0.6047355487725202, -1.2636021623359173, -2.033499521456731, 0.5784465834375954],
            [-0.14917205450090806, -2.112531253113995, -0.3257389491063401, 2.9649985999201345]],
        34359738379: [[-0.22217014075116567, 0.7822513163239779, 0.5426466146197377, -0.5218256348151584],
                      [0.21988342232015418, 0.3173596490568578, 0.3511098373459025, -0.003547968061071617]],
    },
    'normal_float64': {
        7: [[-0.604735401724052, -1.2636018688507653, -2.0334994010525462, 0.5784464317075483],
            [-0.14917217998384988, -2.1125305093792868, -0.32573906111503564, 2.9650090019206448]],
        34359738379: [[-0.22217019227196422, 0.782251493531037, 0.5426465658639894, -0.52182548726295],
                      [0.2198833227595642, 0.31735968009216176, 0.3511099663023697, -0.003548112332436058]],
    },
    'integers_3': {
        7: [[2, 2, 2, 2],
            [2, 1, 1, 0]],
        34359738379: [[2, 1, 2, 1],
                      [0, 1, 2, 1]],
    },
    'integers_2**31': {
        7: [[2133782563, 2071914806, 1552156667, 1453235270],
            [1698314108, 839904283, 1057852387, 348747824]],
        34359738379: [[1446309695, 1384853171, 1527044635, 889222066],
                      [433694147, 829845033, 1916859654, 799860424]],
    },
    'labels_8': {
        7: [[1, 1, 4, 0, 2, 2, 2, 6],
            [2, 5, 0, 3, 3, 2, 2, 3]],
        34359738379: [[2, 7, 6, 5, 0, 1, 5, 7],
                      [6, 3, 3, 4, 7, 7, 6, 6]],
    },
    'balanced_labels_24_4': {
        7: [[1, 1, 0, 2, 3, 1, 3, 0],
            [2, 1, 3, 0, 3, 2, 1, 2]],
        34359738379: [[1, 2, 2, 2, 3, 3, 0, 1],
                      [2, 0, 3, 1, 0, 0, 0, 1]],
    },
    'arrival_increments_256_3': {
        7: [[9600611426985, 11571833756550, 10695451733069, 3975224550687],
            [595507727125, 4681618648625, 5718760213739, 7254633141526]],
        34359738379: [[2645959467110, 23288685498, 4426250109688, 9156152902679],
                      [906519218162, 2253201473882, 839738385146, 9591205448142]],
    },
}

F32, F64 = torch.float32, torch.float64
# kind: (purpose of its streams, library function of (seed, stream, index tensor), plain-Python reference)
KINDS = {
    "word0": (Purpose.CHECK, lambda s, st, i: randomness.random_words(s, st, i, 0),
              lambda s, st, i: reference.word(s, st, i, 0)),
    "word1": (Purpose.CHECK, lambda s, st, i: randomness.random_words(s, st, i, 1),
              lambda s, st, i: reference.word(s, st, i, 1)),
    "uniform_float32": (Purpose.SOURCE, lambda s, st, i: randomness.uniform(s, st, i, F32), reference.uniform32),
    "uniform_float64": (Purpose.SOURCE, lambda s, st, i: randomness.uniform(s, st, i, F64), reference.uniform64),
    "exponential_float32": (Purpose.EXPONENTIAL, lambda s, st, i: randomness.exponential(s, st, i, F32),
                            lambda s, st, i: reference.exponential(reference.uniform32(s, st, i))),
    "exponential_float64": (Purpose.EXPONENTIAL, lambda s, st, i: randomness.exponential(s, st, i, F64),
                            lambda s, st, i: reference.exponential(reference.uniform64(s, st, i))),
    "normal_float32": (Purpose.CANDIDATE, lambda s, st, i: randomness.normal(s, st, i, F32),
                       lambda s, st, i: reference.normal(reference.uniform32(s, st, i))),
    "normal_float64": (Purpose.CANDIDATE, lambda s, st, i: randomness.normal(s, st, i, F64),
                       lambda s, st, i: reference.normal(reference.uniform64(s, st, i))),
    "integers_3": (Purpose.WINNING_ROW, lambda s, st, i: randomness.integers(s, st, i, 3),
                   lambda s, st, i: reference.integers(s, st, i, 3)),
    "integers_2**31": (Purpose.WINNING_ROW, lambda s, st, i: randomness.integers(s, st, i, 2**31),
                       lambda s, st, i: reference.integers(s, st, i, 2**31)),
}
# Exact kinds are integer-valued or exact dyadic fractions; exponentials and normals go through
# log / ndtri, which may differ from a correctly rounded result in the last units (documented).
TOLERANCE = {"exponential_float32": 1e-6, "normal_float32": 1e-6, "exponential_float64": 1e-13,
             "normal_float64": 1e-13}


def _close(got: list, expected: list, tolerance: float) -> bool:
    return all(math.isclose(a, b, rel_tol=tolerance, abs_tol=tolerance) for a, b in zip(got, expected, strict=True))


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_generator_values_equal_the_pinned_literals(kind):
    purpose, library, _ = KINDS[kind]
    for seed in SEEDS:
        for (message, row), expected in zip(MESSAGES, PINNED[kind][seed], strict=True):
            got = library(seed, stream_id(purpose, message, row), torch.tensor(INDEX)).tolist()
            if kind in TOLERANCE:
                assert _close(got, expected, TOLERANCE[kind]), (kind, seed, message, got, expected)
            else:
                assert got == expected, (kind, seed, message)


def test_the_coders_streams_equal_the_pinned_literals():
    """Labels (i.i.d. and balanced), and the fixed-point arrival spacings, through the stream layout."""
    messages = torch.tensor([message for message, _ in MESSAGES])
    for seed in SEEDS:
        rng = CounterRandomness(seed)
        assert candidate_labels(rng, messages, torch.arange(8), 8).tolist() == PINNED["labels_8"][seed]
        assert balanced_labels(rng, messages, torch.arange(8), 24, 4).tolist() == PINNED["balanced_labels_24_4"][seed]
        spacing = arrival_increments(rng, messages, torch.arange(4), 256, 3)
        # X_j = -log(u) may differ in its last unit; the spacing is rounded to 2**-52: one unit at most
        assert (spacing - torch.tensor(PINNED["arrival_increments_256_3"][seed])).abs().max() <= 1


def test_the_literals_are_the_reference_implementations_values():
    """The table is what the independent implementation computes (so it was not copied from the
    library's output), and the stream ids it keys are the documented packing."""
    for kind, (purpose, _, ref) in KINDS.items():
        for seed in SEEDS:
            rows = [[ref(seed, reference.stream(int(purpose), m, r), i) for i in INDEX] for m, r in MESSAGES]
            assert rows == PINNED[kind][seed], kind
    for message, row in MESSAGES:
        for purpose in Purpose:
            assert stream_id(purpose, message, row) == reference.stream(int(purpose), message, row)


def test_the_library_equals_the_plain_python_hash_on_many_counters():
    """Words 0..2 on scattered counters (both halves of the 64-bit counter), several seeds and streams."""
    g = torch.Generator().manual_seed(0)
    index = torch.cat([torch.randint(0, 2**31, (100,), generator=g),
                       torch.randint(0, 2**62, (100,), generator=g, dtype=torch.int64)])
    for seed in (0, 1, 2**62 + 3):
        for st in (0, 17, 2**40 + 9, 2**62 - 1):
            for w in (0, 1, 2):
                got = randomness.random_words(seed, st, index, w).tolist()
                assert got == [reference.word(seed, st, int(i), w) for i in index], (seed, st, w)
