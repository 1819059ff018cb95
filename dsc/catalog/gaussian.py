"""The Gaussian source: A ~ N(0, I_d) (d = 1: the paper's scalar source), side information
T_k = A + N(0, noise_var I_d), coded with the closed-form model
(:class:`dsc.models.gaussian.GaussianModel`, scalar only) or a trained codec
(:class:`dsc.models.gaussian_mlp.GaussianMlpModel`, option ``ckpt``).

Options: ``s2`` (the closed-form model's test-channel variance), ``noise_var``, ``data_seed``
(which draws), ``ckpt`` (a checkpoint of ``model=gaussian_mlp``; its d is the source's), and the
decoder's own ``estimate`` (``pick``, ``shrink`` or ``bayes``, :mod:`dsc.estimates`; the
closed-form model only) with ``posterior_draws`` and ``calibration_trials``.

Files (the command line's ``--input`` and ``--side-info``): ``.npy`` arrays of floats, samples
of A or one decoder's T, one row per message: shape ``(n,)`` for the closed-form model, ``(n, d)``
for a codec of d components.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

from torch import Tensor

from dsc.catalog.files import read_floats
from dsc.coding import CounterRandomness
from dsc.errors import ConfigError, ShapeMismatchError
from dsc.estimates import estimate_named
from dsc.models.gaussian import GaussianModel
from dsc.models.gaussian_mlp import GaussianMlpModel
from dsc.paper import PAPER_GAUSSIAN_GLS_DB
from dsc.registry import CodecInputs, Source, register
from dsc.sources.gaussian import SIDE_INFO_ROW, SOURCE_ROW, GaussianSource

WYNER_ZIV = "wyner_ziv_bound"  # the schemes of the theory rows
NO_SIDE_INFO = "no_side_information_bound"


def learned_model(ckpt: str, noise_var: float) -> GaussianMlpModel:
    """The trained codec at ``ckpt``, refused when it was trained for another ``noise_var``."""
    from dsc.lit.gaussian_module import trained_codec  # loads Lightning: only when used

    return trained_codec(ckpt, noise_var)


def model(options: Mapping[str, Any]) -> GaussianModel | GaussianMlpModel:
    """The closed-form model with the decoder's ``estimate``, or the trained codec of option ``ckpt``."""
    if options["ckpt"]:
        if options["estimate"] != "pick":
            raise ConfigError(f"estimate={options['estimate']} needs the closed-form model; a trained codec (ckpt) "
                              "decodes with estimate=pick")
        return learned_model(str(options["ckpt"]), float(options["noise_var"]))
    estimate = estimate_named(options["estimate"], options["posterior_draws"], options["calibration_trials"],
                              GaussianSource(options["noise_var"]).sample)
    return GaussianModel(options["s2"], options["noise_var"], estimate=estimate)


def inputs(options: Mapping[str, Any], messages: Tensor, decoders: Tensor) -> CodecInputs:
    """A ``[B]`` (``[B, d]`` with a codec) and T ``[B, K', ...]`` of decoders ``decoders`` ``[K']``."""
    source, rng = GaussianSource(options["noise_var"]), CounterRandomness(options["data_seed"])
    origin = f"simulated Gaussian source (data seed {options['data_seed']})"
    coding = model(options).to(messages.device)
    if options["ckpt"]:
        draw = source.sample_vectors(rng, messages, None, coding.nets.dim, decoders=decoders)
        return CodecInputs(coding, draw.source, draw.side_info, f"{origin}, d = {coding.nets.dim}")
    draw = source.sample(rng, messages, decoders=decoders)
    return CodecInputs(coding, draw.source, draw.side_info, origin)


def read_rows(path: Path, options: Mapping[str, Any]) -> Tensor:
    """Samples of A (or one decoder's T) from a ``.npy`` of floats -> float64 ``[n]`` for the
    closed-form model (shape ``(n,)`` or ``(n, 1)``), ``[n, d]`` for a codec of d components
    (shape ``(n, d)``; ``(n,)`` when d = 1)."""
    values = read_floats(path)
    if not options["ckpt"]:
        if values.dim() == 2 and values.shape[1] == 1:
            values = values[:, 0]
        if values.dim() != 1:
            raise ShapeMismatchError(f"{path} holds an array of shape {tuple(values.shape)}; the closed-form Gaussian "
                                     "source codes scalars: shape (n,) or (n, 1)")
        return values
    dim = model(options).nets.dim
    if values.dim() == 1 and dim == 1:
        values = values[:, None]
    if values.dim() != 2 or values.shape[1] != dim:
        raise ShapeMismatchError(f"{path} holds an array of shape {tuple(values.shape)}; the codec at "
                                 f"{options['ckpt']} codes d = {dim} components: shape (n, {dim})")
    return values


def describe(options: Mapping[str, Any]) -> dict:
    """What a point needs for its bounds: the side information's noise and the dimension."""
    dim = learned_model(str(options["ckpt"]), float(options["noise_var"])).nets.dim if options["ckpt"] else 1
    return {"noise_var": float(options["noise_var"]), "dim": dim}


def squared_error(sources: Tensor, reconstructions: Tensor) -> Tensor:
    """Sources ``[B]`` and reconstructions ``[B, K]`` -> squared errors ``[B, K]``; vectors
    ``[B, d]`` and ``[B, K, d]`` -> the mean over the d components ``[B, K]``."""
    error = (sources[:, None].double() - reconstructions.double()) ** 2
    return error if error.dim() == 2 else error.mean(-1)


def wyner_ziv_rows(points: list[dict]) -> list[dict]:
    """Theory rows for every (rate, noise, d) among Gaussian points, per component at R / d bits
    each (i.i.d. components): the Wyner-Ziv bound D_WZ = var(A|T) 2^(-2R/d) and the bound
    without side information D = 2^(-2R/d)."""
    keys = sorted({(p["rate_bits"], p["noise_var"], p.get("dim", 1)) for p in points
                   if "rate_bits" in p and "noise_var" in p})
    rows = []
    for rate, noise_var, dim in keys:
        posterior_var = noise_var / (1 + noise_var)
        rows.append({
            "scheme": WYNER_ZIV, "rate_bits": rate, "noise_var": noise_var, "dim": dim,
            "mse_db": 10 * math.log10(posterior_var * 2.0 ** (-2 * rate / dim)),
        })
    for rate, dim in sorted({(rate, dim) for rate, _, dim in keys}):
        rows.append({"scheme": NO_SIDE_INFO, "rate_bits": rate, "dim": dim,
                     "mse_db": 10 * math.log10(2.0 ** (-2 * rate / dim))})
    return rows


GAUSSIAN = register(Source(
    name="gaussian",
    description="Gaussian source, K noisy side-information channels (paper section 5; d components with a codec)",
    stream_rows={SOURCE_ROW: "source A (counter c: component c)",
                 SIDE_INFO_ROW: "side-information noise (counter k d + c: decoder k, component c)"},
    inputs=inputs,
    distortion=squared_error,
    distortion_name="squared error (per component)",
    scale="db",
    num_candidates=2**12,
    options={"s2": 0.005, "noise_var": 0.5, "data_seed": 0, "ckpt": None, "estimate": "pick", "posterior_draws": 256,
             "calibration_trials": 20_000},
    location_options=("ckpt",),
    decoder_options=("estimate", "posterior_draws", "calibration_trials"),
    references={"paper Table 10 (GLS, mean per-trial dB, best of K)": PAPER_GAUSSIAN_GLS_DB},
    theory=wyner_ziv_rows,
    describe=describe,
    model=model,
    input_reader=read_rows,
    side_info_reader=read_rows,
))
