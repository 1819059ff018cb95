"""The Hydra configs of dsc (``pkg://dsc.conf``): primary configs ``train`` and ``evaluate`` and
their groups, shipped inside the package so that ``dsc-train`` and ``dsc-evaluate`` run from any
installation and any working directory."""

from dsc.rundir import register_resolvers

register_resolvers()  # ${run_id:} in hydra/default.yaml, wherever these configs are composed
