"""The coding core: shared randomness, GLS couplings, the importance-sampled coder, bounds.

Pure torch: no nn.Module, no Lightning, no Hydra.
"""

from dsc.coding.bounds import (
    conditional_matching_bound,
    daliri_bound,
    gumbel_coupling_match_prob,
    list_matching_bound,
    matching_bound_given_sample,
    prop4_error_bound,
    total_variation,
)
from dsc.coding.discrete import (
    CouplingSample,
    GlsSample,
    conditional_gls,
    gls,
    gumbel_coupling,
    gumbel_max_sample,
    race_argmin,
    shared_exponentials,
)
from dsc.coding.importance import (
    CandidatePrior,
    Decoded,
    Encoded,
    GaussianPrior,
    ImportanceCoder,
    Scheme,
    UnboundedWeightWarning,
)
from dsc.coding.point import CodingPoint
from dsc.coding.randomness import CounterRandomness
from dsc.coding.streams import Purpose, stream_id
from dsc.coding.weights import GaussianLogWeight

__all__ = [
    "CandidatePrior",
    "CodingPoint",
    "CounterRandomness",
    "CouplingSample",
    "Decoded",
    "Encoded",
    "GaussianLogWeight",
    "GaussianPrior",
    "GlsSample",
    "ImportanceCoder",
    "Purpose",
    "Scheme",
    "UnboundedWeightWarning",
    "conditional_gls",
    "conditional_matching_bound",
    "daliri_bound",
    "gls",
    "gumbel_coupling",
    "gumbel_coupling_match_prob",
    "gumbel_max_sample",
    "list_matching_bound",
    "matching_bound_given_sample",
    "prop4_error_bound",
    "race_argmin",
    "shared_exponentials",
    "stream_id",
    "total_variation",
]
