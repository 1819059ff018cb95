"""Which job evaluates a Gaussian RD point: chosen by ``scheme``, so that one sweep over
``scheme=gls,shared_randomness,nested_scalar`` puts GLS beside its baselines."""

from __future__ import annotations

from dsc.coding import Scheme
from dsc.errors import ConfigError
from dsc.eval.gaussian import GaussianRateDistortion
from dsc.eval.gaussian_nested import SCHEME as NESTED
from dsc.eval.gaussian_nested import NestedQuantizerRateDistortion
from dsc.eval.source_point import SourceRateDistortion

PAPER_NUM_CANDIDATES = 2**15  # the paper's N (Table 10)
NESTED_PAPER_METRIC = f"{NESTED}_paper_metric"  # the quantiser's step chosen by the paper's metric
CODER_SCHEMES = tuple(s.value for s in Scheme)
MSE_SELECTED = tuple(f"{s}_mse" for s in CODER_SCHEMES)  # s2 chosen by mse_db instead of the paper's metric
SCHEMES = CODER_SCHEMES + MSE_SELECTED + (NESTED, NESTED_PAPER_METRIC)


def gaussian_point(scheme: str, num_decoders: int, rate_bits: int, noise_var: float = 0.5,
                   nested: dict | None = None, progress: bool = True, workers: int = 1,
                   ckpt_path: str | None = None, **coder_settings):
    """``scheme`` gls or shared_randomness: :class:`GaussianRateDistortion` with
    ``coder_settings`` (N, trials, s2 grid, ...), s2 chosen by the paper's metric;
    ``gls_mse`` or ``shared_randomness_mse``: the same with s2 chosen by ``mse_db``; ``nested_scalar``:
    :class:`NestedQuantizerRateDistortion` with the settings in ``nested`` (step chosen by
    MSE; ``nested_scalar_paper_metric``: by the paper's mean per-trial dB), which is cheap and
    runs in one process whatever ``workers`` says. ``num_candidates`` None: the paper's 2^15
    (a learned codec: the source's usual N). With ``ckpt_path`` (gls or shared_randomness):
    the learned codec of that checkpoint on ``trials`` messages (:class:`SourceRateDistortion`)."""
    estimate = coder_settings.get("estimate", "pick")
    if estimate != "pick" and (ckpt_path is not None or scheme in (NESTED, NESTED_PAPER_METRIC)):
        what = f"{scheme!r}" + (" with ckpt_path" if ckpt_path is not None else "")
        raise ConfigError(f"estimate={estimate} refines the picks of the closed-form model (scheme gls or "
                          f"shared_randomness without ckpt_path); {what} decodes its own way: use estimate=pick")
    if ckpt_path is not None:
        if scheme not in CODER_SCHEMES:
            raise ConfigError(f"ckpt_path evaluates a learned codec with scheme {' or '.join(CODER_SCHEMES)}; "
                              f"got scheme {scheme!r} (its operating point is the checkpoint's beta)")
        return SourceRateDistortion(
            source="gaussian", options={"ckpt": str(ckpt_path), "noise_var": noise_var}, scheme=scheme,
            num_decoders=num_decoders, rate_bits=rate_bits, num_candidates=coder_settings.get("num_candidates"),
            check_bits=coder_settings.get("check_bits", 0), messages=coder_settings.get("trials"), progress=progress)
    if scheme in (NESTED, NESTED_PAPER_METRIC):
        settings = dict(nested or {})
        if scheme == NESTED_PAPER_METRIC:
            settings["selection_metric"] = "distortion_db"
        return NestedQuantizerRateDistortion(num_decoders=num_decoders, rate_bits=rate_bits, noise_var=noise_var,
                                             progress=progress, **settings)
    if scheme not in SCHEMES:
        raise ConfigError(f"scheme must be one of {', '.join(SCHEMES)}; got {scheme!r}")
    if scheme in MSE_SELECTED:
        scheme, coder_settings = scheme.removesuffix("_mse"), {**coder_settings, "select_by": "mse_db"}
    if coder_settings.get("num_candidates") is None:  # the paper's N
        coder_settings = {**coder_settings, "num_candidates": PAPER_NUM_CANDIDATES}
    return GaussianRateDistortion(scheme=scheme, num_decoders=num_decoders, rate_bits=rate_bits,
                                  noise_var=noise_var, progress=progress, workers=workers, **coder_settings)
