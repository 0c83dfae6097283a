"""The campaign report, rendered from results directories built by hand.

Pages are checked through the standard library's html.parser, so assertions
see what a browser would show (entities decoded), not raw markup.
"""

from __future__ import annotations

import json
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from matplotlib.figure import Figure

from reports import render_site
from reports.svg import figure_to_svg

META = {
    "gradfuzz": "0.1.0",
    "torch": "2.13.0+cpu",
    "numpy": "2.4.6",
    "python": "3.11.7",
    "backend": "engine",
    "seed": 0,
    "budget_seconds": 60.0,
    "started": "2026-11-27T10:00:00+00:00",
    "command": "gradfuzz run --budget 60s",
    "machine": {"platform": "Linux-6.1-x86_64", "processor": "x86_64", "cpus": 2},
}


# -- building results directories -----------------------------------------------

def tensor(data, shape, dtype="float32", **extra):
    return {"dtype": dtype, "shape": shape, "data": data, **extra}


def outcome(values=(), error=None, grads=None, warnings=()):
    return {"values": list(values), "error": error, "grads": grads or {}, "warnings": list(warnings)}


def finding(kind, op, dtype="float32", *, engine=None, torch=None, **fields):
    slug = f"{kind}-{op}-{dtype}"
    record = {
        "type": "finding",
        "signature": f"{kind}|{op}|{dtype}",
        "kind": kind,
        "op": op,
        "dtype": dtype,
        "detail": f"{kind} differs in {op}",
        "adjudication": None,
        "steps": 1,
        "program": {"inputs": [], "steps": []},
        "reproducer": f"repro/{slug}.py",
        "finding_file": f"findings/{slug}.json",
        "found_after_examples": 10,
        "found_after_seconds": 0.5,
        "outcomes": {"engine": engine or outcome(), "torch": torch or outcome()},
    }
    record.update(fields)
    return record


def summary(**fields):
    record = {
        "type": "summary", "status": "complete", "examples": 5000, "valid": 4100,
        "raised_both": 900, "duration_seconds": 60.1,
        "verdicts": {"match": 5000}, "ops": {"add": {"examples": 5000, "findings": 0}},
        "findings": 0,
    }
    record.update(fields)
    return record


def make_run(directory: Path, records, *, meta=META, reproducers=True, tail="") -> Path:
    """Write meta.json, results.jsonl and each finding's reproducer file."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    lines = [json.dumps(record) for record in records]
    (directory / "results.jsonl").write_text("\n".join(lines) + "\n" + tail, encoding="utf-8")
    for record in records:
        if reproducers and record.get("type") == "finding" and record.get("reproducer"):
            path = directory / record["reproducer"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"# reproducer for {record['signature']}\nprint('hi')\n", encoding="utf-8")
    return directory


# -- reading pages back -----------------------------------------------------------

class Node:
    def __init__(self, tag, attrs, parent):
        self.tag, self.attrs, self.parent, self.children = tag, attrs, parent, []

    def iter(self):
        for child in self.children:
            if isinstance(child, Node):
                yield child
                yield from child.iter()

    def find_all(self, tag=None, *, cls=None, **attrs):
        return [
            node for node in self.iter()
            if (tag is None or node.tag == tag)
            and (cls is None or cls in node.attrs.get("class", "").split())
            and all(node.attrs.get(key) == value for key, value in attrs.items())
        ]

    def find(self, tag=None, **kwargs):
        found = self.find_all(tag, **kwargs)
        assert found, f"no <{tag}> with {kwargs}"
        return found[0]

    @property
    def text(self):
        return "".join(c if isinstance(c, str) else c.text for c in self.children)

    @property
    def clean_text(self):
        return " ".join(self.text.split())


class TreeBuilder(HTMLParser):
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = self.current = Node("#document", {}, None)

    def handle_starttag(self, tag, attrs):
        node = Node(tag, {k: v or "" for k, v in attrs}, self.current)
        self.current.children.append(node)
        if tag not in self.VOID:
            self.current = node

    def handle_startendtag(self, tag, attrs):
        self.current.children.append(Node(tag, {k: v or "" for k, v in attrs}, self.current))

    def handle_endtag(self, tag):
        node = self.current
        while node is not self.root and node.tag != tag:
            node = node.parent
        if node is not self.root:
            self.current = node.parent

    def handle_data(self, data):
        self.current.children.append(data)


def parse(path: Path) -> Node:
    builder = TreeBuilder()
    builder.feed(path.read_text(encoding="utf-8"))
    builder.close()
    return builder.root


def table_rows(table: Node) -> list[list[str]]:
    return [[cell.clean_text for cell in row.find_all() if cell.tag in ("th", "td")]
            for row in table.find_all("tr") if row.find_all("td")]


def keyed_rows(table: Node) -> dict[str, list[str]]:
    return {row[0]: row[1:] for row in table_rows(table)}


def section(page: Node, id_: str) -> Node:
    return page.find("section", id=id_)


def dl(node: Node) -> dict[str, str]:
    terms = [c for c in node.find("dl").children if isinstance(c, Node)]
    return {dt.clean_text: dd.clean_text for dt, dd in zip(terms[::2], terms[1::2])}


def assert_no_external_references(page: Node, html: str):
    for node in page.iter():
        for name in ("src", "href", "xlink:href", "action", "data"):
            value = node.attrs.get(name, "").strip().lower()
            assert not value.startswith(("http:", "https:", "//")), (node.tag, name, value)
    assert not page.find_all("link")
    assert not [s for s in page.find_all("script") if "src" in s.attrs]
    assert "url(http" not in html and "@import" not in html


# -- runs -------------------------------------------------------------------------

@pytest.fixture
def clean_run(tmp_path):
    return make_run(tmp_path / "clean", [summary()])


@pytest.fixture
def two_findings_run(tmp_path):
    grad_engine = outcome(
        values=[tensor([[1.0, 2.0], [3.0, 4.0]], [2, 2], grad_fn="MulBackward0", ref="v1")],
        grads={"x0": tensor([2.0, 3.0], [2]), "x1": None},
    )
    grad_torch = outcome(
        values=[tensor([[1.0, 2.0], [3.0, 4.0]], [2, 2], grad_fn="MulBackward0", ref="v1")],
        grads={"x0": tensor([2.0, 5.0], [2]), "x1": None},
        warnings=[{"category": "UserWarning", "message": "torch warns"}],
    )
    error_engine = outcome(
        values=[{"ref": "v1", "error": {"type": "ValueError", "message": "bad shapes"}}],
        error={"type": "ValueError", "message": "bad shapes", "where": "step 1"},
    )
    error_torch = outcome(
        values=[{"ref": "v1", "error": {"type": "RuntimeError", "message": "size mismatch"}}],
        error={"type": "RuntimeError", "message": "size mismatch", "where": "step 1"},
    )
    records = [
        finding("gradient", "mul", engine=grad_engine, torch=grad_torch,
                detail="max abs error 2.0 at (1,) in grad of x0",
                adjudication="engine disagrees with finite differences", steps=2,
                found_after_examples=123, found_after_seconds=4.2),
        finding("error-type", "matmul", "float64", engine=error_engine, torch=error_torch),
        summary(examples=5000, valid=4100, raised_both=900,
                verdicts={"match": 4990, "gradient": 3, "error-type": 7},
                ops={"mul": {"examples": 900, "findings": 1},
                     "matmul": {"examples": 400, "findings": 1},
                     "add": {"examples": 1200, "findings": 0}},
                findings=2),
    ]
    return make_run(tmp_path / "two", records)


@pytest.fixture
def interrupted_run(tmp_path):
    records = [
        finding("value", "exp"),
        finding("gradient", "exp", "float64"),
        finding("dtype", "add"),
    ]
    return make_run(tmp_path / "interrupted", records)


# -- tests ------------------------------------------------------------------------

def test_render_site_writes_index_html_into_the_results_directory(clean_run):
    path = render_site(clean_run)
    assert path == clean_run / "index.html"
    assert path.is_file()
    assert render_site(str(clean_run)) == path  # str paths work; re-rendering overwrites
    assert sorted(p.name for p in clean_run.iterdir()) == ["index.html", "meta.json", "results.jsonl"]


def test_page_shows_run_metadata(clean_run):
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
    findings = section(page, "findings")
    assert "No divergences found" in findings.clean_text
    assert not page.find_all("section", cls="finding")
    totals = keyed_rows(section(page, "totals").find("table", cls="totals"))
    assert totals == {"examples run": ["5,000"], "valid programs": ["4,100"],
                      "raised on both sides": ["900"], "findings": ["0"]}
    assert page.find("span", id="status").text == "complete"


def test_two_findings_counts(two_findings_run):
    page = parse(render_site(two_findings_run))
    totals = keyed_rows(page.find("table", cls="totals"))
    assert totals["findings"] == ["2"]
    assert totals["examples run"] == ["5,000"]
    verdicts = keyed_rows(page.find("table", cls="verdicts"))
    assert verdicts == {"match": ["4,990", "0"], "gradient": ["3", "1"], "error-type": ["7", "1"]}
    ops = keyed_rows(page.find("table", cls="per-op"))
    assert ops == {"add": ["1,200", "0"], "matmul": ["400", "1"], "mul": ["900", "1"]}
    assert "No divergences found" not in page.clean_text


def test_one_section_per_finding_with_its_details(two_findings_run):
    page = parse(render_site(two_findings_run))
    sections = page.find_all("section", cls="finding")
    assert [s.attrs["id"] for s in sections] == ["gradient-mul-float32", "error-type-matmul-float64"]
    # The index links to each section.
    links = [a.attrs["href"] for a in page.find("table", id="findings-index").find_all("a")]
    assert links == ["#gradient-mul-float32", "#error-type-matmul-float64"]

    grad = section(page, "gradient-mul-float32")
    fields = dl(grad)
    assert fields["kind"] == "gradient"
    assert fields["op"] == "mul"
    assert fields["dtype"] == "float32"
    assert fields["signature"] == "gradient|mul|float32"
    assert fields["detail"] == "max abs error 2.0 at (1,) in grad of x0"
    assert fields["adjudication"] == "engine disagrees with finite differences"
    assert fields["found after"] == "123 examples, 4.2 s"
    assert dl(section(page, "error-type-matmul-float64"))["adjudication"] == "not adjudicated"

    code = grad.find("pre", cls="reproducer").find("code")
    assert code.text == (two_findings_run / "repro/gradient-mul-float32.py").read_text()
    replay = grad.find("pre", cls="replay").text
    assert replay == f"gradfuzz replay {two_findings_run / 'findings/gradient-mul-float32.json'}"


def test_outcomes_side_by_side_engine_left_torch_right(two_findings_run):
    page = parse(render_site(two_findings_run))
    grad = section(page, "gradient-mul-float32")
    engine, torch = grad.find("div", cls="outcomes").find_all("div", cls="outcome")
    assert (engine.attrs["data-side"], torch.attrs["data-side"]) == ("engine", "torch")
    assert engine.find("h5").text == "engine" and torch.find("h5").text == "torch"

    engine_tensors = [t.clean_text for t in engine.find_all("div", cls="tensor")]
    assert engine_tensors[0] == "v1 float32, shape (2, 2), grad_fn=MulBackward0 [[1. 2.] [3. 4.]]"
    assert engine_tensors[1:] == ["x0 float32, shape (2,) [2. 3.]", "x1 None"]
    assert "[2. 5.]" in torch.text
    assert "UserWarning: torch warns" in torch.find("ul", cls="warnings").clean_text
    assert engine.find("pre").text == "[[1. 2.]\n [3. 4.]]"  # numpy layout kept

    errors = section(page, "error-type-matmul-float64")
    engine, torch = errors.find_all("div", cls="outcome")
    assert "ValueError (step 1): bad shapes" in engine.clean_text
    assert "v1 raised RuntimeError: size mismatch" in torch.clean_text


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
    ops = keyed_rows(page.find("table", cls="per-op"))
    assert ops == {"add": ["—", "1"], "exp": ["—", "2"]}
    assert len(page.find_all("section", cls="finding")) == 3
    assert section(page, "ops").find("svg")  # findings per op instead


def test_interrupted_run_with_a_half_written_line_and_no_findings(tmp_path):
    run = make_run(tmp_path / "r", [], tail='{"type": "finding", "sig')
    page = parse(render_site(run))
    assert page.find("span", id="status").text == "interrupted"
    assert "Skipped unreadable lines of results.jsonl: 2." in page.clean_text
    assert "No divergences found before the run stopped" in section(page, "findings").clean_text


def test_duplicate_findings_shown_once_and_last_summary_wins(tmp_path):
    records = [
        finding("value", "exp"),
        summary(examples=10, status="interrupted"),
        finding("value", "exp", found_after_examples=99),
        summary(examples=20, findings=1),
    ]
    page = parse(render_site(make_run(tmp_path / "r", records)))
    sections = page.find_all("section", cls="finding")
    assert len(sections) == 1
    assert dl(sections[0])["found after"].startswith("10 examples")
    assert dl(sections[0])["recorded"] == "2 times"
    assert keyed_rows(page.find("table", cls="totals"))["examples run"] == ["20"]
    assert page.find("span", id="status").text == "complete"


def test_nonfinite_values_print_like_numpy(tmp_path):
    values = [
        tensor([1.0, "nan", "inf", "-inf"], [4], grad_fn="ExpBackward0", ref="v1"),
        tensor("nan", [], dtype="float64", ref="v2"),
        tensor([0.1, 0.2], [2], dtype="float64", ref="v3"),
    ]
    record = finding("value", "exp", engine=outcome(values=values),
                     torch=outcome(grads={"x0": tensor(["-inf", 0.0], [2])}))
    page = parse(render_site(make_run(tmp_path / "r", [record, summary(findings=1)])))
    pres = [pre.text for pre in section(page, "value-exp-float32").find_all("pre")
            if "reproducer" not in pre.attrs.get("class", "") and "replay" not in pre.attrs.get("class", "")]
    assert pres == ["[  1.  nan  inf -inf]", "nan", "[0.1 0.2]", "[-inf   0.]"]


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

    path = render_site(run)
    html = path.read_text(encoding="utf-8")
    assert "<script>alert" not in html and "<img" not in html
    page = parse(path)
    # Only the page's own script, and no element came from the data.
    assert len(page.find_all("script")) == 1
    assert not page.find_all("img")

    [found] = page.find_all("section", cls="finding")
    fields = dl(found)
    assert fields["detail"] == " ".join(f"detail {nasty}".split())
    assert fields["adjudication"] == " ".join(f"adjudication {nasty}".split())
    assert fields["signature"] == " ".join(f"error-message|{nasty}".split())
    assert fields["op"] == "lt<gt>&amp"
    assert found.find("pre", cls="reproducer").text == source
    engine, torch = found.find_all("div", cls="outcome")
    assert f"RuntimeError (backward): {nasty}" in engine.text
    assert f"UserWarning: {nasty}" in engine.find("ul").text
    assert f"ValueError: {nasty}" in torch.text
    # The slug is a plain id; the op name survives inside the SVG chart too.
    assert all(c.isalnum() or c == "-" for c in found.attrs["id"])
    assert "lt<gt>&amp" in [t.text for t in page.find("svg").find_all("text")]


@pytest.mark.parametrize("run", ["clean_run", "two_findings_run", "interrupted_run"])
def test_self_contained_with_inline_svg(run, request):
    path = render_site(request.getfixturevalue(run))
    html = path.read_text(encoding="utf-8")
    page = parse(path)
    assert_no_external_references(page, html)
    assert page.find("style").text.strip()  # CSS inline
    svg = section(page, "ops").find("figure").find("svg")
    assert svg.find_all("text")  # text kept as text, not glyph paths
    assert "<?xml" not in html and "<!DOCTYPE svg" not in html
    assert len(html) < 200_000


def test_missing_reproducer_is_reported_not_fatal(tmp_path):
    records = [finding("value", "exp"), finding("value", "log", reproducer=None, finding_file=None),
               finding("value", "sin", reproducer="../../etc/passwd")]
    run = make_run(tmp_path / "r", records, reproducers=False)
    page = parse(render_site(run))
    assert "reproducer not readable" in section(page, "value-exp-float32").clean_text
    log = section(page, "value-log-float32").clean_text
    assert "no reproducer recorded" in log and "no finding file recorded" in log
    assert "outside the results directory" in section(page, "value-sin-float32").clean_text


def test_colliding_slugs_get_distinct_ids(tmp_path):
    records = [finding("value", "a"), finding("value", "a")]
    records[1]["signature"] = "value-a-float32"  # slugifies like "value|a|float32"
    page = parse(render_site(make_run(tmp_path / "r", records)))
    ids = [s.attrs["id"] for s in page.find_all("section", cls="finding")]
    assert sorted(ids) == ["value-a-float32", "value-a-float32-2"]


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


def test_rendering_imports_neither_engine_nor_torch_nor_fuzz(two_findings_run):
    root = Path(__file__).resolve().parents[2]
    code = (
        "import sys, reports\n"
        f"reports.render_site({str(two_findings_run)!r})\n"
        "print(sorted(m for m in ('engine', 'torch', 'fuzz', 'oracle') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                            text=True, check=True)
    assert result.stdout.strip() == "[]"
