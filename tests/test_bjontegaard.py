"""Bjøntegaard delta rate: closed forms, the bjontegaard package's numbers, clear errors, and the
BD-rate table of an aggregated comparison sweep."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest

import dsc
from dsc.report.bdrate import bd_rate_rows
from dsc.report.bjontegaard import bd_psnr, bd_rate, bjontegaard
from dsc.report.sweep import aggregate

RATES = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
PSNR = np.array([14.0, 16.5, 18.4, 19.9, 21.1, 22.0])  # concave in rate, like a real codec


def test_a_curve_against_itself_is_zero():
    delta = bjontegaard(RATES, PSNR, RATES, PSNR)
    assert delta.rate_percent == pytest.approx(0, abs=1e-9) and delta.psnr_db == pytest.approx(0, abs=1e-9)
    assert (delta.low_db, delta.high_db) == (14.0, 22.0)


@pytest.mark.parametrize("factor", [0.5, 1.3, 4.0])
def test_scaling_every_rate_by_c_gives_c_minus_one(factor):
    """log-rate shifts by log c at every quality: the cubic fits differ by exactly that."""
    assert bd_rate(RATES, PSNR, factor * RATES, PSNR) == pytest.approx((factor - 1) * 100, rel=1e-9)


def test_a_quality_shift_on_a_log_linear_curve_has_the_closed_form():
    """PSNR = a + b ln R; the test curve is d dB better everywhere: at equal PSNR its log-rate is
    lower by d / b, so BD-rate = exp(-d / b) - 1, and BD-PSNR = d."""
    a, b, d = 10.0, 4.0, 1.5
    rates = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    delta = bjontegaard(rates, a + b * np.log(rates), rates, a + d + b * np.log(rates))
    assert delta.rate_percent == pytest.approx(math.expm1(-d / b) * 100, rel=1e-9)
    assert delta.psnr_db == pytest.approx(d, rel=1e-9)


def test_swapping_anchor_and_test_inverts_the_ratio():
    test_psnr = PSNR + np.array([0.3, 0.5, 0.2, 0.6, 0.4, 0.1])
    test_rates = RATES * 1.1
    x = bd_rate(RATES, PSNR, test_rates, test_psnr) / 100
    back = bd_rate(test_rates, test_psnr, RATES, PSNR) / 100
    assert back == pytest.approx(1 / (1 + x) - 1, rel=1e-9)
    assert bd_psnr(test_rates, test_psnr, RATES, PSNR) == pytest.approx(-bd_psnr(RATES, PSNR, test_rates, test_psnr))


def test_the_order_of_the_points_does_not_matter():
    order = [3, 0, 5, 1, 4, 2]
    assert bd_rate(RATES[order], PSNR[order], RATES * 1.2, PSNR) == pytest.approx(20.0)


@pytest.mark.parametrize("anchor, test, rate, gain", [
    # the bjontegaard package (1.3.0, method="cubic", which needs scipy), its README's example
    (([9487.76, 4593.60, 2486.44, 1358.24], [40.037, 38.615, 37.162, 35.631]),
     ([9787.80, 4469.00, 2451.52, 1356.24], [40.121, 38.651, 37.235, 35.740]), -4.008890823459477, 0.09397420419049365),
    # six anchor points against five (least-squares cubics)
    (([2, 3, 4, 5, 6, 8], [12.1, 13.0, 13.6, 14.4, 14.9, 15.9]),
     ([2.5, 3.5, 5, 7, 9], [12.0, 12.9, 13.9, 14.8, 15.5]), 20.09606479441084, -0.49555280395396056),
])
def test_agrees_with_the_bjontegaard_package(anchor, test, rate, gain):
    delta = bjontegaard(*anchor, *test)
    assert delta.rate_percent == pytest.approx(rate, rel=1e-8) and delta.psnr_db == pytest.approx(gain, rel=1e-8)


def test_curves_it_cannot_compare_are_clear_errors():
    with pytest.raises(dsc.InvalidArgumentError, match="anchor curve has 3 points.*at least 4"):
        bd_rate(RATES[:3], PSNR[:3], RATES, PSNR)
    with pytest.raises(dsc.InvalidArgumentError, match="share no quality range"):
        bd_rate(RATES, PSNR, RATES, PSNR + 20)
    bumpy = PSNR.copy()
    bumpy[3] = 18.0
    with pytest.raises(dsc.InvalidArgumentError, match="test curve is not monotone: from rate 3 to 4"):
        bd_rate(RATES, PSNR, RATES, bumpy)
    with pytest.raises(dsc.InvalidArgumentError, match="two points at rate 2"):
        bd_rate(RATES, PSNR, [1, 2, 2, 3], [14, 15, 16, 17])
    with pytest.raises(dsc.InvalidArgumentError, match="positive and finite"):
        bd_rate(RATES, PSNR, RATES, np.append(PSNR[:-1], np.inf))
    with pytest.raises(dsc.InvalidArgumentError, match="one length"):
        bd_rate(RATES, PSNR[:-1], RATES, PSNR)
    far = bjontegaard(RATES, PSNR, RATES * 100, PSNR)  # same qualities, rates far apart: no BD-PSNR
    assert far.rate_percent == pytest.approx(9900) and far.psnr_db is None
    with pytest.raises(dsc.InvalidArgumentError, match="share no rate range"):
        bd_psnr(RATES, PSNR, RATES * 100, PSNR)


def _write_sweep(root, points_by_job):
    for i, points in enumerate(points_by_job):
        (root / str(i)).mkdir(parents=True)
        (root / str(i) / "metrics.json").write_text(json.dumps({"points": points}))


def _mnist(scheme, k, rate, mse, method=None, **extra):
    return {"source": "mnist", "method": method or scheme, "scheme": scheme, "num_decoders": k, "rate_bits": rate,
            "mse": mse, "num_candidates": 128, **extra}


def test_the_comparison_aggregate_writes_a_bd_rate_table(tmp_path):
    """A synthetic MNIST comparison: the baseline needs 25 % more bits than GLS at K = 2 and the
    same at K = 1; a codec has 3 points (no cubic), another does not overlap GLS's PSNR range,
    and an old-format codec point (no psnr_db / ssim columns) still aggregates."""
    mse = {r: 0.1 * 2 ** (-r / 3) for r in range(2, 8)}
    gls = [_mnist("gls", k, r, m / k) for k in (1, 2) for r, m in mse.items()]
    baseline = [_mnist("shared_randomness", 1, r, m) for r, m in mse.items()]
    baseline += [_mnist("shared_randomness", 2, 1.25 * r, m / 2) for r, m in mse.items()]
    jpeg = [_mnist("jpeg", 1, 1000.0 * q, 0.01 / q, "classical_codec", quality=q, psnr_db=20 + q, ssim=0.9)
            for q in (1, 2, 3)]
    webp = [_mnist("webp", 1, 500.0 * q, 1e-4 / q, "classical_codec", quality=q) for q in (1, 2, 3, 4)]
    _write_sweep(tmp_path, [gls + baseline, jpeg, webp])

    result = aggregate(tmp_path)
    assert result.bd_rate_path == tmp_path / "bd_rate.csv"
    rows = {(r["scheme"], int(r["num_decoders"])): r
            for r in csv.DictReader(io.StringIO(result.bd_rate_path.read_text()))}
    assert float(rows[("shared_randomness", 1)]["bd_rate_percent"]) == pytest.approx(0, abs=1e-9)
    assert float(rows[("shared_randomness", 2)]["bd_rate_percent"]) == pytest.approx(25.0, rel=1e-9)
    assert rows[("jpeg", 1)]["bd_rate_percent"] == "" and "test curve has 3 points" in rows[("jpeg", 1)]["note"]
    assert "share no quality range" in rows[("webp", 1)]["note"]
    assert rows[("webp", 2)]["note"] == "webp has no points at K=2"
    tables = result.tables_path.read_text()
    assert "**BD-rate against gls** (mnist; quality: PSNR of the mean best-of-K MSE" in tables
    assert "| scheme | K=1 | K=2 |" in tables
    assert "| shared_randomness | +0.0 % (+0.00 dB) | +25.0 % (" in tables
    assert "| jpeg | n/a: the test curve has 3 points | n/a: jpeg has no points at K=2 |" in tables
    assert "| jpeg | 1 | 1000.0 | 0.01000 | 21.00 | 0.9000 |" in tables  # a codec with the image metrics
    assert "| webp | 1 | 500.0 | 0.00010 |  |  |" in tables  # an old codec point: empty cells

    other = aggregate(tmp_path, anchor="shared_randomness")  # the anchor a config names
    rows = {(r["scheme"], int(r["num_decoders"])): r for r in csv.DictReader(io.StringIO(
        other.bd_rate_path.read_text()))}
    assert float(rows[("gls", 2)]["bd_rate_percent"]) == pytest.approx((1 / 1.25 - 1) * 100, rel=1e-9)
    assert "BD-rate against shared_randomness" in other.tables_path.read_text()
    missing = aggregate(tmp_path, anchor="nested_scalar")
    assert missing.bd_rate_path is None and "no curves of the anchor 'nested_scalar'" in \
        missing.tables_path.read_text()


def test_gaussian_curves_are_compared_on_minus_mse_db_and_check_bits_are_left_out():
    base = [{"source": "gaussian", "method": "gls", "scheme": "gls", "num_decoders": 1, "rate_bits": r,
             "mse_db": -3.0 * r, "distortion_db": -5.0 * r} for r in range(1, 7)]
    coarse = [{**p, "scheme": "nested_scalar", "method": "nested_scalar", "rate_bits": 2 * p["rate_bits"]}
              for p in base]
    checked = [{**p, "check_bits": 4, "mse_db": 0.0} for p in base]
    (row,) = bd_rate_rows(base + coarse + checked)
    assert row["scheme"] == "nested_scalar" and row["bd_rate_percent"] == pytest.approx(100.0)
    assert (row["overlap_low_db"], row["overlap_high_db"]) == (3.0, 18.0)  # -mse_db, not distortion_db
    assert bd_rate_rows(coarse) == []  # no anchor curves: no table


def test_the_multirun_callback_takes_the_anchor_the_config_names(tmp_path):
    from omegaconf import OmegaConf

    from dsc.report.sweep import AggregateOnMultirunEnd

    mse = {r: 0.1 * 2 ** (-r / 3) for r in range(2, 6)}
    _write_sweep(tmp_path, [[_mnist(s, 1, r * f, m) for r, m in mse.items()]
                            for s, f in (("gls", 1.0), ("shared_randomness", 2.0))])
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}, "bd_anchor": "shared_randomness"})
    AggregateOnMultirunEnd().on_multirun_end(config)
    (row,) = csv.DictReader(io.StringIO((tmp_path / "bd_rate.csv").read_text()))
    assert (row["anchor"], row["scheme"]) == ("shared_randomness", "gls")
    assert float(row["bd_rate_percent"]) == pytest.approx(-50.0)
