"""The source registry: the docs' walk-through runs as written (a source added from outside
dsc goes through bitstreams, the generic job and the aggregator), built-in sources dispatch
the same way, and bad registrations are clear errors."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch

import dsc
from dsc import pipeline
from dsc.coding.streams import SOURCE_ROWS
from dsc.eval.aggregate import aggregate
from dsc.eval.gaussian import GaussianRateDistortion
from dsc.eval.source_point import SourceRateDistortion
from dsc.registry import Source, get_source, register, source_names, unregister

ROOT = Path(__file__).resolve().parent.parent
CPU = torch.device("cpu")


@pytest.fixture
def walkthrough():
    """The Python blocks of docs/sources.md, run in order in one namespace."""
    text = (ROOT / "docs" / "sources.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    assert len(blocks) == 3
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
    with pytest.raises(dsc.ConfigError, match="registered sources: .*gaussian, mnist, pair"):
        get_source("pairs")
    clash = Source(name="other", description="", stream_rows={40: "x"}, inputs=pair.inputs, distortion=pair.distortion)
    with pytest.raises(dsc.InvalidArgumentError, match="row 40 belongs to source 'pair'.*e.g. 3"):
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
