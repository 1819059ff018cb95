"""Models: the analytic Gaussian model and (later) learned networks."""
