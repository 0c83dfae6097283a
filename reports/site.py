"""The campaign report: one self-contained ``index.html`` in the results directory.

Reads files only (see :func:`reports.results.load_results` for their format);
never imports the engine, torch or the fuzz package.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
from collections import Counter
from pathlib import Path
from typing import Any

import jinja2
import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .arrays import format_array
from .results import Results, load_results, signature_of
from .svg import SVG_RC, figure_to_svg

MISSING = "—"

# Verdict kinds in the order DESIGN.md lists them; unknown kinds sort after.
VERDICT_ORDER = [
    "match", "value", "gradient", "gradient-none", "dtype", "shape",
    "error-vs-success", "error-type", "error-message", "warning",
]

# Ids the page itself uses; a finding slug never takes one of them.
_PAGE_IDS = {"run", "totals", "ops", "findings", "findings-index", "findings-filter"}


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("reports", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["count"] = _count
    return env


def render_site(results_dir: str | os.PathLike[str]) -> Path:
    """Render the report for ``results_dir`` and return the ``index.html`` path.

    The page is written into ``results_dir`` itself (atomically, so a browser
    or a concurrent re-render never sees half a page). It is self-contained:
    inline CSS, inline SVG, a few lines of inline script, nothing fetched.
    """
    results = load_results(results_dir)
    html = _environment().get_template("index.html").render(page=_page(results))
    target = results.directory / "index.html"
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    partial.write_text(html, encoding="utf-8")
    os.replace(partial, target)
    return target


# -- the page's data, everything pre-formatted so templates stay dumb ---------

def _page(results: Results) -> dict[str, Any]:
    summary = results.summary or {}
    findings = _findings(results)
    n_findings = summary.get("findings", len(findings))
    notes = []
    if results.summary is None:
        notes.append(
            "The run stopped before writing a summary: example counts are "
            "unknown, and the counts below come from the findings alone."
        )
    if n_findings != len(findings):
        notes.append(
            f"The summary counts {n_findings} findings; results.jsonl holds "
            f"{len(findings)} distinct ones, all shown below."
        )
    if results.skipped_lines:
        lines = ", ".join(map(str, results.skipped_lines))
        notes.append(f"Skipped unreadable lines of results.jsonl: {lines}.")
    ops = _op_rows(results)
    return {
        "status": results.status,
        "meta": _meta_rows(results),
        "notes": notes,
        "totals": [
            ("examples run", _count(summary.get("examples"))),
            ("valid programs", _count(summary.get("valid"))),
            ("raised on both sides", _count(summary.get("raised_both"))),
            ("findings", _count(n_findings)),
        ],
        "verdicts": _verdict_rows(results),
        "ops": ops,
        "chart": _ops_chart(ops, by_examples=results.summary is not None),
        "findings": findings,
    }


def _meta_rows(results: Results) -> list[tuple[str, str]]:
    meta = dict(results.meta)
    summary = results.summary or {}
    rows = [
        ("gradfuzz", _text(meta.pop("gradfuzz", None))),
        ("torch", _text(meta.pop("torch", None))),
        ("numpy", _text(meta.pop("numpy", None))),
        ("python", _text(meta.pop("python", None))),
        ("backend under test", _text(meta.pop("backend", None))),
        ("seed", _text(meta.pop("seed", None))),
        ("budget", _seconds(meta.pop("budget_seconds", None))),
        ("started", _text(meta.pop("started", None))),
        ("duration", _seconds(summary.get("duration_seconds"))),
        ("machine", _text(meta.pop("machine", None))),
        ("command", _text(meta.pop("command", None))),
    ]
    rows += [(key, _text(value)) for key, value in meta.items()]
    rows.append(("status", results.status))
    return rows


def _verdict_rows(results: Results) -> list[dict[str, Any]]:
    """Per verdict kind: examples (None when unknown) and distinct findings."""
    examples = (results.summary or {}).get("verdicts") or {}
    findings = Counter(str(f.get("kind")) for f in results.findings)
    kinds = sorted(set(examples) | set(findings), key=_verdict_key)
    return [
        {"kind": kind, "examples": examples.get(kind), "findings": findings.get(kind, 0)}
        for kind in kinds
    ]


def _verdict_key(kind: str) -> tuple[int, str]:
    return (VERDICT_ORDER.index(kind) if kind in VERDICT_ORDER else len(VERDICT_ORDER), kind)


def _op_rows(results: Results) -> list[dict[str, Any]]:
    """Per op: examples (None when unknown) and findings; the summary wins."""
    counted = Counter(str(f.get("op")) for f in results.findings)
    summary_ops = (results.summary or {}).get("ops") or {}
    rows = []
    for op in sorted(set(summary_ops) | set(counted)):
        stats = summary_ops.get(op) or {}
        rows.append({
            "op": op,
            "examples": stats.get("examples"),
            "findings": stats.get("findings", counted.get(op, 0)),
        })
    return rows


def _ops_chart(rows: list[dict[str, Any]], *, by_examples: bool) -> str | None:
    """Horizontal bars per op (examples, or findings when examples are unknown),
    ops with findings in red, as an inline SVG string."""
    measure = "examples" if by_examples else "findings"
    rows = [row for row in rows if row[measure]]
    if not rows:
        return None
    rows.sort(key=lambda row: (-row[measure], row["op"]))
    rows.reverse()  # barh draws the first bar at the bottom
    with matplotlib.rc_context({**SVG_RC, "font.size": 8}):
        fig = Figure(figsize=(6.0, 0.7 + 0.2 * len(rows)), layout="constrained")
        ax = fig.add_subplot()
        positions = range(len(rows))
        colors = ["#c0392b" if row["findings"] else "#8e9aaf" for row in rows]
        bars = ax.barh(positions, [row[measure] for row in rows], color=colors, height=0.7)
        # Op names are data: never let a "$" in one start mathtext.
        ax.set_yticks(positions, [row["op"] for row in rows], parse_math=False)
        if by_examples:
            labels = [f"{row['findings']} finding" + ("s" if row["findings"] != 1 else "")
                      if row["findings"] else "" for row in rows]
            ax.bar_label(bars, labels, padding=3, color="#c0392b", parse_math=False)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(f"{measure} per op" + (" (red: ops with findings)" if by_examples else ""))
        ax.margins(x=0.15 if by_examples else 0.05, y=0.5 / len(rows))
        ax.spines[["top", "right"]].set_visible(False)
        return figure_to_svg(fig)


def _findings(results: Results) -> list[dict[str, Any]]:
    used = set(_PAGE_IDS)
    backend = str(results.meta.get("backend") or "engine")
    ordered = sorted(
        results.findings,
        key=lambda f: (_verdict_key(str(f.get("kind"))), str(f.get("op")), signature_of(f)),
    )
    views = []
    for record in ordered:
        signature = signature_of(record)
        outcomes = record.get("outcomes") or {}
        # Backend under test on the left, torch (the reference) on the right.
        sides = sorted({backend, "torch", *outcomes}, key=lambda name: (name == "torch", name != backend, name))
        views.append({
            "id": _unique_slug(signature, used),
            "signature": signature,
            "kind": _text(record.get("kind")),
            "op": _text(record.get("op")),
            "dtype": _text(record.get("dtype")),
            "detail": _text(record.get("detail")),
            "adjudication": _text(record.get("adjudication"), missing="not adjudicated"),
            "steps": _text(record.get("steps")),
            "found_after_examples": record.get("found_after_examples"),
            "found_after_seconds": _seconds(record.get("found_after_seconds")),
            "occurrences": results.occurrences.get(signature, 1),
            "reproducer": _reproducer(results.directory, record.get("reproducer")),
            "replay": _replay(results.directory, record.get("finding_file")),
            "outcomes": [_outcome(name, outcomes.get(name)) for name in sides],
        })
    return views


def _unique_slug(signature: str, used: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", signature.lower()).strip("-") or "finding"
    slug, n = base, 1
    while slug in used:
        n += 1
        slug = f"{base}-{n}"
    used.add(slug)
    return slug


def _reproducer(directory: Path, relative: Any) -> dict[str, Any]:
    if not relative:
        return {"path": None, "source": None, "problem": "no reproducer recorded"}
    path = (directory / str(relative)).resolve()
    if not path.is_relative_to(directory.resolve()):
        return {"path": str(relative), "source": None,
                "problem": "reproducer path points outside the results directory"}
    try:
        source = path.read_text(encoding="utf-8")
    except OSError as error:
        return {"path": str(relative), "source": None,
                "problem": f"reproducer not readable: {error.strerror or error}"}
    return {"path": str(relative), "source": source, "problem": None}


def _replay(directory: Path, finding_file: Any) -> str | None:
    # The path is as given to render_site, so the command works from the
    # directory the campaign (and this render) ran in.
    if not finding_file:
        return None
    return f"gradfuzz replay {shlex.quote(str(directory / str(finding_file)))}"


def _outcome(name: str, outcome: dict[str, Any] | None) -> dict[str, Any]:
    if outcome is None:
        return {"name": name, "missing": True}
    grads = outcome.get("grads") or {}
    return {
        "name": name,
        "missing": False,
        "error": _error(outcome.get("error")),
        "values": [_tensor(str(v.get("ref", "?")), v) for v in outcome.get("values") or []],
        "grads": [_tensor(str(leaf), grad) for leaf, grad in grads.items()],
        "warnings": [
            {"category": _text(w.get("category")), "message": _text(w.get("message"))}
            for w in outcome.get("warnings") or []
        ],
    }


def _tensor(label: str, entry: dict[str, Any] | None) -> dict[str, Any]:
    """A step value or leaf gradient: error, None, or a formatted tensor."""
    if entry is None:
        return {"label": label, "none": True, "error": None}
    if entry.get("error"):
        return {"label": label, "none": False, "error": _error(entry["error"])}
    shape = entry.get("shape")
    return {
        "label": label,
        "none": False,
        "error": None,
        "dtype": _text(entry.get("dtype")),
        "shape": str(tuple(shape)) if isinstance(shape, list) else _text(shape),
        "grad_fn": entry.get("grad_fn"),
        "text": format_array(entry.get("data"), entry.get("dtype"), shape),
    }


def _error(error: Any) -> dict[str, str] | None:
    if not error:
        return None
    return {
        "type": _text(error.get("type")),
        "message": _text(error.get("message"), missing=""),
        "where": _text(error.get("where"), missing=""),
    }


# -- formatting ---------------------------------------------------------------

def _text(value: Any, missing: str = MISSING) -> str:
    if value is None or value == "":
        return missing
    if isinstance(value, dict):
        return ", ".join(f"{key}: {_text(item)}" for key, item in value.items())
    if isinstance(value, list):
        return json.dumps(value)
    return str(value)


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else _text(value)


def _seconds(value: Any) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return _text(value)
    if value < 120:
        return f"{value:.1f} s"
    minutes, seconds = divmod(round(value), 60)
    if minutes < 120:
        return f"{minutes} min {seconds} s"
    return f"{minutes // 60} h {minutes % 60} min"
