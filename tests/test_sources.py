"""The source registry: the docs' walk-through runs as written (a source added from outside
dsc goes through bitstreams, the generic job and the aggregator, and from the command line is
trained, evaluated, swept and coded), built-in sources dispatch the same way, and bad
registrations are clear errors."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import dsc
from dsc import pipeline
from dsc.cli import main
from dsc.coding.streams import SOURCE_ROWS
from dsc.eval.gaussian import GaussianRateDistortion
from dsc.eval.source_point import SourceRateDistortion
from dsc.registry import Source, get_source, register, source_names, unregister
from dsc.report.sweep import aggregate

ROOT = Path(__file__).resolve().parent.parent
CPU = torch.device("cpu")


DOC = ROOT / "docs" / "sources.md"
MODULE_HEAD = "# my_sources.py"  # the blocks that make up the walk-through's module


def python_blocks() -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert len(blocks) == 5 and sum(block.startswith(MODULE_HEAD) for block in blocks) == 3
    return blocks


@pytest.fixture
def walkthrough():
    """The Python blocks of docs/sources.md, run in order in one namespace."""
    blocks = python_blocks()
    namespace: dict = {}
    try:
        for block in blocks:
            exec(compile(block, "docs/sources.md", "exec"), namespace)
        yield namespace
    finally:
        unregister("pair")


def test_the_walkthrough_adds_a_source_that_codes_end_to_end(walkthrough, tmp_path):
    assert "pair" in source_names() and SOURCE_ROWS[40][0] == "pair"
    stream, decoded = walkthrough["stream"], walkthrough["decoded"]
    assert len(stream) == 54 + math.ceil(1000 * 12 / 8)  # header + 12 bits per message
    # decoder 1 accepts every pick that recovered the encoder's candidate and a wrong pick with
    # probability 2^-8 (an 8-bit check); accepted picks beat its side-information fallback
    got, out = walkthrough["got"], decoded
    setting = walkthrough["setting"]
    coded = pipeline.code(got.model, setting.coder(got.model.prior), torch.arange(1000), got.sources,
                          got.side_information, check_bits=8)
    right = coded.match[:, 1]
    assert torch.equal(out.index, coded.decoded.index[:, 1]) and bool(out.accepted[right].all())
    wrong = int((~right).sum())
    false_accepts = int((out.accepted & ~right).sum())
    assert false_accepts <= wrong / 256 + 4.5 * math.sqrt(wrong / 256) + 1
    err = ((out.reconstruction - got.sources) ** 2).sum(-1)
    fallback_err = ((got.side_information[:, 1] / 1.5 - got.sources) ** 2).sum(-1)
    assert right.sum() > 50 and err[right].mean() < 0.5 * fallback_err[right].mean()
    assert torch.equal(err[~out.accepted], fallback_err[~out.accepted])
    point = walkthrough["point"]
    assert point["source"] == "pair" and point["method"] == "gls" and point["messages"] == 2000
    # the side-information-only MMSE is 2 x 1/3 (-1.76 dB); the pair's best of 2 must beat it
    assert point["mse_db"] < 10 * math.log10(2 / 3) and 0.3 < point["match_prob"] < 1

    # the aggregator draws and tabulates it by its source's scale (dB), never by its keys
    job = tmp_path / "sweep" / "0"
    job.mkdir(parents=True)
    (job / "metrics.json").write_text(json.dumps({"complete": True, "points": [point]}))
    result = aggregate(tmp_path / "sweep")
    assert result.plot_path is not None and "| 2 | " in result.tables_path.read_text()


def test_registration_errors_say_what_to_do(walkthrough):
    pair = walkthrough["PAIR"]
    with pytest.raises(dsc.ConfigError, match="registered sources: .*gaussian, image_folder, mnist, pair"):
        get_source("pairs")
    clash = Source(name="other", description="", stream_rows={40: "x"}, inputs=pair.inputs, distortion=pair.distortion)
    free = next(row for row in range(64) if row not in SOURCE_ROWS)  # the lowest row no source claims
    with pytest.raises(dsc.InvalidArgumentError, match=f"row 40 belongs to source 'pair'.*e.g. {free}"):
        register(clash)
    assert "other" not in source_names()
    with pytest.raises(dsc.InvalidArgumentError, match="already registered"):
        register(Source(name="pair", description="", stream_rows={41: "x"}, inputs=pair.inputs,
                        distortion=pair.distortion))
    with pytest.raises(dsc.ConfigError, match="no option sigma; its options: s2"):
        pair.coding_inputs({"sigma": 1.0}, torch.arange(3), 2)
    with pytest.raises(dsc.InvalidArgumentError, match="stream rows"):
        Source(name="rowless", description="", stream_rows={}, inputs=pair.inputs, distortion=pair.distortion)
    with pytest.raises(dsc.InvalidArgumentError, match="lower-case"):
        Source(name="Pair 2", description="", stream_rows={42: "x"}, inputs=pair.inputs, distortion=pair.distortion)


def test_the_generic_job_on_the_gaussian_source_equals_the_gaussian_job():
    """Same s2, same messages: the generic job and the paper-protocol job code the same picks,
    so their match probability is equal and their distortions agree to float rounding."""
    job = GaussianRateDistortion(num_decoders=3, rate_bits=2, num_candidates=1024, trials=1500, selection_trials=1500,
                                 test_channel_variances=[0.003], check_bits=4, progress=False)
    reference = job.run(0, CPU, Path("."))[0]
    generic = SourceRateDistortion("gaussian", {"s2": 0.003}, num_decoders=3, rate_bits=2, num_candidates=1024,
                                   check_bits=4, messages=1500, first_message=1500,
                                   progress=False).run(0, CPU, Path("."))[0]
    assert generic["match_prob"] == reference["match_prob"] and generic["accept_rate"] == reference["accept_rate"]
    for key in ("distortion_db", "mse_db", "per_decoder_mse_db", "practical_mse_db"):
        assert generic[key] == pytest.approx(reference[key], abs=1e-9), key


def test_built_in_sources_and_their_references():
    gaussian, mnist = get_source("gaussian"), get_source("mnist")
    assert (gaussian.scale, mnist.scale) == ("db", "linear")
    assert {0, 1} <= {row for row, (owner, _) in SOURCE_ROWS.items() if owner == "gaussian"}
    assert next(iter(gaussian.references.values()))[(4, 6)] == -34.11  # paper Table 10
    with pytest.raises(dsc.ConfigError, match="needs the option ckpt"):
        mnist.coding_inputs({}, torch.arange(2), 1)


def test_the_walkthrough_source_is_trained_evaluated_swept_and_coded_from_the_command_line(tmp_path, monkeypatch,
                                                                                           capsys):
    """From the folder holding the walk-through's module, as docs/sources.md shows (small sizes):
    train.py trains the codec the record declares on its data, evaluate.py sweeps that checkpoint
    (source.ckpt) into results.md and a plot, and dsc compress / decompress code files with it."""
    (tmp_path / "my_sources.py").write_text("\n".join(b for b in python_blocks() if b.startswith(MODULE_HEAD)))
    doc = DOC.read_text()
    for command in ("python train.py source=pair 'imports=[my_sources]'",
                    "python evaluate.py source=pair 'imports=[my_sources]' rate_bits=4 source.ckpt=",
                    "python evaluate.py -m source=pair 'imports=[my_sources]' rate_bits=1,2,3",
                    "dsc compress pair msgs.dsc --import my_sources --input x.npy --ckpt",
                    "dsc decompress pair msgs.dsc --import my_sources --ckpt"):
        assert command in doc

    def app(*command):
        run = subprocess.run([sys.executable, str(ROOT / command[0]), *command[1:], "source=pair",
                              "imports=[my_sources]", "device=cpu", "source.noise=0.25"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-3000:]

    # ${source.noise} reaches the data module and the codec's record alike
    app("train.py", "trainer.max_epochs=1", "data.train_size=512", "data.val_size=256",
        "+model.hidden=16", "+model.estimator_hidden=16", "logger=none", "trainer.enable_progress_bar=false",
        "hydra.run.dir=run")
    ckpt = tmp_path / "run" / "checkpoints" / "best.ckpt"
    config = json.loads((tmp_path / "run" / "run_config.json").read_text())["config"]
    assert ckpt.is_file() and config["model"]["_target_"] == "dsc.lit.gaussian_module.GaussianCodecModule"
    assert config["model"]["noise_var"] == config["data"]["noise"] == 0.25 and config["model"]["hidden"] == 16
    assert json.loads((tmp_path / "run" / "train_summary.json").read_text())["data"] == "PairData"  # no `origin`

    app("evaluate.py", "-m", f"source.ckpt={ckpt}", "rate_bits=1,2", "num_decoders=2", "num_candidates=128",
        "job.messages=100", "hydra.sweep.dir=sweep")
    sweep = tmp_path / "sweep"
    metrics = [json.loads(job.read_text()) for job in sorted(sweep.glob("*/metrics.json"))]
    assert [m["checkpoints"] for m in metrics] == [{str(ckpt): hashlib.sha256(ckpt.read_bytes()).hexdigest()}] * 2
    points = {m["points"][0]["rate_bits"]: m["points"][0] for m in metrics}
    assert sorted(points) == [1, 2] and all(p["source"] == "pair" and p["messages"] == 100 for p in points.values())
    assert points[2]["options"] == {"s2": 0.01, "noise": 0.25, "data_seed": 0, "ckpt": str(ckpt)}
    tables = (sweep / "results.md").read_text()
    assert "squared error (both coordinates)" in tables and "per pixel" not in tables  # the record's distortion
    with open(sweep / "results.csv") as f:
        rows = [row for row in csv.DictReader(f) if row["source"] == "pair"]
    assert sorted(row["rate_bits"] for row in rows) == ["1", "2"]
    assert (sweep / "rd_plot.png").read_bytes().startswith(b"\x89PNG")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # --import puts the working directory first
    try:
        rng = np.random.default_rng(0)
        sources = rng.normal(size=(20, 2))
        np.save("x.npy", sources)
        np.save("t1.npy", sources + 0.5 * rng.normal(size=(20, 2)))
        trained = ["--import", "my_sources", "--ckpt", str(ckpt), "--option", "noise=0.25"]
        assert main(["compress", "pair", "msgs.dsc", "--input", "x.npy", "--num-candidates", "128", "--rate-bits",
                     "4", "--num-decoders", "2", *trained]) == 0
        assert main(["decompress", "pair", "msgs.dsc", "--decoder", "1", "--side-info", "t1.npy", "--out", "r.npy",
                     *trained]) == 0
        assert np.load("r.npy").shape == (20, 2)
        capsys.readouterr()
        # the stream holds the trained codec's fingerprint: the closed form does not decode it
        assert main(["decompress", "pair", "msgs.dsc", "--import", "my_sources", "--option", "noise=0.25",
                     "--decoder", "1", "--side-info", "t1.npy", "--out", "other.npy"]) == 2
        assert not Path("other.npy").exists()
        # a codec trained for other side information is refused
        assert main(["compress", "pair", "m.dsc", "--import", "my_sources", "--ckpt", str(ckpt), "--input",
                     "x.npy"]) == 2
        assert "trained for side-information noise 0.25, not 0.5" in capsys.readouterr().err
        # the sweep ran the generic job with the command line's settings
        again = SourceRateDistortion("pair", {"noise": 0.25, "ckpt": str(ckpt)}, num_decoders=2, rate_bits=2,
                                     num_candidates=128, messages=100, progress=False).run(0, CPU, tmp_path)[0]
        assert (again["mse"], again["match_prob"]) == (points[2]["mse"], points[2]["match_prob"])
    finally:
        sys.modules.pop("my_sources", None)
        unregister("pair")
