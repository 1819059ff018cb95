"""The evaluation statistics against closed forms and against each other: decibels, the delta
method, standard errors from values, from running sums and of a few numbers, proportions."""

from __future__ import annotations

import math
import random

import pytest
import torch

from dsc.eval.stats import binomial_se, db_se, mean_se, proportion, standard_error, standard_error_of_sums, to_db


def test_decibels_of_powers_of_ten_and_of_nothing():
    assert to_db(100.0) == 20.0 and to_db(1e-3) == pytest.approx(-30.0) and to_db(1.0) == 0.0
    assert to_db(0.0) == to_db(-1.0) == float("-inf")


def test_the_delta_method_is_the_slope_of_the_decibels_times_the_standard_error():
    for mean, se in ((0.02, 0.001), (3.0, 0.2), (1e-5, 1e-7)):
        h = mean * 1e-6
        slope = (to_db(mean + h) - to_db(mean - h)) / (2 * h)
        assert db_se(mean, se) == pytest.approx(slope * se, rel=1e-6)
    assert math.isnan(db_se(0.0, 0.1)) and math.isnan(db_se(-1.0, 0.1))


def test_standard_error_of_values_against_the_closed_form():
    values = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)  # unbiased variance 5/3
    assert standard_error(values) == pytest.approx(math.sqrt(5 / 3 / 4))
    assert math.isnan(standard_error(values[:1]))


def test_standard_error_from_sums_over_batches_equals_the_one_from_the_values():
    values = torch.randn(1000, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 3 + 1
    total = total_sq = 0.0
    for batch in values.split(128):  # sums of batches add up
        total, total_sq = total + batch.sum().item(), total_sq + (batch**2).sum().item()
    assert standard_error_of_sums(total, total_sq, len(values)) == pytest.approx(standard_error(values), rel=1e-9)
    assert standard_error_of_sums(2.0, 4.0, 1) == 0.0


def test_mean_and_standard_error_of_a_few_numbers():
    mean, se = mean_se(iter([1.0, 2.0, 3.0, 4.0]))
    assert mean == 2.5 and se == pytest.approx(math.sqrt(5 / 3 / 4))
    assert mean_se([7.0]) == (7.0, 0.0)


def test_proportions_and_their_binomial_standard_error():
    assert proportion(3, 12) == 0.25 and proportion(0, 0) == 0.0
    assert binomial_se(0.25, 12) == pytest.approx(math.sqrt(0.25 * 0.75 / 12))
    assert binomial_se(0.0, 0) == 0.0 and binomial_se(1.0, 50) == 0.0


def test_the_binomial_standard_error_is_the_spread_of_simulated_proportions():
    rng = random.Random(0)
    p, total = 0.3, 400
    rates = [sum(rng.random() < p for _ in range(total)) / total for _ in range(400)]
    spread = torch.tensor(rates, dtype=torch.float64).std().item()
    assert spread == pytest.approx(binomial_se(p, total), rel=0.15)  # 400 draws: about 4 % relative noise
