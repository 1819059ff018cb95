"""Repository tools: the docs tables rendered from results/, the GPU checks."""
