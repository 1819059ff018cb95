"""The speculative study around the runs: the paper's Table 2 settings as the mixed defaults, the
run plan, token rates and their ratio to single draft, the GLS - SpecInfer comparison beside the
paper's figures, the positions kept for the cross-check (the study's own next-token
distributions), and the command line end to end on tiny random transformers models."""

from __future__ import annotations

import json
import math

import pytest
import torch

import dsc
from dsc.speculative import report, study
from dsc.speculative.crosscheck import compact

pytest.importorskip("transformers")

from dsc.speculative.backend import CausalLM  # noqa: E402
from dsc.speculative.distributions import probabilities  # noqa: E402
from tests.test_speculative_backend import VOCAB, byte_tokenizer, saved, tiny_model  # noqa: E402

# the paper's Table 2 (GSM8K block efficiency, K = 2, L = 5, target temperature 2.0)
TABLE2 = {(0.5, 1.0): (4.26, 4.75), (1.0, 0.5): (4.44, 4.75), (1.0, 1.0): (4.51, 4.83)}  # SpecInfer, GLS


def test_the_default_mixed_settings_are_the_papers_table_2():
    args = study.build_parser().parse_args([])
    assert args.mixed is None and args.mixed_length == 5 and args.top_k == 50
    parsed = [study.parse_mixed(spec) for spec in study.MIXED_DEFAULT]
    assert parsed == [(2.0, [0.5, 1.0]), (2.0, [1.0, 0.5]), (2.0, [1.0, 1.0])]
    for target, temps in parsed:
        figures = report.paper_figures(target, temps)
        assert (figures["specinfer"], figures["gls"], figures["single_draft"]) == (*TABLE2[tuple(temps)], 4.28)
    assert report.paper_figures(2.0, [1.0, 4.0]) is None and report.paper_figures(1.0, [0.5, 1.0]) is None
    assert study.build_parser().parse_args(["--mixed", "3:1,2,4"]).mixed == ["3:1,2,4"]


def test_bad_settings_parse_to_clear_errors():
    for bad in ("2.0", "2:1", "2:1,x", "0:1,2", "2:1,-1", "2:inf,1", "nan:1,2"):
        with pytest.raises(dsc.ConfigError, match="--mixed"):
            study.parse_mixed(bad)
    for bad in ("1,x", "0,2", ""):
        with pytest.raises(dsc.ConfigError, match="--drafts"):
            study.parse_drafts(bad)
    with pytest.raises(dsc.ConfigError, match="medusa"):
        study.parse_methods("gls,medusa")
    assert study.parse_methods("") == [] and study.parse_drafts("1,8") == [1, 8]


def test_the_plan_runs_every_method_within_a_seed_and_single_draft_for_mixed_settings():
    iid = study.Setting("iid", 1.0, (2.0,), 4)
    mixed = study.mixed_setting(2.0, [0.5, 1.0], 5)
    assert mixed.name == "target 2, drafts 0.5, 1" and mixed.mixed and mixed.length == 5
    jobs = [(s.name, m, k, seed) for s, m, k, seed in study.plan([iid, mixed], ["gls", "single_draft"], [2, 4], 2)]
    assert jobs == [("iid", "gls", 2, 0), ("iid", "gls", 4, 0), ("iid", "single_draft", 1, 0),
                    ("iid", "gls", 2, 1), ("iid", "gls", 4, 1), ("iid", "single_draft", 1, 1),
                    (mixed.name, "gls", 2, 0), (mixed.name, "specinfer", 2, 0), (mixed.name, "single_draft", 1, 0),
                    (mixed.name, "gls", 2, 1), (mixed.name, "specinfer", 2, 1), (mixed.name, "single_draft", 1, 1)]


def row(setting, method, drafts, seed, efficiency, rate):
    return {"setting": setting, "method": method, "drafts": drafts, "seed": seed, "block_efficiency": efficiency,
            "matching_probability": 0.5, "lml_bound": 0.4, "token_rate": rate}


def test_token_rate_ratios_and_differences_are_per_seed():
    name = "target 2, drafts 0.5, 1"
    rows = [row(name, "gls", 2, 0, 4.0, 12.0), row(name, "specinfer", 2, 0, 3.5, 9.0),
            row(name, "single_draft", 1, 0, 3.0, 10.0),
            row(name, "gls", 2, 1, 4.4, 15.0), row(name, "specinfer", 2, 1, 3.6, 10.0),
            row(name, "single_draft", 1, 1, 3.2, 10.0),
            row("iid", "gls", 2, 0, 2.0, 5.0)]  # no single-draft run in this setting
    summary = {(s["setting"], s["method"]): s for s in report.summarize(rows)}
    gls = summary[name, "gls"]
    assert gls["tr_ratio"] == pytest.approx((1.2 + 1.5) / 2)
    assert gls["tr_ratio_se"] == pytest.approx(math.sqrt(((1.2 - 1.35) ** 2 + (1.5 - 1.35) ** 2) / 1) / math.sqrt(2))
    assert gls["token_rate"] == pytest.approx(13.5) and gls["block_efficiency"] == pytest.approx(4.2)
    assert summary[name, "single_draft"]["tr_ratio"] == 1.0
    assert summary["iid", "gls"]["tr_ratio"] is None and summary["iid", "gls"]["block_efficiency_se"] == 0.0
    settings = [{"name": name, "mixed": True, "target_temperature": 2.0, "draft_temperatures": (0.5, 1.0),
                 "length": 5}, {"name": "iid", "mixed": False, "target_temperature": 1.0,
                                "draft_temperatures": (2.0,), "length": 4}]
    (entry,) = report.compare(settings, rows, {name: {"positions": 3}})
    assert entry["gls_minus_specinfer"] == pytest.approx((0.5 + 0.8) / 2)
    assert entry["gls_minus_specinfer_se"] == pytest.approx((0.8 - 0.5) / math.sqrt(2) / math.sqrt(2))
    assert entry["paper"] == {"specinfer": 4.26, "gls": 4.75, "single_draft": 4.28}
    assert entry["crosscheck"] == {"positions": 3}


def test_a_run_times_itself_and_keeps_the_studys_own_first_position_distributions():
    target, drafter = CausalLM(tiny_model(0), VOCAB), CausalLM(tiny_model(1, vocab=VOCAB), VOCAB)
    models = study.Models(target, 20, 2.0, [0.5, 1.0], drafter=drafter)
    prompts = [list(range(10, 16)), list(range(40, 44)), list(range(70, 75))]
    positions = []
    out = study.run_setting(models, "specinfer", 2, 3, 5, 0, prompts, positions=positions)
    assert out["generated_tokens"] == 15 and out["seconds"] > 0
    assert out["token_rate"] == pytest.approx(15 / out["seconds"])
    assert len(positions) == out["target_calls"] and 2 * 3 <= out["target_calls"] <= 5 * 3  # 1 to L + 1 a call
    for i, ids in enumerate(prompts):  # the first blocks start right after the prompts
        tokens = torch.tensor([ids])
        q = probabilities(target.logits(tokens)[0, -1], 2.0, 20)
        logits = drafter.logits(tokens)[0, -1].double()
        p = torch.stack([probabilities(logits / t, 1.0, 20) for t in (0.5, 1.0)])
        expected_q, expected_p = compact(q, p)
        assert torch.allclose(positions[i][0], expected_q, atol=1e-4)
        assert torch.allclose(positions[i][1], expected_p, atol=1e-4)
        assert positions[i][1].shape == (2, len(positions[i][0]))


def test_the_command_line_writes_token_rates_the_cross_check_and_the_papers_figures(tmp_path):
    tokenizer = byte_tokenizer()
    target = saved(tmp_path, "target", tiny_model(0), tokenizer)
    drafter = saved(tmp_path, "drafter", tiny_model(1, vocab=VOCAB), tokenizer)
    out = tmp_path / "out"
    study.main(["--target", str(target), "--drafter", str(drafter), "--device", "cpu", "--methods",
                "gls,single_draft", "--drafts", "2", "--seeds", "2", "--tokens", "3", "--top-k", "20",
                "--mixed", "2.0:0.5,1.0", "--crosscheck-samples", "50", "--out", str(out)])
    result = json.loads((out / "results.json").read_text())
    mixed = "target 2, drafts 0.5, 1"
    assert [(s["setting"], s["method"], s["drafts"]) for s in result["summary"]] == [
        ("iid", "gls", 2), ("iid", "single_draft", 1), (mixed, "gls", 2), (mixed, "specinfer", 2),
        (mixed, "single_draft", 1)]
    for s in result["summary"]:
        assert s["token_rate"] > 0 and s["tr_ratio"] > 0 and s["seeds"] == 2
    for r in result["runs"]:
        assert r["generated_tokens"] == 3 * len(study.PROMPTS) and r["seconds"] > 0
        used = [2.0] if r["setting"] == "iid" else [0.5] if r["method"] == "single_draft" else [0.5, 1.0]
        assert r["draft_temperatures"] == used
    (comparison,) = result["comparison"]
    assert comparison["paper"] == {"specinfer": 4.26, "gls": 4.75, "single_draft": 4.28}
    check = comparison["crosscheck"]
    calls = sum(r["target_calls"] for r in result["runs"] if r["setting"] == mixed and r["method"] != "single_draft")
    assert check["positions"] == calls and check["drafts"] == 2 and check["samples"] == 50
    assert 0 <= check["specinfer"] <= 1 and 0 <= check["gls"] <= 1 and check["gls_mc_se"] > 0
    assert result["environment"]["device"] == "cpu" and result["environment"]["cpu_model"]
    assert [s["name"] for s in result["settings"]] == ["iid", mixed]
    text = (out / "results.md").read_text()
    assert "TR %" in text and "Token-level cross-check" in text and "first draft temperature" in text
    paper_row = next(line for line in text.splitlines() if line.startswith(f"| {mixed} | 4.26 |"))
    assert "| 4.75 |" in paper_row and "| 0.49 |" in paper_row and "| 4.28 |" in paper_row


def test_nothing_to_run_or_a_bad_sample_count_fails_before_any_model_load(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("a model was loaded")
    monkeypatch.setattr(study, "load_models", fail)
    for argv in (["--methods", "", "--mixed", ""], ["--crosscheck-samples", "-1"], ["--methods", "gls,x"],
                 ["--drafts", "0"]):
        with pytest.raises(SystemExit):
            study.main([*argv, "--device", "cpu", "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_the_header_names_the_device_and_says_when_the_drafter_is_the_target():
    args = study.build_parser().parse_args(["--methods", ""])
    settings = [study.mixed_setting(2.0, [0.5, 1.0], 5)]
    environment = {"device": "cpu", "device_name": "x86_64", "cpu_model": "Some CPU", "cpu_threads": 1}
    text = study.header(args, ("t", "the target"), settings, environment, 12.0)
    assert "the drafter is the target network itself" in text and "cpu (Some CPU, 1 torch thread)" in text
    assert "iid" not in text and "one draft at the first draft temperature" in text
    assert "network itself" not in study.header(args, ("t", "d"), settings, environment, 12.0)
    gpu = {**environment, "device": "cuda:0", "device_name": "Some GPU"}
    assert "cuda:0 (Some GPU)" in study.header(args, ("t", "d"), settings, gpu, 12.0)
