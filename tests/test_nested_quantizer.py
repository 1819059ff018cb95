"""The nested scalar quantiser: exact pieces against independent references, closed-form rate
behaviour, the Wyner-Ziv bound, and clear errors."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

import dsc
from dsc.baselines import NestedScalarQuantizer, truncated_normal_mean
from dsc.eval.gaussian_nested import NestedQuantizerRateDistortion
from dsc.eval.gaussian_point import gaussian_point

CPU = torch.device("cpu")
POSTERIOR_VAR = 0.5 / 1.5  # var(A | T) for the default side-information noise 0.5


@pytest.mark.parametrize("mean, var, low, high", [
    (0.0, 1.0, -0.5, 0.25), (1.0, 0.3, 1.2, 1.3), (0.0, 1.0, 5.0, 6.0), (0.0, 1.0, -31.0, -30.5),
    (2.0, 0.25, -10.0, -9.0), (0.0, 1.0, 8.0, 8.001),
])
def test_truncated_normal_mean_matches_scipy(mean, var, low, high):
    sd = math.sqrt(var)
    expected = stats.truncnorm.mean((low - mean) / sd, (high - mean) / sd, loc=mean, scale=sd)
    got = truncated_normal_mean(torch.tensor([mean], dtype=torch.float64), var,
                                torch.tensor([low], dtype=torch.float64), torch.tensor([high], dtype=torch.float64))
    assert low <= got.item() <= high
    assert got.item() == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_truncated_normal_mean_far_in_the_tails():
    """Beyond where the normal CDF underflows, the mean of a cell [c, c + w] far right of the mean
    tends to c + 1/c (Mills ratio: the exponential tail with rate c); and +-inf endpoints fall
    back to the nearest endpoint instead of NaN."""
    got = truncated_normal_mean(torch.zeros(2, dtype=torch.float64), 1.0,
                                torch.tensor([60.0, -81.0], dtype=torch.float64),
                                torch.tensor([61.0, -80.0], dtype=torch.float64))
    assert got.tolist() == pytest.approx([60.0 + 1 / 60.0, -80.0 - 1 / 80.0], rel=1e-6)
    infinite = truncated_normal_mean(torch.zeros(1, dtype=torch.float64), 1.0,
                                     torch.tensor([float("-inf")], dtype=torch.float64),
                                     torch.tensor([-float("inf")], dtype=torch.float64))
    assert not torch.isnan(infinite).any()


def test_decoder_picks_the_coset_member_nearest_its_estimate_by_enumeration():
    torch.manual_seed(0)
    quantizer = NestedScalarQuantizer(step=0.07, rate_bits=3)
    labels = torch.randint(0, 8, (500,))
    estimates = torch.randn(500, 3, dtype=torch.float64) * 3
    got = quantizer.decode(labels, estimates, POSTERIOR_VAR)
    members = labels[:, None, None] + 8 * torch.arange(-200, 201)[None, None, :]  # [B, 1, J]
    distance = (members * 0.07 - estimates[..., None]).abs()
    assert torch.equal(got.index, members.expand(-1, 3, -1).gather(2, distance.argmin(2, keepdim=True))[..., 0])
    assert torch.equal(torch.remainder(got.index, 8), labels[:, None].expand(-1, 3))
    cell = got.index.double() * 0.07
    assert ((got.reconstruction - cell).abs() <= 0.035 + 1e-12).all()  # inside the decoded cell


def test_round_trip_with_exact_side_information_recovers_every_cell():
    source = torch.randn(10_000, dtype=torch.float64)
    for rate in (1, 4, 16):
        quantizer = NestedScalarQuantizer(step=2.0**-rate, rate_bits=rate)
        labels = quantizer.encode(source)
        assert labels.min() >= 0 and labels.max() < 2**rate
        got = quantizer.decode(labels, source[:, None], 1e-6)
        assert torch.equal(got.index[:, 0], quantizer.quantize(source))
        assert ((got.reconstruction[:, 0] - source).abs() <= quantizer.step / 2 + 1e-12).all()


def _point(rate, k=1, **kwargs):
    settings = dict(num_decoders=k, rate_bits=rate, trials=200_000, selection_trials=20_000, progress=False)
    return NestedQuantizerRateDistortion(**{**settings, **kwargs}).run(0, CPU, None)[0]


def test_six_db_per_bit_at_high_rate_and_the_closed_form_granular_error():
    """With coset spacing fixed at 12 posterior sd, decoding errors have probability about
    2 Phi(-6) ~ 2e-9, so the MSE is the granular error step^2 / 12, which falls 6.02 dB per bit."""
    five, six = (_point(rate, spacings=[12.0]) for rate in (5, 6))
    step = 12 * math.sqrt(POSTERIOR_VAR) / 2**6
    assert six["step"] == pytest.approx(step)
    tolerance = 4.5 * math.hypot(five["mse_db_se"], six["mse_db_se"])
    assert five["mse_db"] - six["mse_db"] == pytest.approx(20 * math.log10(2), abs=0.15 + tolerance)
    assert six["mse_db"] == pytest.approx(10 * math.log10(step**2 / 12), abs=0.2 + 4.5 * six["mse_db_se"])
    assert six["match_prob"] == 1.0


@pytest.mark.parametrize("rate", [1, 2, 3, 4])
def test_never_below_the_wyner_ziv_bound_per_decoder(rate):
    """Each decoder alone is a Wyner-Ziv decoder, so its MSE (and the average over decoders)
    cannot beat var(A|T) 2^(-2R); the best-of-K oracle with K = 1 is one decoder."""
    one, four = _point(rate), _point(rate, k=4)
    bound = 10 * math.log10(POSTERIOR_VAR * 2.0 ** (-2 * rate))
    assert one["wyner_ziv_mse_db"] == pytest.approx(bound)
    assert one["mse_db"] > bound and four["per_decoder_mse_db"] > bound
    assert four["mse_db"] <= one["mse_db"] + 4.5 * math.hypot(one["mse_db_se"], four["mse_db_se"])


def test_selection_by_the_papers_metric_is_a_separate_curve():
    paper = _point(2, selection_metric="distortion_db", trials=20_000)
    mse = _point(2, trials=20_000)
    assert paper["scheme"] == "nested_scalar_paper_metric" and mse["scheme"] == "nested_scalar"
    assert paper["distortion_db"] <= mse["distortion_db"] + 4.5 * math.hypot(paper["distortion_db_se"],
                                                                               mse["distortion_db_se"])


def test_scheme_picks_the_job_and_bad_input_is_a_clear_error():
    job = gaussian_point("nested_scalar", num_decoders=2, rate_bits=3, nested={"trials": 10}, num_candidates=64)
    assert isinstance(job, NestedQuantizerRateDistortion) and job.trials == 10
    assert type(gaussian_point("gls", 2, 3, num_candidates=64)).__name__ == "GaussianRateDistortion"
    with pytest.raises(dsc.ConfigError, match="nested_scalar"):
        gaussian_point("jpeg", 2, 3)
    with pytest.raises(dsc.DscError, match="step"):
        NestedScalarQuantizer(step=0.0, rate_bits=2)
    with pytest.raises(dsc.DscError, match="rate_bits"):
        NestedScalarQuantizer(step=0.1, rate_bits=0)
    quantizer = NestedScalarQuantizer(step=0.1, rate_bits=2)
    with pytest.raises(dsc.DscError, match=r"\[0, 4\)"):
        quantizer.decode(torch.tensor([4]), torch.zeros(1, 2), 0.3)
    with pytest.raises(dsc.ShapeMismatchError):
        quantizer.decode(torch.tensor([1, 2]), torch.zeros(3, 2), 0.3)
    with pytest.raises(dsc.ConfigError, match="selection_metric"):
        NestedQuantizerRateDistortion(selection_metric="psnr")
    with pytest.raises(dsc.ConfigError, match="spacings"):
        NestedQuantizerRateDistortion(spacings=[0.0])


def test_compare_gaussian_experiment_sweeps_every_scheme_in_one_multirun():

    from hydra import compose, initialize_config_module

    with initialize_config_module("dsc.conf", version_base="1.3"):
        cfg = compose(config_name="evaluate", overrides=["experiment=compare_gaussian"], return_hydra_config=True)
    assert cfg.hydra.mode.name == "MULTIRUN"
    schemes = cfg.hydra.sweeper.params.scheme.split(",")
    assert schemes == ["gls", "gls_mse", "shared_randomness", "shared_randomness_mse", "nested_scalar",
                       "nested_scalar_paper_metric"]
    assert max(cfg.job.test_channel_variances) >= 0.3  # the grid reaches the coarse s2 the MSE prefers
    for scheme in schemes:  # every swept scheme builds a job, chosen by the metric its name says
        job = gaussian_point(scheme, num_decoders=2, rate_bits=2, num_candidates=64, nested={"trials": 10})
        label = getattr(job, "scheme_label", job.scheme)
        assert label == scheme
        assert job.selection_metric == ("mse_db" if scheme.endswith("_mse") or scheme == "nested_scalar"
                                        else "distortion_db")
