"""Evaluate with Hydra: ``python evaluate.py [experiment=...] [key=value ...]``; the same as the
installed command ``dsc-evaluate`` (:func:`dsc.apps.evaluate`, configs in ``dsc/conf``).

Each run writes metrics.json (resolved config, environment, points) and its figures into the
Hydra output directory. In a multirun a failing job is recorded in its metrics.json and the
other jobs still run; the aggregation lists the failures and the sweep then exits with an error.
"""

from dsc.apps import evaluate

if __name__ == "__main__":
    evaluate()
