"""Practical decoder selection (check bits and fallbacks), scored once for every job: the any-pass
output by hand, and no job reports practical figures for a point coded without check bits."""

from __future__ import annotations

import pytest
import torch

from dsc.eval.gaussian import GaussianRateDistortion
from dsc.eval.gaussian_nested import NestedQuantizerRateDistortion
from dsc.eval.image_point import ImageRateDistortion
from dsc.eval.image_protocol import ImageProtocol
from dsc.eval.outcome import PointOutcome, any_pass
from dsc.eval.source_point import SourceRateDistortion
from dsc.eval.source_protocol import SourceProtocol

CPU = torch.device("cpu")
PRACTICAL = ("practical_", "per_decoder_practical_", "accept_rate", "false_accept_rate")


def test_any_pass_takes_the_first_accepted_decoder_else_decoder_0_s_fallback():
    errors = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
    fallback = errors * 10
    accepted = torch.tensor([[False, True, True], [True, False, True], [False, False, False]])
    system, outputs = any_pass(errors, fallback, accepted)
    assert outputs.tolist() == [[10.0, 2.0, 3.0], [4.0, 50.0, 6.0], [70.0, 80.0, 90.0]]
    assert system.tolist() == [2.0, 4.0, 70.0]


def test_the_outcome_summary_scores_practical_selection_with_any_pass():
    outcome = PointOutcome(mse=torch.tensor([[1.0, 2.0], [3.0, 4.0]]), match=torch.tensor([[True, False],
                                                                                            [False, False]]),
                           accepted=torch.tensor([[False, True], [True, False]]),
                           fallback_mse=torch.tensor([[5.0, 6.0], [7.0, 8.0]]))
    summary = outcome.summary()
    # outputs (5, 2) and (3, 8); any-pass 2 and 3; the wrong picks (0, 1), (1, 0), (1, 1): two accepted
    assert summary["practical_mse"] == 2.5 and summary["per_decoder_practical_mse"] == 4.5
    assert summary["accept_rate"] == 0.5 and summary["false_accept_rate"] == pytest.approx(2 / 3)


@pytest.fixture(scope="module")
def checkpoint(tiny_codec):
    return str(tiny_codec())


def _jobs(c: int, ckpt: str) -> dict:
    """Every job that codes a K x rate point, at ``c`` check bits where it takes them."""
    mnist = dict(num_decoders=2, rate_bits=2, num_candidates=16, batch_size=20, progress=False)
    jobs = {
        "gaussian": GaussianRateDistortion(num_decoders=2, rate_bits=2, num_candidates=64, trials=200,
                                           test_channel_variances=[0.005], check_bits=c, progress=False),
        "source_point": SourceRateDistortion("gaussian", {"s2": 0.005}, num_decoders=2, rate_bits=2,
                                             num_candidates=64, check_bits=c, messages=100, progress=False),
        "source_protocol": SourceProtocol("gaussian", grid={"s2": [0.01, 0.005]}, num_decoders=[2], rate_bits=[1],
                                          num_candidates=64, check_bits=c, messages=100, selection_messages=50,
                                          progress=False),
        "mnist": ImageRateDistortion(ckpt, limit=40, check_bits=c, **mnist),
        "mnist_source_point": SourceRateDistortion("mnist", {"ckpt": ckpt}, messages=40, check_bits=c, **mnist),
    }
    if not c:  # jobs without check bits at all
        jobs["mnist_protocol"] = ImageProtocol([ckpt], num_candidates=[16], num_decoders=[2], rate_bits=[2],
                                                    selection_limit=20, limit=20, progress=False)
        jobs["nested_scalar"] = NestedQuantizerRateDistortion(num_decoders=2, rate_bits=2, trials=200,
                                                              selection_trials=100, spacings=[1.0, 2.0],
                                                              progress=False)
    return jobs


def test_no_job_reports_practical_figures_without_check_bits(checkpoint, tmp_path):
    for name, job in _jobs(0, checkpoint).items():
        for point in job.run(0, CPU, tmp_path / name):
            assert [key for key in point if key.startswith(PRACTICAL)] == [], name
    for name, job in _jobs(2, checkpoint).items():
        for point in job.run(0, CPU, tmp_path / f"{name}_checked"):
            assert point["check_bits"] == 2 and point["total_rate_bits"] == point["rate_bits"] + 2, name
            assert {"practical_mse_db" if "practical_mse_db" in point else "practical_mse", "accept_rate",
                    "false_accept_rate"} <= set(point), name
