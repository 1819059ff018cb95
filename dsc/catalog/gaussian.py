"""The paper's scalar Gaussian source: A ~ N(0, 1), side information T_k = A + N(0, noise_var),
coded with the closed-form model (:class:`dsc.models.gaussian.GaussianModel`).

Options: ``s2`` (test-channel variance), ``noise_var``, ``data_seed`` (which draws).
"""

from __future__ import annotations

from typing import Any, Mapping

from torch import Tensor

from dsc.coding import CounterRandomness
from dsc.eval.aggregate import wyner_ziv_rows
from dsc.eval.reference import PAPER_GAUSSIAN_GLS_DB
from dsc.models.gaussian import GaussianModel
from dsc.registry import CodecInputs, Source, register
from dsc.sources.gaussian import SIDE_INFO_ROW, SOURCE_ROW, GaussianSource


def inputs(options: Mapping[str, Any], messages: Tensor, num_decoders: int) -> CodecInputs:
    model = GaussianModel(options["s2"], options["noise_var"])
    draw = GaussianSource(options["noise_var"]).sample(CounterRandomness(options["data_seed"]), messages, num_decoders)
    return CodecInputs(model, draw.source, draw.side_info, f"simulated Gaussian source (data seed {options['data_seed']})")


def squared_error(sources: Tensor, reconstructions: Tensor) -> Tensor:
    """Sources ``[B]``, reconstructions ``[B, K]`` -> squared errors ``[B, K]``."""
    return (sources[:, None].double() - reconstructions.double()) ** 2


GAUSSIAN = register(Source(
    name="gaussian",
    description="scalar Gaussian source, K noisy side-information channels (paper section 5)",
    stream_rows={SOURCE_ROW: "source A (counter 0)", SIDE_INFO_ROW: "side-information noise Z_k (counter k)"},
    inputs=inputs,
    distortion=squared_error,
    distortion_name="squared error",
    scale="db",
    num_candidates=2**12,
    options={"s2": 0.005, "noise_var": 0.5, "data_seed": 0},
    references={"paper Table 10 (GLS, mean per-trial dB, best of K)": PAPER_GAUSSIAN_GLS_DB},
    theory=wyner_ziv_rows,
))
