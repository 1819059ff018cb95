"""The Hydra applications ``dsc-train`` and ``dsc-evaluate`` (in a checkout also ``python
train.py`` / ``python evaluate.py``), composed from the configs shipped in :mod:`dsc.conf`.

Both take Hydra's command line: overrides (``experiment=gaussian_demo model.beta=0.15``),
``-m`` sweeps, ``--cfg job``. Run and sweep directories (``outputs/<app>/<time>_<random>``,
``multirun/<app>/<time>_<random>``) lie under the working directory. An error dsc raises on
purpose (:class:`dsc.DscError`) and a configuration Hydra cannot compose are printed as one
``error: ...`` line with exit status 2; ``HYDRA_FULL_ERROR=1`` shows the traceback instead.
Ctrl-C prints one line and exits with status 130. ``--config-dir DIR`` adds your own
configs to the shipped ones (``DIR/experiment/mine.yaml`` is then ``experiment=mine``).

``source=NAME`` also selects a source of one's own, registered by a module that
``imports=[MODULE]`` names (or by an installed package's entry point): its record's configs
(:meth:`dsc.registry.Source.configs`) are stored in Hydra's ConfigStore before Hydra composes
(:func:`register_source_configs`), as ``source/NAME``, ``data/NAME``, ``model/NAME`` and
``job/NAME``.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import Callable, Sequence

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from dsc.errors import ConfigError, DscError
from dsc.optional import require
from dsc.rundir import register_resolvers

register_resolvers()  # ${run_id:} of the run directories
FULL_ERROR = "HYDRA_FULL_ERROR"

# hydra/launcher=NAME -> (the plugin module, its distribution), all in the ``sweep`` extra
LAUNCHERS = {"joblib": ("hydra_plugins.hydra_joblib_launcher", "hydra-joblib-launcher"),
             "submitit_local": ("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher"),
             "submitit_slurm": ("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher")}


def check_launcher(argv: Sequence[str]) -> None:
    """A MissingDependencyError naming the ``sweep`` extra when ``argv`` picks a launcher
    (``hydra/launcher=NAME``) whose plugin is not installed (Hydra itself would only say that
    no such option exists)."""
    for arg in argv:
        key, _, name = arg.partition("=")
        if key.lstrip("+") == "hydra/launcher" and name in LAUNCHERS:
            module, package = LAUNCHERS[name]
            require(module, "sweep", package=package, needed_by=arg)


CONF = Path(__file__).resolve().parent / "conf"
APPS = ("train", "evaluate")


def check_experiment(app: str, argv: Sequence[str]) -> None:
    """A ConfigError when ``argv`` picks a shipped experiment (``experiment=NAME``, also in a
    sweep's comma list) that the other entry point runs: each experiment file names its ``app``."""
    for arg in argv:
        key, _, value = arg.partition("=")
        if key.lstrip("+~") != "experiment" or not value:
            continue
        for name in value.split(","):
            path = CONF / "experiment" / f"{name.strip()}.yaml"
            owner = OmegaConf.load(path).get("app") if path.is_file() else None
            if owner in APPS and owner != app:
                raise ConfigError(f"experiment={name} is a {'training' if owner == 'train' else 'evaluation'} "
                                  f"experiment: run it with `python {owner}.py experiment={name}` (installed: "
                                  f"dsc-{owner}), not {app}.py")


def register_source_configs(argv: Sequence[str]) -> None:
    """Import the modules of an ``imports=[...]`` override in ``argv`` and store, for every
    ``source=NAME`` there (also each of a sweep's comma list) without a ``source/NAME.yaml``
    among the shipped configs or a ``--config-dir``, the registered source's configs in Hydra's
    ConfigStore (``GROUP/NAME`` for each group of :meth:`dsc.registry.Source.configs`). An
    unknown source is a ConfigError listing the registered ones."""
    modules, names = _source_overrides(argv)
    folders = [CONF, *_config_dirs(argv)]
    names = [name for name in names if not any((folder / "source" / f"{name}.yaml").is_file() for folder in folders)]
    if not modules and not names:
        return  # the registry (and torch) load only when a source of one's own is asked for
    from hydra.core.config_store import ConfigStore

    from dsc.registry import get_source, import_sources

    import_sources(modules, "imports")
    for name in names:
        for group, node in get_source(name).configs().items():
            try:
                ConfigStore.instance().store(group=group, name=name, node=node, package=group)
            except OmegaConfBaseException as error:
                raise ConfigError(f"source {name!r}: its {group} config cannot be a Hydra config: {error}") from None


def _source_overrides(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """The modules that ``imports=`` overrides in ``argv`` name and the names ``source=`` ones
    choose (a sweep's choices each); other sweeps (glob, range) are left to Hydra."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ValueType

    modules: list[str] = []
    names: list[str] = []
    for arg in argv:
        key, _, value = arg.partition("=")
        key = key.lstrip("+")
        if key not in ("imports", "source") or not value:
            continue
        override = OverridesParser.create().parse_override(arg)
        if override.value_type in (ValueType.CHOICE_SWEEP, ValueType.SIMPLE_CHOICE_SWEEP):
            values = list(override.sweep_iterator())
        elif override.is_sweep_override():
            continue
        else:
            values = [override.value()]
        for value in values:
            if key == "source" and isinstance(value, str):
                names.append(value)
            elif key == "imports" and value:
                modules += [str(module) for module in value] if isinstance(value, list) else [str(value)]
    return modules, names


def _config_dirs(argv: Sequence[str]) -> list[Path]:
    """The folders that ``--config-dir DIR`` (``-cd DIR``, ``--config-dir=DIR``) adds."""
    folders = [Path(arg.partition("=")[2]) for arg in argv if arg.startswith("--config-dir=")]
    return folders + [Path(argv[i + 1]) for i, arg in enumerate(argv[:-1]) if arg in ("--config-dir", "-cd")]


def _launch(app: Callable[[], None], name: str) -> None:
    """Run a Hydra app; errors as described in the module docstring. Hydra itself prints an
    exception's traceback unless HYDRA_FULL_ERROR is set, so it is set for the app's duration
    and the exception is reported here."""
    show_traceback = os.environ.get(FULL_ERROR) == "1"
    os.environ[FULL_ERROR] = "1"
    try:
        check_launcher(sys.argv[1:])
        check_experiment(name, sys.argv[1:])
        register_source_configs(sys.argv[1:])
        app()
    except (DscError, HydraException, OmegaConfBaseException) as error:
        if show_traceback:
            raise
        sys.stderr.write(f"error: {_message(error)}\n")
        sys.exit(2)
    except KeyboardInterrupt:
        if show_traceback:
            raise
        sys.stderr.write("interrupted (Ctrl-C): files written so far are complete; rerun the same command to go on "
                         "(finished evaluation jobs are skipped; training resumes with ckpt_path=<run>/checkpoints/"
                         "last.ckpt)\n")
        sys.exit(130)
    except Exception:
        traceback.print_exc()  # a bug, not bad input: the traceback is what helps
        sys.exit(1)
    finally:
        if not show_traceback:
            os.environ.pop(FULL_ERROR, None)


def _message(error: Exception) -> str:
    """What the user reads: dsc's own message; for Hydra's and OmegaConf's, theirs and its cause's."""
    text = str(error)
    cause = error.__cause__
    if not isinstance(error, DscError) and isinstance(cause, OmegaConfBaseException) and str(cause) not in text:
        text += f"\n{cause}"
    return f"{text}\n(set {FULL_ERROR}=1 for the traceback)" if not isinstance(error, DscError) else text


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def _train(cfg: DictConfig) -> None:
    from dsc.lit.train import run_training  # torch and Lightning load only for a run, not for --help or --cfg

    run_training(cfg)


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def _evaluate(cfg: DictConfig) -> None:
    from dsc.eval.runner import run_evaluation
    from dsc.report.job import write_job_report

    # in a sweep a failing job is recorded and the others still run (the sweep fails at the end);
    # reporting sits above evaluation: the job computes, write_job_report writes its tables and plots
    run_evaluation(cfg, keep_going=HydraConfig.get().mode == RunMode.MULTIRUN, report=write_job_report)


def train() -> None:
    """``dsc-train``: fit a model (:func:`dsc.lit.train.run_training`); writes run_config.json,
    checkpoints/last.ckpt and best.ckpt and the logger's files into the run directory."""
    _launch(_train, "train")


def evaluate() -> None:
    """``dsc-evaluate``: RD points and figures (:func:`dsc.eval.runner.run_evaluation`) with a
    metrics.json per run, and the job's report (:func:`dsc.report.job.write_job_report`); in a
    sweep a failing job is recorded, the others still run and the sweep exits with an error at
    the end."""
    _launch(_evaluate, "evaluate")
