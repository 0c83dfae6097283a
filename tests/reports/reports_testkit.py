"""Results directories written by hand, and pages read back as a browser would see them.

Builders write the documented formats of ``reports/results.py`` directly;
the reports never see the fuzzer. Pages are parsed with the standard library's
html.parser, so assertions see text with entities decoded, not raw markup.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

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

FEATURES = ("float32", "float64", "broadcast", "inplace", "double-backward", "error")


# -- campaign records ---------------------------------------------------------------

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
        "raised_both": 900, "forgiven": 40, "duration_seconds": 60.1,
        "verdicts": {"match": 5000}, "ops": {"add": {"examples": 5000, "findings": 0}},
        "findings": 0,
    }
    record.update(fields)
    return record


def make_run(directory: Path, records, *, meta=META, reproducers=True, tail="") -> Path:
    """Write meta.json, results.jsonl and each finding's reproducer file."""
    directory.mkdir(parents=True, exist_ok=True)
    if meta is not None:
        (directory / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    lines = [json.dumps(record) for record in records]
    (directory / "results.jsonl").write_text("\n".join(lines) + "\n" + tail, encoding="utf-8")
    for record in records:
        if reproducers and record.get("type") == "finding" and record.get("reproducer"):
            path = directory / record["reproducer"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(reproducer_source(record), encoding="utf-8")
    return directory


def reproducer_source(record) -> str:
    """A reproducer about as long as the fuzzer's (a few dozen lines)."""
    body = "\n".join(f"    v{n} = torch.{record['op']}(v{n - 1}, x1)" for n in range(1, 1 + int(record.get("steps") or 1)))
    return (f"# gradfuzz reproducer: {record['signature']}\n"
            f"# {record.get('detail')}\n"
            "import numpy as np\nimport torch\nimport engine\n\n\n"
            "def program(torch):\n"
            "    x0 = torch.tensor([[0.5, -1.25, 2.0], [3.5, 0.0, -0.75]], requires_grad=True)\n"
            "    x1 = torch.tensor([1.0, 2.0, -3.0], requires_grad=True)\n"
            "    v0 = x0\n"
            f"{body}\n"
            f"    v{int(record.get('steps') or 1)}.sum().backward()\n"
            "    return x0.grad, x1.grad\n\n\n"
            "for name, backend in ((\"engine\", engine), (\"torch\", torch)):\n"
            "    print(name, program(backend))\n")


def grad_finding(op, dtype="float32", *, scale=1.0, **fields):
    """A gradient divergence with realistic outcomes: two 3x4 values, two gradients."""
    rows = [[round(scale * (i * 4 + j) / 7, 6) for j in range(4)] for i in range(3)]
    grad = [[1.0, 0.5, -2.0, 3.25], [0.0, "nan", 1.5, -0.125], [2.0, 2.0, "inf", -1.0]]
    off = [[1.0, 0.5, -2.0, 3.25], [0.0, "nan", 1.5, -0.125], [2.0, 4.5, "inf", -1.0]]
    values = [tensor(rows, [3, 4], dtype, ref="v1", grad_fn="MulBackward0", requires_grad=True),
              tensor(rows, [3, 4], dtype, ref="v2", grad_fn="SumBackward0", requires_grad=True)]
    return finding(
        "gradient", op, dtype,
        engine=outcome(values=values, grads={"x0": tensor(off, [3, 4], dtype), "x1": tensor([1.0, 2.0], [2], dtype)}),
        torch=outcome(values=values, grads={"x0": tensor(grad, [3, 4], dtype), "x1": tensor([1.0, 2.0], [2], dtype)}),
        where="grad x0",
        detail="grad of x0: 1 of 12 elements differ; max abs err 2.5 at [2, 1] (engine 4.5 vs torch 2.0)",
        adjudication="torch agrees with finite differences", steps=2, **fields)


def coverage(ops, findings_by_op=None):
    """A coverage matrix: every op exercised with every feature but "error" for
    the first op; findings where ``findings_by_op`` puts them."""
    findings_by_op = findings_by_op or {}
    table = {}
    for n, op in enumerate(ops):
        cells = {feature: {"examples": 50 + 10 * n + k, "findings": 0} for k, feature in enumerate(FEATURES)}
        if n == 0:
            cells["error"] = {"examples": 0, "findings": 0}
        for feature, found in findings_by_op.get(op, {}).items():
            cells[feature]["findings"] = found
        table[op] = cells
    return table


# -- conformance records ------------------------------------------------------------

def conformance(op, feature, outcome="passed", *, test="test_op_matches_torch", index=0, group="op",
                module="tests/engine/test_ops_against_torch.py", duration=0.01, message=None, longrepr=None,
                dtype=None):
    dtype = dtype or (feature if feature.startswith("float") else None)
    params = {"op": op, "dtype_name": dtype, "index": str(index)} if group == "op" else {}
    node = f"{module}::{test}" + (f"[{op}-{dtype}-{index}]" if group == "op" else "")
    return {"type": "conformance", "nodeid": node, "module": module, "test": test, "group": group,
            "op": op, "feature": feature, "dtype": dtype, "params": params, "outcome": outcome,
            "phase": "call" if outcome != "passed" else None, "duration_seconds": duration,
            "message": message, "longrepr": longrepr}


CONFORMANCE_META = {**{k: META[k] for k in ("gradfuzz", "torch", "numpy", "python", "machine")},
                    "kind": "conformance", "pytest": "9.2.0", "started": "2026-11-27T11:00:00+00:00",
                    "command": "pytest --gradfuzz-report out/conformance"}


# -- reading pages back -------------------------------------------------------------

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
            and all(node.attrs.get(key.replace("_", "-")) == value for key, value in attrs.items())
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


def parse_html(html: str) -> Node:
    builder = TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder.root


def parse(path: Path) -> Node:
    return parse_html(path.read_text(encoding="utf-8"))


def table_rows(table: Node, *, visible_only=False) -> list[list[str]]:
    return [[cell.clean_text for cell in row.find_all() if cell.tag in ("th", "td")]
            for row in table.find_all("tr")
            if row.find_all("td") and not (visible_only and "hidden" in row.attrs)]


def keyed_rows(table: Node) -> dict[str, list[str]]:
    return {row[0]: row[1:] for row in table_rows(table)}


def section(page: Node, id_: str) -> Node:
    return page.find("section", id=id_)


def dl(node: Node) -> dict[str, str]:
    terms = [c for c in node.find("dl").children if isinstance(c, Node)]
    return {dt.clean_text: dd.clean_text for dt, dd in zip(terms[::2], terms[1::2])}


def assert_self_contained(page: Node, html: str):
    """Nothing fetched: no external URLs, no linked stylesheets or scripts."""
    for node in page.iter():
        for name in ("src", "href", "xlink:href", "action", "data"):
            value = node.attrs.get(name, "").strip().lower()
            assert not value.startswith(("http:", "https:", "//")), (node.tag, name, value)
    assert not page.find_all("link")
    assert not [s for s in page.find_all("script") if "src" in s.attrs]
    assert "url(http" not in html and "@import" not in html
