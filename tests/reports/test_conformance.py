"""Conformance runs: the pytest plugin (run in a subprocess) and the page it renders."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from reports import render_site
from reports_testkit import (
    CONFORMANCE_META, assert_self_contained, conformance, keyed_rows, make_run, parse, section, table_rows,
)

ROOT = Path(__file__).resolve().parents[2]

# Shaped like tests/engine/test_ops_against_torch.py: `op` (with a .name),
# `dtype_name`, `index`; the in-place test; tests without an op.
# A fake conformance module the plugin records: its skip and xfail marks are test data, so
# that the report's skipped/xfailed rendering is checked below.
FAKE_OPS_TESTS = '''
from dataclasses import dataclass
import pytest

@dataclass(frozen=True)
class Op:
    name: str

OPS = [Op("mul"), Op("exp"), Op("nn.functional.gelu")]
CASES = [pytest.param(op, dt, i, id=f"{op.name}-{dt}-{i}")
         for op in OPS for dt in ("float32", "float64") for i in range(2)]

@pytest.mark.parametrize("op, dtype_name, index", CASES)
def test_op_matches_torch(op, dtype_name, index):
    assert not (op.name == "exp" and dtype_name == "float64" and index == 1), "Tensor-likes are not close!"

@pytest.mark.parametrize("op, dtype_name, index", CASES[:4])
def test_inplace_variant_matches_torch(op, dtype_name, index):
    if index == 1:
        pytest.skip("no in-place variant")

@pytest.mark.parametrize("dtype_name", ["float32"])
def test_dtype_only(dtype_name):
    pass

def test_plain():
    pass

@pytest.mark.xfail(reason="known")
def test_xfail():
    assert False

@pytest.fixture
def broken():
    raise RuntimeError("fixture broke")

def test_setup_error(broken):
    pass
'''


def run_pytest(directory: Path, *args: str) -> subprocess.CompletedProcess:
    """pytest in ``directory`` with the plugin loaded as the entry point would load it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "reports.pytest_plugin", "-p", "no:cacheprovider",
                           "-q", *args], cwd=directory, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def fake_suite(tmp_path):
    suite = tmp_path / "suite"
    (suite / "engine").mkdir(parents=True)
    (suite / "engine" / "test_ops_against_torch.py").write_text(FAKE_OPS_TESTS)
    (suite / "test_broken.py").write_text("import a_module_that_does_not_exist\n")
    return suite


@pytest.fixture
def recorded(fake_suite):
    result = run_pytest(fake_suite, "--gradfuzz-report", "out", "--continue-on-collection-errors")
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"gradfuzz conformance report: {fake_suite / 'out' / 'index.html'}" in result.stdout
    return fake_suite / "out"


def records(directory: Path) -> list[dict]:
    return [json.loads(line) for line in (directory / "results.jsonl").read_text().splitlines()]


# -- the plugin ---------------------------------------------------------------------

def test_plugin_records_op_feature_outcome_duration_and_failure_text(recorded):
    by_node = {r["nodeid"]: r for r in records(recorded) if r["type"] == "conformance"}
    module = "engine/test_ops_against_torch.py"
    failed = by_node[f"{module}::test_op_matches_torch[exp-float64-1]"]
    assert {k: failed[k] for k in ("module", "test", "group", "op", "feature", "dtype", "outcome", "phase")} == {
        "module": module, "test": "test_op_matches_torch", "group": "op", "op": "exp",
        "feature": "float64", "dtype": "float64", "outcome": "failed", "phase": "call"}
    assert failed["params"] == {"op": "exp", "dtype_name": "float64", "index": "1"}
    assert "Tensor-likes are not close!" in failed["message"]
    assert "def test_op_matches_torch" in failed["longrepr"]
    assert isinstance(failed["duration_seconds"], float)

    inplace = by_node[f"{module}::test_inplace_variant_matches_torch[mul-float32-1]"]
    assert (inplace["op"], inplace["feature"], inplace["dtype"]) == ("mul", "inplace", "float32")
    assert (inplace["outcome"], inplace["message"]) == ("skipped", "no in-place variant")
    assert by_node[f"{module}::test_op_matches_torch[nn.functional.gelu-float32-0]"]["op"] == "nn.functional.gelu"

    plain = by_node[f"{module}::test_plain"]
    assert (plain["group"], plain["op"], plain["feature"], plain["outcome"]) == ("module", module, "tests", "passed")
    assert by_node[f"{module}::test_dtype_only[float32]"]["feature"] == "float32"
    assert by_node[f"{module}::test_xfail"]["outcome"] == "skipped"
    assert by_node[f"{module}::test_xfail"]["message"] == "expected to fail: known"
    setup = by_node[f"{module}::test_setup_error"]
    assert (setup["outcome"], setup["phase"], setup["message"]) == ("failed", "setup", "RuntimeError: fixture broke")
    broken = by_node["test_broken.py"]
    assert (broken["outcome"], broken["phase"], broken["op"]) == ("failed", "collect", "test_broken.py")
    assert "a_module_that_does_not_exist" in broken["message"]

    summary = records(recorded)[-1]
    assert summary["type"] == "summary" and summary["status"] == "complete"
    assert summary["outcomes"] == {"passed": 15, "failed": 3, "skipped": 3}
    assert summary["tests"] == 21 and summary["exitstatus"] == 1


def test_plugin_writes_meta(recorded):
    meta = json.loads((recorded / "meta.json").read_text())
    assert meta["kind"] == "conformance"
    assert meta["pytest"] == pytest.__version__
    assert meta["python"] == f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
    assert meta["numpy"] and meta["started"] and meta["machine"]["cpus"]
    assert meta["command"].startswith("pytest ") and "--gradfuzz-report out" in meta["command"]


def test_plugin_renders_the_conformance_page(recorded):
    page = parse(recorded / "index.html")
    assert page.find("span", id="status").text == "failed"
    matrix = keyed_rows(page.find("table", id="matrix-table"))
    assert matrix["exp"] == ["4", "1", "2/2", "1/2 1", "·", "·"]
    assert matrix["mul"] == ["8", "0", "2/2", "2/2", "2/2 +2 skipped", "·"]
    assert "engine/test_ops_against_torch.py" in matrix and "test_broken.py" in matrix
    failures = section(page, "failures")
    assert len(failures.find("table").find("tbody").find_all("tr")) == 3


def test_a_run_without_the_flag_is_unaffected(fake_suite):
    result = run_pytest(fake_suite, "engine", "-rN")
    assert result.returncode == 1
    assert "gradfuzz" not in result.stdout
    assert not (fake_suite / "out").exists() and not list(fake_suite.rglob("results.jsonl"))
    assert "1 failed, 15 passed, 2 skipped, 1 xfailed, 1 error" in result.stdout


def test_importing_the_plugin_imports_neither_torch_nor_engine_nor_renderers():
    code = ("import reports.pytest_plugin, sys\n"
            "assert 'torch' not in sys.modules\n"
            "print(sorted(m for m in ('torch', 'engine', 'fuzz', 'jinja2', 'matplotlib', 'numpy') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_a_plain_pytest_run_with_the_plugin_loaded_does_not_import_torch(tmp_path):
    (tmp_path / "test_trivial.py").write_text(textwrap.dedent("""
        import sys

        def test_nothing_heavy_was_imported():
            assert "reports.pytest_plugin" in sys.modules  # the plugin is loaded...
            assert "torch" not in sys.modules               # ...and brought no torch
            assert "engine" not in sys.modules
            assert "reports.pytest_session" not in sys.modules
    """))
    result = run_pytest(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_the_entry_point_names_the_plugin_module():
    with open(Path(__file__).resolve().parents[2] / "pyproject.toml", "rb") as file:
        declared = tomllib.load(file)["project"]["entry-points"]["pytest11"]
    assert declared == {"gradfuzz": "reports.pytest_plugin"}
    try:
        distribution = importlib.metadata.distribution("gradfuzz")
    except importlib.metadata.PackageNotFoundError:
        return   # a source tree that is not installed: the declaration above is what pip would install
    points = {p.name: p.value for p in distribution.entry_points if p.group == "pytest11"}
    assert points == declared


def test_pyproject_registers_the_plugin():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["pytest11"] == {"gradfuzz": "reports.pytest_plugin"}


def test_the_flag_is_listed_in_help(tmp_path):
    result = run_pytest(tmp_path, "--help")
    assert "--gradfuzz-report=DIR" in result.stdout


def test_an_interrupted_run_keeps_what_finished(tmp_path):
    (tmp_path / "test_stop.py").write_text(textwrap.dedent("""
        def test_first():
            pass

        def test_stop():
            raise KeyboardInterrupt

        def test_never():
            pass
    """))
    result = run_pytest(tmp_path, "--gradfuzz-report", "out")
    assert result.returncode == 2
    lines = records(tmp_path / "out")
    assert [r.get("nodeid") for r in lines if r["type"] == "conformance"] == ["test_stop.py::test_first"]
    assert lines[-1]["status"] == "interrupted"
    assert parse(tmp_path / "out" / "index.html").find("span", id="status").text == "interrupted"


# -- the page, from a results directory written by hand -------------------------------

def test_conformance_page_shows_run_totals_matrix_and_failures(conformance_run):
    path = render_site(conformance_run)
    page = parse(path)
    assert_self_contained(page, path.read_text())
    assert page.find("title").text == "gradfuzz conformance report"
    assert page.find("span", id="status").text == "failed"
    meta = keyed_rows(section(page, "run").find("table"))
    assert meta["pytest"] == ["9.2.0"] and meta["torch"] == ["2.13.0+cpu"]
    assert meta["duration"] == ["1.2 s"] and meta["status"] == ["failed"]
    assert "kind" not in meta
    totals = keyed_rows(section(page, "totals").find("table"))
    assert totals == {"tests": ["8"], "passed": ["6"], "failed": ["1"], "skipped": ["1"]}
    assert section(page, "totals").find("svg")

    matrix = page.find("table", id="matrix-table")
    assert [th.clean_text for th in matrix.find("thead").find_all("th")] == [
        "op", "tests", "failed", "float32", "float64", "inplace", "tests"]
    groups = [[row[0] for row in table_rows(body)] for body in matrix.find_all("tbody")]
    assert groups == [["exp", "mul"], ["tests/engine/test_format.py"]]
    rows = keyed_rows(matrix)
    assert rows["mul"] == ["4", "0", "2/2", "1/1", "1/1", "·"]
    assert rows["exp"] == ["3", "1", "1/1", "0/1 1", "skipped", "·"]
    assert rows["tests/engine/test_format.py"] == ["1", "0", "·", "·", "·", "1/1"]
    link = matrix.find("td", cls="bad").find("a").attrs["href"]
    assert link == "?fail=exp%20float64#failures"

    failures = section(page, "failures")
    [row] = table_rows(failures.find("table"))
    assert row[:2] == ["exp", "float64"] and row[-2:] == ["call", "0.250"]
    details = failures.find("details", cls="failure")
    assert details.find("summary").text == "AssertionError: Tensor-likes are not close!"
    assert "Mismatched elements: 1 / 6" in details.find("pre").text
    slowest = [row[0] for row in table_rows(section(page, "slowest").find("table"))]
    assert slowest[0] == "tests/engine/test_format.py::test_repr"


def test_a_clean_conformance_run_and_a_long_failure_text(tmp_path, conformance_run):
    lines = (conformance_run / "results.jsonl").read_text().splitlines()
    long = {**json.loads(lines[5]), "longrepr": "x" * 10_000}
    (conformance_run / "results.jsonl").write_text("\n".join([*lines[:5], json.dumps(long), *lines[6:]]))
    failures = section(parse(render_site(conformance_run)), "failures")
    assert "4,000 more characters in results.jsonl" in failures.clean_text

    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "meta.json").write_text(json.dumps({"kind": "conformance"}))
    page = parse(render_site(clean))
    assert page.find("span", id="status").text == "interrupted"
    assert "No tests recorded" in page.clean_text and "No failures before the run stopped" in page.clean_text


def test_a_badly_broken_run_still_gives_a_small_page(tmp_path):
    failures = [conformance(f"op{n}", "float32", "failed", index=n, message=f"boom {n}", longrepr="y" * 5_000)
                for n in range(1_000)]
    path = render_site(make_run(tmp_path / "broken", failures, meta=CONFORMANCE_META))
    page = parse(path)
    failures_section = section(page, "failures")
    assert "The first 100 of 1,000 failures show their text here" in failures_section.clean_text
    assert len(failures_section.find_all("details")) == 100
    assert "boom 999" in failures_section.clean_text
    assert path.stat().st_size < 1_500_000
