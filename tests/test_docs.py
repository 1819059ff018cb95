"""The documentation (README.md and docs/*.md) runs as written and matches the data.

Code-block convention. Every fenced block in README.md and docs/*.md is exactly one of:

- a ```` ```python ```` block: executed by ``test_python_blocks_run``, per file, top to bottom,
  all blocks of a file in one namespace; the claims they print are checked in ``CLAIMS``;
- a block whose fence follows the line ``<!-- illustrative -->`` (blank lines between are
  allowed): not executed (shell commands, slow runs, layouts). Shell blocks are still checked
  by ``test_commands_name_things_that_exist``: every ``python -m MODULE`` resolves, every
  script or file named exists, every ``experiment=NAME`` (and other config-group choice) is a
  packaged config, every ``make TARGET`` is a Makefile target;
- a block inside a generated results block (``<!-- results VIEW -->`` ... ``<!-- end results -->``):
  rendered from ``results/`` by ``tools.docs_tables`` and checked against the data by
  ``test_the_committed_docs_match_the_committed_results``.

``test_every_code_block_is_run_or_marked`` fails on any other block. Relative links must point
to existing files, and measured tables must be generated blocks, not typed by hand.
"""

from __future__ import annotations

import importlib.util
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import dsc
from tools.docs_tables import render, render_docs

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CONF = ROOT / "dsc" / "conf"
MARKER = "<!-- illustrative -->"
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
RESULTS_OPEN = re.compile(r"^<!-- results [\w/.-]+ -->$")
RESULTS_CLOSE = "<!-- end results -->"
SHELL = {"bash", "sh", "shell", "console"}


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    info: str  # the info string's first word ("" when none)
    code: str
    illustrative: bool
    generated: bool

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line} ({self.info or 'no info string'})"


def blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file, in order."""
    lines = path.read_text().splitlines()
    found, generated, i = [], False, 0
    while i < len(lines):
        line = lines[i]
        if line.strip() == RESULTS_CLOSE:
            generated = False
        elif RESULTS_OPEN.match(line.strip()):
            generated = True
        match = FENCE.match(line)
        if match is None:
            i += 1
            continue
        fence, start = match["fence"], i
        before = [x.strip() for x in lines[:i] if x.strip()]
        i += 1
        while i < len(lines) and not re.match(rf"^\s*{re.escape(fence[0])}{{{len(fence)},}}\s*$", lines[i]):
            i += 1
        if i == len(lines):
            raise AssertionError(f"{path}:{start + 1}: code fence never closed")
        found.append(Block(path, start + 1, (match["info"].split() or [""])[0], "\n".join(lines[start + 1:i]) + "\n",
                           bool(before) and before[-1] == MARKER, generated))
        i += 1
    return found


ALL_BLOCKS = [block for page in PAGES for block in blocks(page)]


def test_every_code_block_is_run_or_marked():
    unmarked = [str(b) for b in ALL_BLOCKS if not (b.generated or b.illustrative or b.info == "python")]
    assert not unmarked, f"blocks neither executed (```python) nor marked {MARKER}: {unmarked}"
    for page in PAGES:  # a marker must mark a block
        lines = [x.strip() for x in page.read_text().splitlines()]
        for n, line in enumerate(lines):
            if line == MARKER:
                following = next((x for x in lines[n + 1:] if x), "")
                assert FENCE.match(following), f"{page.relative_to(ROOT)}:{n + 1}: {MARKER} marks no code block"
    assert any(b.info == "python" and not b.illustrative for b in ALL_BLOCKS)


# --- executed Python blocks and the claims they print ------------------------------------------------------------

def _number(pattern: str, out: str) -> float:
    match = re.search(pattern, out)
    assert match, f"no {pattern!r} in the printed output:\n{out}"
    return float(match.group(1))


def _readme(out: str) -> None:
    rate = _number(r"Pr\[match\] = ([\d.]+)", out)
    assert rate >= _number(r"LML bound ([\d.]+)", out) - 0.01
    # the best of 4 decoders beats the side information alone (var(A|T) = 1/3)
    assert _number(r"best-of-4 MSE ([\d.]+)", out) < 1 / 3
    assert 0.3 < _number(r"match ([\d.]+)", out) <= 1


def _api(out: str) -> None:
    assert _number(r"rate (\d+) bits", out) == 3
    assert _number(r"pick\] = ([\d.]+)", out) > 0.5
    assert "GaussianLogWeight: same picks True" in out


def _bitstreams(out: str) -> None:
    assert _number(r"(\d+) bytes", out) == 54 + 1000 * 6 / 8  # header + CRC + 6 bits per message
    assert 0 < _number(r"accepted ([\d.]+)%", out) < 100


def _speculative(out: str) -> None:
    single = _number(r"single_draft K = 1: ([\d.]+)", out)
    assert _number(r"gls K = 4: ([\d.]+)", out) > single and _number(r"specinfer K = 4: ([\d.]+)", out) > single


def _sources(out: str) -> None:
    assert _number(r"(\d+) bytes", out) == 54 + math.ceil(1000 * 12 / 8)
    assert _number(r"best of 2: ([-\d.]+) dB", out) < 10 * math.log10(2 / 3)  # beats the side information alone


CLAIMS = {"README.md": _readme, "docs/api.md": _api, "docs/bitstreams.md": _bitstreams,
          "docs/speculative.md": _speculative, "docs/sources.md": _sources}
RUN = sorted({b.path for b in ALL_BLOCKS if b.info == "python" and not b.illustrative})


@pytest.mark.parametrize("path", RUN, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_blocks_run(path, capsys, monkeypatch, tmp_path):
    from dsc.registry import source_names, unregister

    monkeypatch.chdir(tmp_path)  # whatever an example writes stays out of the tree
    before = set(source_names())
    namespace: dict = {"__name__": f"docs_{path.stem}"}
    try:
        for block in (b for b in blocks(path) if b.info == "python" and not b.illustrative):
            # padded so that a traceback names the Markdown line
            exec(compile("\n" * block.line + block.code, str(path), "exec"), namespace)
    finally:
        for name in set(source_names()) - before:  # a page that registers a source leaves no trace
            unregister(name)
    out = capsys.readouterr().out
    CLAIMS.get(str(path.relative_to(ROOT)), lambda out: None)(out)


def test_every_page_with_examples_has_its_claims_checked():
    assert {str(p.relative_to(ROOT)) for p in RUN} == set(CLAIMS)


# --- commands, names and links -----------------------------------------------------------------------------------

GROUPS = sorted(p.name for p in CONF.iterdir() if p.is_dir() and not p.name.startswith("_")) if CONF.is_dir() else []
CHOICE = re.compile(rf"(?<![\w./-])\+?({'|'.join(GROUPS) or 'experiment'})=([\w,|]+)")
MODULE = re.compile(r"python -m ([\w.]+)")
REPO_PATH = re.compile(r"(?<![\w./-])((?:dsc|studies|tools|results|benchmarks|tests|docs)/[\w./-]*)(?![\w/-])")


# sources the docs' code registers (docs/sources.md): source=NAME selects their records' configs, not files
DOC_SOURCES = {name for page in PAGES for name in re.findall(r'Source\(\s*name="([a-z]\w*)"', page.read_text())}


def _config_exists(group: str, name: str) -> bool:
    return (CONF / group / f"{name}.yaml").is_file() or (group == "source" and name in DOC_SOURCES)


def _make_targets() -> set[str]:
    return set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), flags=re.M))


def test_commands_name_things_that_exist():
    problems = []
    for page in PAGES:
        text, where = page.read_text(), page.relative_to(ROOT)
        for module in set(MODULE.findall(text)):  # in shell blocks and inline code alike
            if importlib.util.find_spec(module) is None:
                problems.append(f"{where}: python -m {module}: no such module")
        for group, values in set(CHOICE.findall(text)):
            for value in re.split(r"[,|]", values):
                if value and not value.isupper() and not _config_exists(group, value):  # NAME: a placeholder
                    problems.append(f"{where}: {group}={value}: no {CONF.relative_to(ROOT)}/{group}/{value}.yaml")
        commands = "\n".join([b.code for b in blocks(page) if b.info in SHELL] + re.findall(r"`([^`\n]+)`", text))
        for target in set(re.findall(r"^\s*make ([a-z][\w-]*)", commands, flags=re.M)):
            if target not in _make_targets():
                problems.append(f"{where}: make {target}: no such Makefile target")
        for block in (b for b in blocks(page) if b.info in SHELL):
            for path in re.findall(r"(?:python|bash) ([\w./-]+\.(?:py|sh))", block.code):
                if not (ROOT / path).is_file():
                    problems.append(f"{block}: {path}: no such file")
    assert not problems, "\n".join(problems)


def test_inline_paths_exist():
    """Repository paths named in the prose (``dsc/coding/streams.py``, ``results/compare_gaussian/``) exist."""
    problems = []
    for page in PAGES:
        for span in re.findall(r"`([^`\n]+)`", page.read_text()):
            for path in REPO_PATH.findall(span):
                if "<" in span or "*" in path or "{" in span:
                    continue
                if not (ROOT / path.rstrip(".")).exists():
                    problems.append(f"{page.relative_to(ROOT)}: `{span}`: {path} does not exist")
    assert not problems, "\n".join(problems)


def test_installed_commands_are_declared():
    """``dsc-train`` / ``dsc-evaluate`` named in the docs are console scripts of the package (once it declares any)."""
    if sys.version_info < (3, 11):
        pytest.skip("tomllib needs Python 3.11")
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text()).get("project", {}).get("scripts")
    if not scripts:
        pytest.skip("pyproject.toml declares no console scripts yet")
    named = {name for page in PAGES for name in re.findall(r"(?<![\w./-])(dsc-[a-z]+)", page.read_text())}
    assert named <= set(scripts), f"not declared in [project.scripts]: {sorted(named - set(scripts))}"


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def test_relative_links_point_to_files():
    broken = []
    for page in PAGES:
        for target in LINK.findall(page.read_text()):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue
            if not (page.parent / target.split("#")[0]).exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken, f"broken links: {broken}"


def test_the_readme_links_every_docs_page():
    readme = (ROOT / "README.md").read_text()
    missing = [p.name for p in sorted((ROOT / "docs").glob("*.md")) if f"(docs/{p.name})" not in readme]
    assert not missing, f"README.md does not link {missing}"


# --- generated tables ----------------------------------------------------------------------------------------------

MEASURED_CELL = re.compile(r"^[-+]?\d[\d,]*\.\d+(?![\d.])")  # a cell that starts with a decimal number


def test_measured_tables_are_generated():
    """A table with measured numbers (two or more decimal cells in a row) outside a results block
    was typed by hand: render it from results/ through a view instead."""
    typed = []
    for page in PAGES:
        inside = False
        for n, line in enumerate(page.read_text().splitlines(), 1):
            inside = (inside or bool(RESULTS_OPEN.match(line.strip()))) and line.strip() != RESULTS_CLOSE
            cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
            if not inside and sum(bool(MEASURED_CELL.match(c)) for c in cells) >= 2:
                typed.append(f"{page.relative_to(ROOT)}:{n}")
    assert not typed, f"hand-typed measured tables: {typed}"


def test_docs_tables_render_from_results_and_refuse_unknown_views(tmp_path):
    results = tmp_path / "results" / "mnist_paper"
    results.mkdir(parents=True)
    rows = ["scheme,num_decoders,rate_bits,mse,beta,num_candidates",
            "gls,2,2,0.0800,0.15,128", "shared_randomness,2,2,0.1000,0.35,256"]
    (results / "results.csv").write_text("\n".join(rows) + "\n")
    doc = tmp_path / "doc.md"
    doc.write_text("Intro.\n<!-- results mnist_paper/margins -->\nstale\n<!-- end results -->\nOutro.\n")
    assert render_docs([doc], tmp_path / "results", check=True) == [doc] and "stale" in doc.read_text()
    assert render_docs([doc], tmp_path / "results") == [doc]
    text = doc.read_text()
    assert "| 2 | 20.0 % (8.6 %) |" in text and "stale" not in text and text.endswith("<!-- end results -->\nOutro.\n")
    assert render_docs([doc], tmp_path / "results", check=True) == []  # idempotent
    choices = render("<!-- results mnist_paper/choices -->\n<!-- end results -->", tmp_path / "results")
    assert "| 2 | 0.15, 128 |" in choices and "| 2 | 0.35, 256 |" in choices
    with pytest.raises(dsc.DscError, match="unknown results view"):
        render("<!-- results nothing/here -->\n<!-- end results -->", tmp_path / "results")
    with pytest.raises(dsc.DscError, match="cannot read"):
        render("<!-- results mnist_paper/convergence -->\n<!-- end results -->", tmp_path / "results")
    (results / "bench.txt").write_text("step 0.21 s\n")
    assert render("<!-- results mnist_paper/bench.txt -->\nold\n<!-- end results -->", tmp_path / "results") == (
        "<!-- results mnist_paper/bench.txt -->\n```text\nstep 0.21 s\n```\n<!-- end results -->")
    with pytest.raises(dsc.DscError, match="cannot read"):
        render("<!-- results mnist_paper/missing.txt -->\n<!-- end results -->", tmp_path / "results")
    (results / "report.md").write_text("| a | b |\n|---|---|\n\n")  # a study's own Markdown: as it is
    assert render("<!-- results mnist_paper/report.md -->\n<!-- end results -->", tmp_path / "results") == (
        "<!-- results mnist_paper/report.md -->\n| a | b |\n|---|---|\n<!-- end results -->")


def test_the_gaussian_comparison_views(tmp_path):
    study = tmp_path / "results" / "compare_gaussian"
    study.mkdir(parents=True)
    rows = ["scheme,num_decoders,rate_bits,distortion_db,distortion_db_se,mse_db,mse_db_se,match_prob,match_prob_se,"
            "s2,step",
            "gls,1,1,-10.0,0.1,-3.0,0.05,0.45,0.003,0.03,",
            "shared_randomness,1,1,-10.0,0.1,-3.0,0.05,0.45,0.003,0.03,",
            "gls,2,1,-15.0,0.1,-7.0,0.05,0.39,0.003,0.006,",
            "shared_randomness,2,1,-14.0,0.1,-6.5,0.05,0.85,0.003,0.3,",
            "nested_scalar,2,1,-17.0,0.01,-10.5,0.01,0.999,0.001,,1.875",
            "wyner_ziv_bound,,1,,,-10.79,,,,,"]
    (study / "results.csv").write_text("\n".join(rows) + "\n")
    table = render("<!-- results compare_gaussian/paper -->\n<!-- end results -->", tmp_path / "results")
    assert "| 2 | GLS, s2 by the paper's metric | -15.00 (s2 0.006) |" in table
    assert "| 2 | paper Table 10 (GLS) | -15.21 |" in table and "| 1 | shared randomness" not in table
    assert "At K = 1 shared randomness is the same scheme as GLS" in table
    gap = render("<!-- results compare_gaussian/paper_gap -->\n<!-- end results -->", tmp_path / "results")
    assert "| 1 | -0.30 |" in gap and "| 2 | +0.21 |" in gap
    mse = render("<!-- results compare_gaussian/mse_db -->\n<!-- end results -->", tmp_path / "results")
    assert "| 2 | nested scalar, step by MSE | -10.50 (step 1.88) |" in mse and "| | Wyner-Ziv bound | -10.79 |" in mse
    match = render("<!-- results compare_gaussian/match -->\n<!-- end results -->", tmp_path / "results")
    assert "| 2 | shared randomness, s2 by the paper's metric | 0.850 |" in match and "nested" not in match


def test_the_committed_docs_match_the_committed_results():
    """Every generated table in README.md and docs/*.md is what the data under results/ renders to today."""
    assert render_docs(PAGES, ROOT / "results", check=True) == []


def test_the_bd_rate_views_of_the_committed_results():
    """At K = 1 the shared-randomness baseline is the same scheme as GLS (one row of noise), so
    its Bjøntegaard delta against GLS is zero; with more decoders GLS's own rows make the
    baseline pay rate (the margins of the paper's Table 14 are positive)."""
    from tools.docs_tables import VIEWS

    table = VIEWS["mnist_paper/bd_rate"](ROOT / "results")
    cells = re.search(r"^\| shared_randomness \| (.*) \|$", table, flags=re.M).group(1).split(" | ")
    rates = [float(re.match(r"([+-][\d.]+) %", cell).group(1)) for cell in cells]
    assert rates[0] == 0.0 and all(rate > 0 for rate in rates[1:])
    gaussian = VIEWS["compare_gaussian/bd_rate"](ROOT / "results")
    assert "against gls_mse" in gaussian and "| gls |" in gaussian and "wyner_ziv" not in gaussian
