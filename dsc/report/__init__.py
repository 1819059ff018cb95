"""Reporting: what evaluation jobs measured, as tables, RD plots and Bjøntegaard deltas, and
the tracker they are logged to. Reads the jobs' points (``metrics.json``); the evaluation
layer below does not depend on it."""
