"""Evaluation jobs: real encode/decode runs, their metrics and figures."""
