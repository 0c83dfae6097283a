"""The campaign report: index.html and one page per finding, from results directories built by hand."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from matplotlib.figure import Figure

from reports import render_site
from reports.svg import figure_to_svg
from reports_testkit import (
    assert_self_contained, dl, finding, keyed_rows, make_run, outcome, parse, section,
    summary, table_rows, tensor,
)

ROOT = Path(__file__).resolve().parents[2]


def finding_page(run: Path, slug: str):
    return parse(run / "findings" / f"{slug}.html")


# -- the index ----------------------------------------------------------------------

def test_render_site_writes_index_and_one_page_per_finding(two_findings_run, clean_run):
    path = render_site(two_findings_run)
    assert path == two_findings_run / "index.html"
    assert sorted(p.name for p in (two_findings_run / "findings").iterdir()) == [
        "error-type-matmul-float64.html", "gradient-mul-float32.html"]
    assert render_site(str(clean_run)) == clean_run / "index.html"  # str paths work
    assert render_site(clean_run) == clean_run / "index.html"      # re-rendering overwrites
    assert sorted(p.name for p in clean_run.iterdir()) == ["index.html", "meta.json", "results.jsonl"]


def test_index_shows_run_metadata(clean_run):
    page = parse(render_site(clean_run))
    assert page.find("title").text == "gradfuzz report"
    assert page.find("h1").clean_text.startswith("gradfuzz report")
    meta = keyed_rows(section(page, "run").find("table"))
    assert meta["gradfuzz"] == ["0.1.0"]
    assert meta["torch"] == ["2.13.0+cpu"]
    assert meta["numpy"] == ["2.4.6"]
    assert meta["python"] == ["3.11.7"]
    assert meta["backend under test"] == ["engine"]
    assert meta["seed"] == ["0"]
    assert meta["budget"] == ["60.0 s"]
    assert meta["started"] == ["2026-11-27T10:00:00+00:00"]
    assert meta["duration"] == ["60.1 s"]
    assert meta["command"] == ["gradfuzz run --budget 60s"]
    assert "Linux-6.1-x86_64" in meta["machine"][0] and "cpus: 2" in meta["machine"][0]
    assert meta["status"] == ["complete"]


def test_clean_run_says_no_divergences(clean_run):
    page = parse(render_site(clean_run))
    assert "No divergences found" in section(page, "findings").clean_text
    totals = keyed_rows(section(page, "totals").find("table", cls="totals"))
    assert totals == {"examples run": ["5,000"], "valid programs": ["4,100"],
                      "raised on both sides": ["900"], "findings": ["0"],
                      "matched once differences were judged rounding (float32, or the order of a sum at "
                      "extreme magnitudes)": ["40"]}
    assert page.find("span", id="status").text == "complete"


def test_totals_count_the_findings_where_only_torch_disagrees_with_finite_differences(tmp_path):
    records = [finding("gradient", "stack", "float64", at_fault="torch",
                       adjudication="engine agrees with finite differences"),
               finding("gradient", "mul", adjudication="torch agrees with finite differences")]
    page = parse(render_site(make_run(tmp_path / "torch-bug", records)))
    totals = keyed_rows(page.find("table", cls="totals"))
    assert totals["of which torch disagrees with finite differences (the backend agrees)"] == ["1"]
    assert totals["findings"] == ["2"]


def test_totals_by_verdict_kind_and_per_op(two_findings_run):
    page = parse(render_site(two_findings_run))
    assert keyed_rows(page.find("table", cls="totals"))["findings"] == ["2"]
    verdicts = keyed_rows(page.find("table", cls="verdicts"))
    assert verdicts == {"match": ["4,990", "0"], "gradient": ["3", "1"], "error-type": ["7", "1"]}
    ops = keyed_rows(page.find("table", cls="per-op"))
    assert ops == {"add": ["1,200", "0"], "matmul": ["400", "1"], "mul": ["900", "1"]}
    assert "no coverage by feature" in section(page, "ops").clean_text


def test_coverage_matrix_of_op_by_feature(campaign_run):
    page = parse(render_site(campaign_run))
    assert not page.find_all("p", id="no-coverage")
    table = page.find("table", id="ops-table")
    header = [th.clean_text for th in table.find("thead").find_all("th")]
    assert header == ["op", "examples", "findings", "float32", "float64", "broadcast", "inplace",
                      "double-backward", "error"]
    rows = keyed_rows(table)
    assert len(rows) == 18
    # add: 2 findings (float32 and float64), never exercised with errors.
    assert rows["add"] == ["400", "2", "50 1", "51 1", "52", "53", "54", "·"]
    add_cells = {td.attrs["title"].split(":")[0]: td for td in table.find_all("td", cls="cell")
                 if td.attrs["title"].startswith("add,")}
    assert "empty" in add_cells["add, error"].attrs["class"]
    assert "bad" in add_cells["add, float32"].attrs["class"]
    assert add_cells["add, float32"].find("a").attrs["href"] == "?find=add#findings"
    assert rows["mul"][:3] == ["450", "1", "70 1"]


def test_coverage_with_unknown_features_and_odd_cells(tmp_path):
    record = summary(coverage={"exp": {"float32": {"examples": 3, "findings": 0}, "sparse": {"examples": 2}},
                               "log": "not a dict"})
    page = parse(render_site(make_run(tmp_path / "r", [record])))
    table = page.find("table", id="ops-table")
    assert [th.clean_text for th in table.find_all("th")][-1] == "sparse"
    rows = keyed_rows(table)
    assert rows["exp"][2:] == ["3", "·", "·", "·", "·", "·", "2"]
    assert rows["log"][2:] == ["·"] * 7


def test_findings_index_links_to_one_page_each(two_findings_run):
    page = parse(render_site(two_findings_run))
    index = page.find("table", id="findings-index")
    links = [a.attrs["href"] for a in index.find_all("a")]
    assert links == ["findings/gradient-mul-float32.html", "findings/error-type-matmul-float64.html"]
    assert all((two_findings_run / link).is_file() for link in links)
    assert table_rows(index)[0] == ["gradient", "mul", "float32", "gradient|mul|float32",
                                    "torch agrees with finite differences", "123"]
    assert "bad" in index.find("td", cls="bad").attrs["class"]


def test_interrupted_run_without_summary_counts_findings(interrupted_run):
    page = parse(render_site(interrupted_run))
    assert page.find("span", id="status").text == "interrupted"
    assert keyed_rows(page.find("table", cls="meta"))["status"] == ["interrupted"]
    assert "stopped before writing a summary" in page.find("header").clean_text
    totals = keyed_rows(page.find("table", cls="totals"))
    assert totals == {"examples run": ["—"], "valid programs": ["—"],
                      "raised on both sides": ["—"], "findings": ["3"]}
    verdicts = keyed_rows(page.find("table", cls="verdicts"))
    assert verdicts == {"value": ["—", "1"], "gradient": ["—", "1"], "dtype": ["—", "1"]}
    assert keyed_rows(page.find("table", cls="per-op")) == {"add": ["—", "1"], "exp": ["—", "2"]}
    assert len(list((interrupted_run / "findings").glob("*.html"))) == 3
    assert section(page, "ops").find("svg")  # findings per op instead


def test_interrupted_run_with_a_half_written_line_and_no_findings(tmp_path):
    run = make_run(tmp_path / "r", [], tail='{"type": "finding", "sig')
    page = parse(render_site(run))
    assert page.find("span", id="status").text == "interrupted"
    assert "Skipped unreadable lines of results.jsonl: 2." in page.clean_text
    assert "No divergences found before the run stopped" in section(page, "findings").clean_text


def test_campaign_status_words_other_than_complete(tmp_path):
    page = parse(render_site(make_run(tmp_path / "r", [summary(status="max-findings")])))
    badge = page.find("span", id="status")
    assert badge.text == "max-findings" and "status-good" in badge.attrs["class"]


def test_duplicate_findings_shown_once_and_last_summary_wins(tmp_path):
    records = [
        finding("value", "exp"),
        summary(examples=10, status="interrupted"),
        finding("value", "exp", found_after_examples=99),
        summary(examples=20, findings=1),
    ]
    run = make_run(tmp_path / "r", records)
    page = parse(render_site(run))
    assert len(table_rows(page.find("table", id="findings-index"))) == 1
    fields = dl(finding_page(run, "value-exp-float32"))
    assert fields["found after"].startswith("10 examples")
    assert fields["recorded"] == "2 times"
    assert keyed_rows(page.find("table", cls="totals"))["examples run"] == ["20"]
    assert page.find("span", id="status").text == "complete"


def test_stale_finding_pages_are_removed_and_foreign_files_kept(tmp_path):
    run = make_run(tmp_path / "r", [finding("value", "exp"), finding("value", "log")])
    render_site(run)
    (run / "findings" / "notes.html").write_text("<p>mine</p>")
    make_run(run, [finding("value", "exp")])
    render_site(run)
    assert sorted(p.name for p in (run / "findings").glob("*.html")) == ["notes.html", "value-exp-float32.html"]


# -- a finding's page ---------------------------------------------------------------

def test_finding_page_details_replay_and_reproducer(two_findings_run):
    render_site(two_findings_run)
    page = finding_page(two_findings_run, "gradient-mul-float32")
    assert page.find("title").text == "gradient|mul|float32 · gradfuzz finding"
    assert page.find("h1").clean_text == "gradient in mul (float32)"
    fields = dl(section(page, "summary"))
    assert fields["signature"] == "gradient|mul|float32"
    assert fields["kind"] == "gradient" and fields["op"] == "mul" and fields["dtype"] == "float32"
    assert fields["where"] == "grad x0"
    assert fields["detail"] == "max abs error 2.0 at (1,) in grad of x0"
    assert fields["finite differences"] == "torch agrees with finite differences"
    assert fields["found after"] == "123 examples, 4.2 s"
    replay = section(page, "replay").find("pre").text
    assert replay == f"gradfuzz replay {two_findings_run / 'findings/gradient-mul-float32.json'}"
    code = section(page, "reproducer").find("pre", cls="reproducer").find("code")
    assert code.text == (two_findings_run / "repro/gradient-mul-float32.py").read_text()
    nav = page.find("nav")
    assert nav.find("a").attrs["href"] == "../index.html#findings"
    assert nav.find("a", rel="next").attrs["href"] == "error-type-matmul-float64.html"
    other = finding_page(two_findings_run, "error-type-matmul-float64")
    assert dl(other)["finite differences"] == "not adjudicated"
    assert other.find("a", rel="prev").attrs["href"] == "gradient-mul-float32.html"


def test_finding_page_outcomes_side_by_side_engine_left_torch_right(two_findings_run):
    render_site(two_findings_run)
    page = finding_page(two_findings_run, "gradient-mul-float32")
    engine, torch = page.find("div", cls="outcomes").find_all("div", cls="outcome")
    assert (engine.attrs["data-side"], torch.attrs["data-side"]) == ("engine", "torch")
    engine_tensors = [t.clean_text for t in engine.find_all("div", cls="tensor")]
    assert engine_tensors[0] == "v1 float32, shape (2, 2), grad_fn=MulBackward0 [[1. 2.] [3. 4.]]"
    assert engine_tensors[1:] == ["x0 float32, shape (2,) [2. 3.]", "x1 None"]
    assert "[2. 5.]" in torch.text
    assert "UserWarning: torch warns" in torch.find("ul", cls="warnings").clean_text
    assert engine.find("pre").text == "[[1. 2.]\n [3. 4.]]"  # numpy layout kept

    errors = finding_page(two_findings_run, "error-type-matmul-float64")
    engine, torch = errors.find_all("div", cls="outcome")
    assert "ValueError (step 1): bad shapes" in engine.clean_text
    assert "v1 raised RuntimeError: size mismatch" in torch.clean_text
    assert "No value or gradient was computed on both sides" in section(errors, "difference").clean_text


def test_finding_page_difference_largest_errors_and_where(two_findings_run):
    render_site(two_findings_run)
    difference = section(finding_page(two_findings_run, "gradient-mul-float32"), "difference")
    largest = [p.clean_text for p in difference.find_all("p", cls="largest")]
    assert largest == ["Largest absolute error 2 in grad x0 at [1]: engine 3.0, torch 5.0.",
                       "Largest relative error 0.4 in grad x0 at [1]: engine 3.0, torch 5.0."]
    table = difference.find("table", id="differences")
    rows = table_rows(table)
    assert rows[0] == ["grad x0", "float32", "(2,)", "1 of 2", "2", "[1]", "3.0", "5.0", "0.4", "[1]"]
    assert rows[1][:4] == ["v1", "float32", "(2, 2)", "0 of 4"]
    assert "flagged" in table.find("tbody").find("tr").attrs["class"]  # the comparator's "where"


def test_finding_page_difference_of_realistic_gradients(campaign_run):
    render_site(campaign_run)
    difference = section(finding_page(campaign_run, "gradient-mul-float32"), "difference")
    largest = [p.clean_text for p in difference.find_all("p", cls="largest")]
    # NaN equals NaN and inf equals inf; the one real difference is at [2, 1].
    assert largest == ["Largest absolute error 2.5 in grad x0 at [2, 1]: engine 4.5, torch 2.0.",
                       "Largest relative error 1.25 in grad x0 at [2, 1]: engine 4.5, torch 2.0."]


def test_finding_page_difference_of_a_gradient_that_is_none_on_one_side(tmp_path):
    value = tensor([1.0], [1], dtype="float64", ref="v1")
    record = finding("gradient-none", "add", "float64", where="grad x1",
                     engine=outcome(values=[value], grads={"x1": None}),
                     torch=outcome(values=[value], grads={"x1": tensor([1.0], [1], dtype="float64")}))
    run = make_run(tmp_path / "r", [record])
    render_site(run)
    difference = section(finding_page(run, "gradient-none-add-float64"), "difference")
    assert "what differs is marked in the table" in difference.clean_text
    rows = table_rows(difference.find("table"))
    assert rows[0] == ["grad x1", "— vs float64", "—", "None on the tested backend only"]
    assert rows[1][:4] == ["v1", "float64", "(1,)", "0 of 1"]


def test_nonfinite_values_print_like_numpy(tmp_path):
    values = [
        tensor([1.0, "nan", "inf", "-inf"], [4], grad_fn="ExpBackward0", ref="v1"),
        tensor("nan", [], dtype="float64", ref="v2"),
        tensor([0.1, 0.2], [2], dtype="float64", ref="v3"),
    ]
    record = finding("value", "exp", engine=outcome(values=values),
                     torch=outcome(grads={"x0": tensor(["-inf", 0.0], [2])}))
    run = make_run(tmp_path / "r", [record, summary(findings=1)])
    render_site(run)
    outcomes = section(finding_page(run, "value-exp-float32"), "outcomes")
    assert [pre.text for pre in outcomes.find_all("pre")] == ["[  1.  nan  inf -inf]", "nan", "[0.1 0.2]", "[-inf   0.]"]


def test_html_special_characters_are_escaped(tmp_path):
    nasty = """<script>alert("x")</script> & 'q' <img src=x onerror=alert(1)>"""
    record = finding(
        "error-message", "lt<gt>&amp",
        detail=f"detail {nasty}",
        adjudication=f"adjudication {nasty}",
        engine=outcome(error={"type": "RuntimeError", "message": nasty, "where": "backward"},
                       warnings=[{"category": "UserWarning", "message": nasty}]),
        torch=outcome(values=[{"ref": "v1", "error": {"type": "ValueError", "message": nasty}}]),
    )
    record["signature"] = f"error-message|{nasty}"
    run = make_run(tmp_path / "r", [record], reproducers=False)
    (run / "repro").mkdir()
    source = f"if a < b and c > d:\n    print({nasty!r})  # &lt; stays literal\n"
    (run / record["reproducer"]).write_text(source, encoding="utf-8")

    index_path = render_site(run)
    [page_path] = (run / "findings").glob("*.html")
    assert all(c.isalnum() or c in "-." for c in page_path.name)
    for path in (index_path, page_path):
        html = path.read_text(encoding="utf-8")
        assert "<script>alert" not in html and "<img" not in html
        page = parse(path)
        assert len(page.find_all("script")) == 1  # only the page's own
        assert not page.find_all("img")
    page = parse(page_path)
    fields = dl(page)
    assert fields["detail"] == " ".join(f"detail {nasty}".split())
    assert fields["finite differences"] == " ".join(f"adjudication {nasty}".split())
    assert fields["signature"] == " ".join(f"error-message|{nasty}".split())
    assert fields["op"] == "lt<gt>&amp"
    assert page.find("pre", cls="reproducer").text == source
    engine, torch = page.find_all("div", cls="outcome")
    assert f"RuntimeError (backward): {nasty}" in engine.text
    assert f"UserWarning: {nasty}" in engine.find("ul").text
    assert f"ValueError: {nasty}" in torch.text
    # The op name survives inside the index's SVG chart, as text.
    assert "lt<gt>&amp" in [t.text for t in parse(index_path).find("svg").find_all("text")]


def test_missing_reproducer_is_reported_not_fatal(tmp_path):
    records = [finding("value", "exp"), finding("value", "log", reproducer=None, finding_file=None),
               finding("value", "sin", reproducer="../../etc/passwd")]
    run = make_run(tmp_path / "r", records, reproducers=False)
    render_site(run)
    assert "reproducer not readable" in finding_page(run, "value-exp-float32").clean_text
    log = finding_page(run, "value-log-float32").clean_text
    assert "no reproducer recorded" in log and "no finding file recorded" in log
    assert "outside the results directory" in finding_page(run, "value-sin-float32").clean_text


def test_colliding_slugs_get_distinct_pages(tmp_path):
    records = [finding("value", "a"), finding("value", "a")]
    records[1]["signature"] = "value-a-float32"  # slugifies like "value|a|float32"
    run = make_run(tmp_path / "r", records)
    page = parse(render_site(run))
    links = sorted(a.attrs["href"] for a in page.find("table", id="findings-index").find_all("a"))
    assert links == ["findings/value-a-float32-2.html", "findings/value-a-float32.html"]


# -- self-contained and small ----------------------------------------------------------

@pytest.mark.parametrize("run", ["clean_run", "two_findings_run", "interrupted_run", "campaign_run"])
def test_every_page_is_self_contained_with_inline_svg(run, request):
    directory = request.getfixturevalue(run)
    index = render_site(directory)
    for path in [index, *(directory / "findings").glob("*.html")]:
        html = path.read_text(encoding="utf-8")
        page = parse(path)
        assert_self_contained(page, html)
        assert page.find("style").text.strip()  # CSS inline
        assert "@media print" in page.find("style").text
        assert page.find("meta", name="generator")
    svg = section(parse(index), "ops").find("figure").find("svg")
    assert svg.find_all("text")  # text kept as text, not glyph paths
    assert "<?xml" not in index.read_text() and "<!DOCTYPE svg" not in index.read_text()


def test_pages_of_a_run_with_20_findings_stay_small(campaign_run):
    index = render_site(campaign_run)
    pages = sorted((campaign_run / "findings").glob("*.html"))
    assert len(pages) == 20
    assert index.stat().st_size < 300_000
    assert max(p.stat().st_size for p in pages) < 50_000
    assert index.stat().st_size + sum(p.stat().st_size for p in pages) < 500_000


def test_a_huge_tensor_is_summarized_not_dumped(tmp_path):
    big = [[float(i * 100 + j) for j in range(100)] for i in range(100)]
    record = finding("value", "exp", engine=outcome(values=[tensor(big, [100, 100], ref="v1")]),
                     torch=outcome(values=[tensor(big[::-1], [100, 100], ref="v1")]))
    run = make_run(tmp_path / "r", [record])
    render_site(run)
    page = run / "findings" / "value-exp-float32.html"
    assert page.stat().st_size < 40_000
    assert "..." in section(parse(page), "outcomes").find("pre").text


def test_missing_results_directory_raises(tmp_path):
    with pytest.raises(NotADirectoryError):
        render_site(tmp_path / "nope")
    with pytest.raises(FileNotFoundError):
        render_site(tmp_path)


def test_figure_to_svg_strips_the_xml_prolog():
    fig = Figure(figsize=(2, 1))
    fig.add_subplot().plot([0, 1], [1, 0])
    svg = figure_to_svg(fig)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "<?xml" not in svg and "DOCTYPE" not in svg and "<metadata" not in svg
    assert figure_to_svg(fig) == svg  # reproducible


def test_rendering_is_reproducible(campaign_run):
    index = render_site(campaign_run)
    first = [index.read_bytes(), (campaign_run / "findings/gradient-mul-float32.html").read_bytes()]
    render_site(campaign_run)
    assert [index.read_bytes(), (campaign_run / "findings/gradient-mul-float32.html").read_bytes()] == first


def test_rendering_imports_neither_engine_nor_torch_nor_fuzz(two_findings_run):
    code = (
        "import sys, reports\n"
        f"reports.render_site({str(two_findings_run)!r})\n"
        "print(sorted(m for m in ('engine', 'torch', 'fuzz', 'oracle') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"

