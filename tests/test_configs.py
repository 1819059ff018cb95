"""Every Hydra config shipped in dsc/conf composes and resolves: each experiment under the entry point it
names, each option of every config group under the entry point that reads it. A config file
added to a group without a place here fails the coverage test."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf, open_dict

import dsc.conf

CONF = Path(dsc.conf.__file__).parent  # the package's configs, composed as pkg://dsc.conf


def experiment_entry(name: str) -> str:
    """The entry point the experiment file names (``app: train`` or ``app: evaluate``)."""
    return OmegaConf.load(CONF / "experiment" / f"{name}.yaml")["app"]


def group_cases() -> list[tuple[str, str, list[str]]]:
    """(entry point, config file, overrides) for every option of every group but experiment."""
    cases = []
    for group in ("logger", "model", "trainer", "paths", "callbacks", "debug"):
        for path in sorted((CONF / group).glob("*.yaml")):
            extra = ["source=gaussian"] if (group, path.stem) == ("model", "gaussian_mlp") else []
            if group == "model" and (CONF / "source" / path.name).is_file():  # a source's codec: with its source
                extra = [f"source={path.stem}"]
            cases.append(("train", f"{group}/{path.name}", [f"{group}={path.stem}", *extra]))
    for path in sorted((CONF / "logger").glob("*.yaml")):  # evaluate.py logs to the same trackers
        cases.append(("evaluate", f"logger/{path.name}", [f"logger={path.stem}"]))
    for path in sorted((CONF / "source").glob("*.yaml")):  # source=NAME also selects data/NAME and job/NAME
        cases.append(("evaluate", f"source/{path.name}", [f"source={path.stem}"]))
        if path.stem != "none":  # a source that can be trained on
            model = ["model=gaussian_mlp"] if path.stem == "gaussian" else []
            cases.append(("train", f"source/{path.name}", [f"source={path.stem}", *model]))
    for group, entry in (("data", "train"), ("job", "evaluate")):  # selected by source=NAME
        for path in sorted((CONF / group).glob("*.yaml")):
            if path.stem == "none":
                cases.append(("evaluate", f"{group}/{path.name}", ["source=none"]))
            elif (CONF / "source" / path.name).exists():
                cases.append((entry, f"{group}/{path.name}", [f"source={path.stem}"]))
            else:  # a job by role (image_point), which the image sources' jobs extend
                cases.append((entry, f"{group}/{path.name}", ["source=mnist", f"{group}={path.stem}"]))
    for path in sorted((CONF / "codec").glob("*.yaml")):
        cases.append(("evaluate", f"codec/{path.name}",
                      ["experiment=compare_mnist", f"+codec={path.stem}"]))
    return cases


EXPERIMENTS = [(experiment_entry(p.stem), f"experiment/{p.name}", [f"experiment={p.stem}"])
               for p in sorted((CONF / "experiment").glob("*.yaml"))]
CASES = EXPERIMENTS + group_cases()


def resolved(entry: str, overrides: list[str]) -> dict:
    """The composed config of ``entry`` with ``overrides``, every interpolation resolved (the
    ``hydra`` node only serves to resolve ``${hydra:...}``)."""
    with initialize_config_module("dsc.conf", version_base="1.3"):
        cfg = compose(config_name=entry, overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = "outputs/composed"
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return OmegaConf.to_container(cfg, resolve=True)


@pytest.mark.parametrize("entry, name, overrides", CASES, ids=[f"{e}:{n}" for e, n, _ in CASES])
def test_config_composes_and_resolves(entry, name, overrides):
    config = resolved(entry, overrides)
    if entry == "train":
        if config["source"]:  # source=none trains nothing
            assert {"model", "data", "trainer"} <= set(config) and "_target_" in config["model"]
        assert "job" not in config  # configs by role: training never composes an evaluation job
    elif config.get("job"):  # an evaluation job (source=none and compare_mnist leave it to another group)
        assert "_target_" in config["job"]


def test_every_config_file_is_covered():
    shipped = {str(p.relative_to(CONF)) for p in CONF.glob("*/*.yaml") if p.parent.name != "hydra"}
    assert shipped == {name for _, name, _ in CASES}


@pytest.mark.parametrize("entry", ["train", "evaluate"])
def test_runs_are_filed_under_the_app_name(entry):
    """outputs/<entry>/... whichever command runs it (dsc-train, python train.py ...)."""
    with initialize_config_module("dsc.conf", version_base="1.3"):
        cfg = compose(config_name=entry, return_hydra_config=True)
    assert cfg.hydra.run.dir.startswith(f"outputs/{entry}/") and cfg.hydra.sweep.dir.startswith(f"multirun/{entry}/")


def test_a_broken_interpolation_is_caught(tmp_path):
    """The resolution above is strict: a reference to a missing key raises."""
    cfg = OmegaConf.create({"model": {"crop_size": "${source.crop_size}"}})
    with pytest.raises(Exception, match="source"):
        OmegaConf.to_container(cfg, resolve=True)


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONF / "experiment").glob("*.yaml")))
def test_every_experiment_names_its_entry_point_and_its_usage_line_agrees(name):
    app = experiment_entry(name)
    text = (CONF / "experiment" / f"{name}.yaml").read_text()
    assert app in ("train", "evaluate")
    assert f"{app}.py" in text and f"{'evaluate' if app == 'train' else 'train'}.py experiment={name}" not in text


def test_an_experiment_under_the_wrong_entry_point_is_a_clear_error():
    """train.py experiment=gaussian_rd used to train the MNIST codec silently, and evaluate.py
    experiment=mnist_train_demo failed with Hydra's "Could not override 'logger'"."""
    import subprocess
    import sys

    root = CONF.parent.parent
    for script, experiment, right in (("train.py", "gaussian_rd", "evaluate.py"),
                                      ("evaluate.py", "mnist_train_demo", "train.py")):
        run = subprocess.run([sys.executable, script, f"experiment={experiment}"], cwd=root, capture_output=True,
                             text=True, timeout=120)
        assert run.returncode == 2, run.stderr[-2000:]
        assert f"run it with `python {right} experiment={experiment}`" in run.stderr
        assert "Traceback" not in run.stderr


@pytest.mark.parametrize("source", ["gaussian", "mnist"])
def test_a_source_selects_its_data_and_its_job(source):
    """source=NAME picks data/NAME for training and job/NAME for evaluation; another source's
    keys (the Gaussian trials and s2 grid) are in no run's root config."""
    train = resolved("train", [f"source={source}"])
    evaluate = resolved("evaluate", [f"source={source}"])
    assert train["source"]["name"] == evaluate["source"]["name"] == source
    assert train["data"]["_target_"].endswith(f"{source.capitalize()}DataModule")
    assert train["model"]["_target_"].endswith({"gaussian": "GaussianCodecModule", "mnist": "ImageCodecModule"}[source])
    assert evaluate["job"]["_target_"].endswith({"gaussian": "gaussian_point", "mnist": "ImageRateDistortion"}[source])
    for config in (train, evaluate):
        assert not {"trials", "selection_trials", "repetitions", "test_channel_variances"} & set(config)
    assert ("trials" in evaluate["job"]) == (source == "gaussian")


@pytest.mark.parametrize("overrides", [["source=none"], ["experiment=compare_mnist", "hydra.mode=RUN"]])
def test_a_config_without_a_job_is_a_clear_error(tmp_path, overrides):
    from dsc.errors import ConfigError
    from dsc.eval.runner import run_evaluation

    with initialize_config_module("dsc.conf", version_base="1.3"):
        cfg = compose(config_name="evaluate", overrides=overrides + [f"paths.output_dir={tmp_path}", "device=cpu"])
    with pytest.raises(ConfigError, match="nothing to run"):
        run_evaluation(cfg)
    assert not (tmp_path / "metrics.json").exists()
