"""The history page over a folder of nightly runs (conftest.nightly: A and B, +C, -B, -A +D)."""

from __future__ import annotations

import json
import os

import pytest

from reports import render_history
from reports_testkit import (
    CONFORMANCE_META, assert_self_contained, conformance, grad_finding, make_run, parse, section,
    summary, table_rows,
)


def test_history_page_is_written_into_the_folder_and_each_run_rendered(nightly):
    path = render_history(nightly)
    assert path == nightly / "index.html"
    for day in ("2026-11-24", "2026-11-25", "2026-11-26", "2026-11-27"):
        assert (nightly / day / "index.html").is_file()
        assert (nightly / day / "findings").is_dir()
    assert not (nightly / "scratch" / "index.html").exists()
    page = parse(path)
    assert page.find("title").text == "gradfuzz history · nightly"
    assert_self_contained(page, path.read_text())


def test_runs_table_newest_first_with_new_and_fixed(nightly):
    page = parse(render_history(nightly))
    table = section(page, "runs").find("table")
    rows = [row[:7] for row in table_rows(table)]
    assert rows == [
        ["2026-11-27", "2026-11-27T02:00:00+00:00", "interrupted", "1,500", "2", "1", "1"],
        ["2026-11-26", "2026-11-26T02:00:00+00:00", "completed", "3,900", "2", "0", "1"],
        ["2026-11-25", "2026-11-25T02:00:00+00:00", "completed", "4,200", "3", "1", "0"],
        ["2026-11-24", "2026-11-24T02:00:00+00:00", "completed", "4,000", "2", "—", "—"],
    ]
    links = [a.attrs["href"] for a in table.find_all("a")]
    assert links == [f"{day}/index.html" for day in ("2026-11-27", "2026-11-26", "2026-11-25", "2026-11-24")]


def test_signatures_open_and_fixed_with_links_to_their_last_finding_page(nightly):
    page = parse(render_history(nightly))
    table = section(page, "signatures").find("table")
    rows = {row[0]: row[1:5] for row in table_rows(table)}
    assert rows == {
        "gradient|sin|float32": ["open", "2026-11-25", "2026-11-27", "3"],
        "gradient|tanh|float32": ["open", "2026-11-27", "2026-11-27", "1"],
        "gradient|exp|float32": ["fixed", "2026-11-24", "2026-11-26", "3"],
        "gradient|log|float32": ["fixed", "2026-11-24", "2026-11-25", "2"],
    }
    href = table.find("a").attrs["href"]
    assert href == "2026-11-27/findings/gradient-sin-float32.html"
    assert (nightly / href).is_file()
    marks = table.find("tbody").find("tr").find("span", cls="presence").find_all("i")
    assert ["on" in m.attrs.get("class", "") for m in marks] == [False, True, True, True]


def test_trend_chart_is_inline_svg_with_run_names(nightly):
    chart = section(parse(render_history(nightly)), "trends").find("svg")
    texts = [t.clean_text for t in chart.find_all("text")]
    assert "2026-11-24" in texts and "2026-11-27" in texts
    assert "examples per run (red: interrupted)" in texts
    assert "new (up) and fixed (down) since the previous run" in texts


def test_runs_order_by_start_time_then_natural_name(tmp_path):
    folder = tmp_path / "h"
    for name, started in (("run-10", None), ("run-2", None), ("b", "2026-01-02"), ("a", "2026-01-03")):
        meta = {"started": started} if started else {}
        make_run(folder / name, [summary()], meta=meta)
    names = [row[0] for row in table_rows(section(parse(render_history(folder)), "runs").find("table"))]
    assert names == ["a", "b", "run-10", "run-2"]  # newest first: the reverse of run-2, run-10, b, a


def test_only_stale_run_pages_are_rerendered(nightly):
    render_history(nightly)
    index = nightly / "2026-11-24" / "index.html"
    index.write_text("kept")
    os.utime(index, (2e9, 2e9))  # newer than its results
    render_history(nightly)
    assert index.read_text() == "kept"
    render_history(nightly, render_runs=False)
    os.utime(nightly / "2026-11-24" / "results.jsonl", (3e9, 3e9))
    render_history(nightly)
    assert index.read_text() != "kept"


def test_an_unreadable_run_is_noted_and_skipped(nightly):
    (nightly / "2026-11-28").mkdir()
    (nightly / "2026-11-28" / "meta.json").write_text("[1, 2]")
    page = parse(render_history(nightly))
    assert "Skipped 2026-11-28" in page.find("header").clean_text
    assert len(table_rows(section(page, "runs").find("table"))) == 4


def test_empty_folder_and_missing_folder(tmp_path):
    page = parse(render_history(tmp_path))
    assert "No runs in this folder yet" in page.clean_text
    assert "No findings in any run" in page.clean_text
    with pytest.raises(NotADirectoryError):
        render_history(tmp_path / "nope")


def test_conformance_runs_count_tests_and_failing_tests(tmp_path):
    folder = tmp_path / "h"
    for day, outcome in (("d1", "failed"), ("d2", "passed")):
        records = [conformance("exp", "float64", outcome), conformance("mul", "float32"),
                   {"type": "summary", "status": "complete", "tests": 2, "outcomes": {}}]
        make_run(folder / day, records, meta={**CONFORMANCE_META, "started": day})
    make_run(folder / "d3", [grad_finding("sin"), summary(examples=7)], meta={"started": "d3"})
    page = parse(render_history(folder))
    rows = [row[:7] for row in table_rows(section(page, "runs").find("table"))]
    assert [row[3:] for row in rows] == [["7", "1", "1", "0"], ["2", "0", "0", "1"], ["2", "1", "—", "—"]]
    failing = json.loads((folder / "d1" / "results.jsonl").read_text().splitlines()[0])["nodeid"]
    assert failing in section(page, "signatures").clean_text
