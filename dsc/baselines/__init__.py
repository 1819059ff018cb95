"""Baseline codecs that GLS is compared against."""

from dsc.baselines.nested_quantizer import NestedDecoded, NestedScalarQuantizer, truncated_normal_mean

__all__ = ["NestedDecoded", "NestedScalarQuantizer", "truncated_normal_mean"]
