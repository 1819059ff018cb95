"""Multi-draft speculative sampling with GLS and its baselines (see :mod:`.verifiers`)."""

from dsc.speculative.distributions import probabilities
from dsc.speculative.generate import Generation, generate
from dsc.speculative.noise import SharedNoise
from dsc.speculative.verifiers import METHODS, Verified, verify_block, verify_position

__all__ = ["METHODS", "Generation", "SharedNoise", "Verified", "generate", "probabilities", "verify_block",
           "verify_position"]
