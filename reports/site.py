"""A results directory's pages: ``index.html`` and one ``findings/<slug>.html`` per finding.

Reads files only (see :func:`reports.results.load_results` for their format);
never imports the engine, torch or the fuzz package.
"""

from __future__ import annotations

import os
import shlex
from collections import Counter
from pathlib import Path
from typing import Any

from . import charts
from .arrays import format_array, format_scalar
from .diff import Difference, differences
from .render import MISSING, count, is_generated, meta_rows, number, seconds, slugify, text, write_page
from .results import FEATURES, Results, load_results, signature_of

# Verdict kinds in the order DESIGN.md lists them; unknown kinds sort after.
VERDICT_ORDER = [
    "match", "value", "gradient", "gradient-none", "dtype", "shape",
    "error-vs-success", "error-type", "error-message", "grad-fn", "warning",
]

# Adjudications (fuzz.compare) that say the tested backend is the one that is off.
_BACKEND_WRONG = ("torch agrees with finite differences",)
_BACKEND_RIGHT = ("engine agrees with finite differences",)

META_FIRST = [
    ("gradfuzz", "gradfuzz"), ("torch", "torch"), ("numpy", "numpy"), ("python", "python"),
    ("backend", "backend under test"), ("seed", "seed"), ("budget_seconds", "budget"),
    ("started", "started"), ("duration_seconds", "duration"), ("machine", "machine"), ("command", "command"),
]


def render_site(results_dir: str | os.PathLike[str]) -> Path:
    """Render the pages of ``results_dir`` into it and return its ``index.html``.

    A campaign gets an index (run, totals, coverage, findings) and one page
    per finding under ``findings/``; a conformance run (``pytest
    --gradfuzz-report``) gets its index (see :mod:`reports.conformance`).
    Every page is self-contained (inline CSS, SVG and script, nothing
    fetched), so the directory can be opened from ``file://`` or mailed.
    """
    results = load_results(results_dir)
    if results.kind == "conformance":
        from .conformance import render_conformance
        return render_conformance(results)
    findings = finding_views(results)
    written = set()
    for n, finding in enumerate(findings):
        around = {"previous": findings[n - 1] if n else None,
                  "next": findings[n + 1] if n + 1 < len(findings) else None}
        path = results.directory / finding["href"]
        write_page(path, "finding.html", root="../", finding=finding, around=around)
        written.add(path.name)
    _remove_stale_pages(results.directory / "findings", keep=written)
    return write_page(results.directory / "index.html", "index.html", root="",
                      page=_index(results, findings), notes=_notes(results, findings),
                      status=results.status)


def finding_slugs(results: Results) -> dict[str, str]:
    """signature -> the slug of its page, ``findings/<slug>.html``."""
    used: set[str] = set()
    return {signature_of(record): slugify(signature_of(record), used) for record in _ordered(results)}


def _ordered(results: Results) -> list[dict[str, Any]]:
    """Distinct findings by verdict kind, op and signature: the index's order."""
    return sorted(results.findings,
                  key=lambda f: (_verdict_key(str(f.get("kind"))), str(f.get("op")), signature_of(f)))


def _remove_stale_pages(folder: Path, keep: set[str]) -> None:
    """Finding pages of an earlier render whose findings are gone."""
    if folder.is_dir():
        for page in folder.glob("*.html"):
            if page.name not in keep and is_generated(page):
                page.unlink()


# -- the index ------------------------------------------------------------------

def _notes(results: Results, findings: list[dict[str, Any]]) -> list[str]:
    notes = []
    n_findings = (results.summary or {}).get("findings", len(findings))
    if results.summary is None:
        notes.append("The run stopped before writing a summary: example counts are "
                     "unknown, and the counts below come from the findings alone.")
    if n_findings != len(findings):
        notes.append(f"The summary counts {n_findings} findings; results.jsonl holds "
                     f"{len(findings)} distinct ones, all shown below.")
    if results.skipped_lines:
        notes.append("Skipped unreadable lines of results.jsonl: "
                     f"{', '.join(map(str, results.skipped_lines))}.")
    return notes


def _index(results: Results, findings: list[dict[str, Any]]) -> dict[str, Any]:
    summary = results.summary or {}
    ops, features = _op_rows(results)
    shown = {**results.meta, "budget_seconds": seconds(results.meta.get("budget_seconds")),
             "duration_seconds": seconds(summary.get("duration_seconds"))}
    totals = [
        ("examples run", count(summary.get("examples"))),
        ("valid programs", count(summary.get("valid"))),
        ("raised on both sides", count(summary.get("raised_both"))),
        ("findings", count(summary.get("findings", len(findings)))),
    ]
    if "forgiven" in summary:   # (runs before gradfuzz counted them have no such field)
        totals.insert(3, ("matched once differences were judged rounding (float32, or the order of a sum "
                          "at extreme magnitudes)", count(summary["forgiven"])))
    if summary.get("crashes"):
        totals.append(("worker processes that died (crash findings; each started again)", count(summary["crashes"])))
    torch_at_fault = summary.get("torch_at_fault", sum(f.get("at_fault") == "torch" for f in results.findings))
    if torch_at_fault:
        totals.append(("of which torch disagrees with finite differences (the backend agrees)", count(torch_at_fault)))
    return {
        "meta": meta_rows(shown, META_FIRST) + [("status", results.status)],
        "totals": totals,
        "verdicts": _verdict_rows(results),
        "ops": ops,
        "features": features,
        "has_coverage": isinstance(summary.get("coverage"), dict),
        "chart": charts.ops_chart(ops, by_examples=results.summary is not None),
        "findings": findings,
    }


def _verdict_rows(results: Results) -> list[dict[str, Any]]:
    """Per verdict kind: examples (None when unknown) and distinct findings."""
    examples = (results.summary or {}).get("verdicts") or {}
    findings = Counter(str(f.get("kind")) for f in results.findings)
    kinds = sorted(set(examples) | set(findings), key=_verdict_key)
    return [{"kind": kind, "examples": examples.get(kind), "findings": findings.get(kind, 0)}
            for kind in kinds]


def _verdict_key(kind: str) -> tuple[int, str]:
    return (VERDICT_ORDER.index(kind) if kind in VERDICT_ORDER else len(VERDICT_ORDER), kind)


def _op_rows(results: Results) -> tuple[list[dict[str, Any]], list[str]]:
    """Per op: examples (None when unknown), findings, and the coverage cells
    per feature; the summary's counts win over counting findings."""
    summary = results.summary or {}
    counted = Counter(str(f.get("op")) for f in results.findings)
    summary_ops = summary.get("ops") or {}
    coverage = summary.get("coverage") if isinstance(summary.get("coverage"), dict) else {}
    seen = {feature for cells in coverage.values() if isinstance(cells, dict) for feature in cells}
    # Every known feature gets a column, so what was never exercised shows.
    features = list(FEATURES) + sorted(seen - set(FEATURES)) if coverage else []
    rows = []
    for op in sorted(set(summary_ops) | set(counted) | set(coverage)):
        stats = summary_ops.get(op) or {}
        cells = coverage.get(op) if isinstance(coverage.get(op), dict) else {}
        rows.append({
            "op": op,
            "examples": stats.get("examples"),
            "findings": stats.get("findings", counted.get(op, 0)),
            "cells": [_cell(cells.get(feature)) for feature in features],
        })
    return rows, features


def _cell(stats: Any) -> dict[str, int]:
    stats = stats if isinstance(stats, dict) else {}
    return {"examples": number(stats.get("examples")) or 0, "findings": number(stats.get("findings")) or 0}


# -- findings -------------------------------------------------------------------

def finding_views(results: Results) -> list[dict[str, Any]]:
    """Each distinct finding, pre-formatted for its page and the index, ordered
    by verdict kind, op and signature."""
    backend = str(results.meta.get("backend") or "engine")
    slugs = finding_slugs(results)
    views = []
    for record in _ordered(results):
        signature = signature_of(record)
        outcomes = record.get("outcomes") or {}
        # Backend under test on the left, torch (the reference) on the right.
        tested = str(record.get("backend") or backend)
        sides = sorted({tested, "torch", *outcomes}, key=lambda name: (name == "torch", name != tested, name))
        slug = slugs[signature]
        adjudication = record.get("adjudication")
        views.append({
            "record": record,
            "slug": slug,
            "href": f"findings/{slug}.html",
            "signature": signature,
            "kind": text(record.get("kind")),
            "op": text(record.get("op")),
            "dtype": text(record.get("dtype")),
            "where": text(record.get("where")),
            "detail": text(record.get("detail")),
            "adjudication": text(adjudication, missing="not adjudicated"),
            "adjudication_class": ("bad" if adjudication in _BACKEND_WRONG
                                   else "good" if adjudication in _BACKEND_RIGHT else ""),
            "steps": text(record.get("steps")),
            "found_after_examples": record.get("found_after_examples"),
            "found_after_seconds": seconds(record.get("found_after_seconds")),
            "occurrences": results.occurrences.get(signature, 1),
            "reproducer": _reproducer(results.directory, record.get("reproducer")),
            "replay": _replay(results.directory, record.get("finding_file")),
            "outcomes": [_outcome(name, outcomes.get(name)) for name in sides],
            "tested": tested,
            "crash": record.get("crash") if isinstance(record.get("crash"), dict) else None,
            **_differences(outcomes.get(tested), outcomes.get("torch"), str(record.get("where") or "")),
        })
    return views


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


def _differences(tested: Any, reference: Any, where: str) -> dict[str, Any]:
    """The per-tensor rows, and the rows holding the largest absolute and the
    largest relative error over all of them."""
    if not isinstance(tested, dict) or not isinstance(reference, dict):
        return {"differences": [], "largest": []}
    rows = [_difference_row(d, where) for d in differences(tested, reference)]
    differing = [row for row in rows if row["absolute"]]
    largest = [(measure, max(differing, key=lambda row: row[measure]["sort"]))
               for measure in ("absolute", "relative")] if differing else []
    return {"differences": rows, "largest": largest}


def _difference_row(d: Difference, where: str) -> dict[str, Any]:
    tested_dtype, reference_dtype = d.dtypes

    def worst(w: Any) -> dict[str, Any] | None:
        if w is None:
            return None
        return {"error": f"{w.error:.3g}", "sort": w.error if w.error != float("inf") else 1e308,
                "at": "[" + ", ".join(map(str, w.index)) + "]",
                "tested": format_scalar(w.tested, tested_dtype),
                "reference": format_scalar(w.reference, reference_dtype)}
    return {
        "subject": d.subject,
        # "grad x0" is how the comparator names a gradient's place, too.
        "flagged": d.subject == where,
        "shape": str(d.shape) if d.shape is not None else MISSING,
        "dtype": text(tested_dtype) if tested_dtype == reference_dtype
                 else f"{text(tested_dtype)} vs {text(reference_dtype)}",
        "problem": d.problem,
        "differing": d.differing,
        "size": d.size,
        "absolute": worst(d.absolute),
        "relative": worst(d.relative),
    }


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
            {"category": text(w.get("category")), "message": text(w.get("message"))}
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
        "dtype": text(entry.get("dtype")),
        "shape": str(tuple(shape)) if isinstance(shape, list) else text(shape),
        "grad_fn": entry.get("grad_fn"),
        "text": format_array(entry.get("data"), entry.get("dtype"), shape),
    }


def _error(error: Any) -> dict[str, str] | None:
    if not error:
        return None
    return {
        "type": text(error.get("type")),
        "message": text(error.get("message"), missing=""),
        "where": text(error.get("where"), missing=""),
    }
