"""Dependencies point down: the lower layers import nothing of the evaluation or reporting layers,
evaluation imports nothing of reporting, no module of dsc imports itself in a circle, the package
holds no study or repository tool and imports none, and the command line's help loads none of the
heavy libraries."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "dsc"
LOWER = ("dsc.catalog", "dsc.coding", "dsc.models", "dsc.sources")
ABOVE_LOWER = ("dsc.eval", "dsc.lit", "dsc.report")  # what the lower layers never reach
HEAVY = ("lightning", "matplotlib", "transformers", "scipy", "hydra")  # none needed to list commands and options


def _python(code: str, *argv: str) -> str:
    """stdout of ``code`` run in a fresh interpreter (nothing imported by this test process)."""
    run = subprocess.run([sys.executable, "-c", code, *argv], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


def test_the_lower_layers_import_nothing_of_the_evaluation_layer():
    """dsc.catalog, dsc.coding, dsc.models and dsc.sources imported in a fresh process: no
    dsc.eval, dsc.lit or dsc.report module comes with them."""
    code = f"""
import importlib, sys
for name in {LOWER!r}:
    importlib.import_module(name)
print(" ".join(sorted(sys.modules)))
"""
    loaded = _python(code).split()
    assert {"dsc.catalog.gaussian", "dsc.catalog.images", "dsc.coding.importance"} <= set(loaded)
    assert [m for m in loaded if m.startswith(ABOVE_LOWER)] == []


def test_no_module_of_the_lower_layers_reaches_the_evaluation_layer_when_imported():
    """The same for every module of those packages, read from their source: what importing one
    runs (imports outside functions, followed through every module they import) holds no dsc.eval,
    dsc.lit or dsc.report module. A function's own import runs only when it is called (e.g. loading a
    checkpoint) and is not followed."""
    graph = import_graph(lazy=False)
    for name in sorted(m for m in graph if m.startswith(LOWER)):
        reached, todo = set(), [name]
        while todo:
            for child in graph[todo.pop()] - reached:
                reached.add(child)
                todo.append(child)
        assert not [m for m in reached if m.startswith(ABOVE_LOWER)], name
    assert "dsc.sources.images" in graph["dsc.catalog.images"]  # the graph follows real imports


# Evaluation modules that import reporting, each with why; the test below fails when one stops,
# so that the list only shrinks. None now: a job returns its points and the layer above writes its
# report (dsc.report.job, handed to dsc.eval.runner by dsc.apps).
EVAL_IMPORTS_OF_REPORTING: set[str] = set()


def _eval_imports_of_reporting(graph: dict[str, set[str]]) -> set[str]:
    return {name for name, imported in graph.items()
            if name.startswith("dsc.eval") and any(m.startswith("dsc.report") for m in imported)}


def test_evaluation_imports_nothing_of_the_reporting_layer():
    """Reporting sits above evaluation: no dsc.eval module imports a dsc.report module, not even
    inside a function (the listed exceptions aside), while reporting does read evaluation."""
    graph = import_graph()
    assert _eval_imports_of_reporting(graph) == EVAL_IMPORTS_OF_REPORTING
    assert "dsc.eval.points" in graph["dsc.report.collect"]  # the graph sees reporting's real imports
    planted = ast.parse("def write():\n    from dsc.report.tables import markdown_tables\n")  # and a lazy one
    assert _eval_imports_of_reporting({**graph, "dsc.eval.planted": _imports(planted, set(graph), lazy=True)}) \
        == EVAL_IMPORTS_OF_REPORTING | {"dsc.eval.planted"}
    lower = {name for name, imported in graph.items()
             if name.startswith(LOWER) and any(m.startswith("dsc.report") for m in imported)}
    assert lower == set()


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(tree: ast.AST, modules: set[str], lazy: bool) -> set[str]:
    """The dsc modules an AST imports, with ``lazy`` also inside functions, except under
    TYPE_CHECKING (never run)."""
    found: set[str] = set()
    for node in ast.iter_child_nodes(tree):
        if _is_type_checking(node) or (not lazy and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))):
            continue
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        found |= _imports(node, modules, lazy)
    return found & modules


def import_graph(lazy: bool = True) -> dict[str, set[str]]:
    """dsc module -> the dsc modules it imports (with ``lazy``: inside functions too). A package
    stands for its ``__init__``, and importing a module imports its packages."""
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {name: _imports(ast.parse(path.read_text()), set(paths), lazy) for name, path in paths.items()}
    for name in graph:
        parent = name.rpartition(".")[0]
        if parent in graph and not lazy:
            graph[name].add(parent)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of ``graph``: its strongly connected components of two or more modules."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        order[node] = low[node] = len(order)
        stack.append(node)
        for child in graph[node]:
            if child not in order:
                visit(child)
                low[node] = min(low[node], low[child])
            elif child in stack:
                low[node] = min(low[node], order[child])
        if low[node] == order[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in order:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({**graph, "c": set()}) == []


def test_no_module_of_dsc_imports_itself_in_a_circle():
    """Lazy imports inside functions count: a circle through one is still a circle."""
    graph = import_graph()
    assert graph["dsc.eval.image_point"] >= {"dsc.eval.image_figures"}  # the graph sees real imports
    assert cycles(graph) == []


STUDIES = ("loss_scale", "beta_scan", "convergence", "gaussian_study", "report_cli", "docs_tables")


def test_the_package_holds_no_study_and_imports_none():
    """One-off studies live in studies/ and repository tools in tools/: dsc/eval and dsc/report
    have none of their modules, and no module of dsc imports from either, not even inside a function."""
    assert [name for name in STUDIES for layer in ("eval", "report") if (PACKAGE / layer / f"{name}.py").exists()] == []
    assert (ROOT / "studies" / "report_cli.py").is_file() and (ROOT / "tools" / "docs_tables.py").is_file()
    outside = {"studies", "tools"}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else
                     [alias.name for alias in node.names] if isinstance(node, ast.Import) else [])
            assert not [n for n in names if n.split(".")[0] in outside], f"{path.relative_to(ROOT)}:{node.lineno}"


@pytest.mark.parametrize("argv", [["--help"], ["compress", "--help"]], ids=["dsc", "compress"])
def test_the_command_line_help_loads_no_heavy_library(argv):
    code = """
import sys
from dsc.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print("MODULES", " ".join(sorted({name.split(".")[0] for name in sys.modules})))
"""
    out = _python(code, *argv)
    assert "usage: dsc" in out
    loaded = set(out.split("MODULES", 1)[1].split())
    assert "torch" in loaded  # the listing works: the CLI's own dependencies are there
    assert sorted(loaded & set(HEAVY)) == []
