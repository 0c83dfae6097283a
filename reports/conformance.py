"""The conformance report: a pytest run's results as a pass/fail matrix of op x feature.

Reads the ``conformance`` records that :mod:`reports.pytest_plugin` writes
(format in :func:`reports.results.load_results`); reached through
:func:`reports.render_site`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from . import charts
from .render import count, meta_rows, number, seconds, write_page
from .results import Results

OUTCOMES = ("passed", "failed", "skipped")
META_FIRST = [
    ("gradfuzz", "gradfuzz"), ("torch", "torch"), ("numpy", "numpy"), ("python", "python"),
    ("pytest", "pytest"), ("started", "started"), ("duration_seconds", "duration"), ("machine", "machine"),
    ("command", "command"),
    ("rootdir", "rootdir"),
]
# Page text of a failure longer than this is cut, and only the first failures
# show their text, so that a badly broken run still gives a page a browser
# opens; results.jsonl keeps it all.
FAILURE_TEXT_LIMIT = 6_000
FAILURES_WITH_TEXT = 100


def render_conformance(results: Results) -> Path:
    """Write ``index.html`` for a conformance results directory and return its path."""
    records = results.conformance
    summary = results.summary or {}
    outcomes = Counter(_outcome(r) for r in records)
    status = ("interrupted" if results.status == "interrupted"
              else "failed" if outcomes["failed"] else "passed")
    features = _features(records)
    shown = {key: value for key, value in results.meta.items() if key != "kind"}
    shown["duration_seconds"] = seconds(summary.get("duration_seconds"))
    meta = meta_rows(shown, META_FIRST) + [("status", status)]
    notes = []
    if results.summary is None:
        notes.append("The run stopped before writing a summary: these are the tests that finished.")
    if results.skipped_lines:
        notes.append("Skipped unreadable lines of results.jsonl: "
                     f"{', '.join(map(str, results.skipped_lines))}.")
    page = {
        "meta": meta,
        "totals": [("tests", count(len(records)))] + [(name, count(outcomes[name])) for name in OUTCOMES],
        "features": features,
        "groups": _matrix(records, features),
        "chart": charts.outcomes_chart([(feature, *_tally(r for r in records if r.get("feature") == feature))
                                        for feature in features]),
        "failures": [_failure(r, with_text=n < FAILURES_WITH_TEXT)
                     for n, r in enumerate(r for r in records if _outcome(r) == "failed")],
        "failures_with_text": FAILURES_WITH_TEXT,
        "slowest": sorted(records, key=lambda r: -(number(r.get("duration_seconds")) or 0))[:10],
    }
    return write_page(results.directory / "index.html", "conformance.html", root="", page=page,
                      notes=notes, status=status)


def _outcome(record: dict[str, Any]) -> str:
    outcome = record.get("outcome")
    return outcome if outcome in OUTCOMES else "failed"


def _tally(records) -> tuple[int, int, int]:
    counted = Counter(_outcome(r) for r in records)
    return counted["passed"], counted["failed"], counted["skipped"]


def _features(records: list[dict[str, Any]]) -> list[str]:
    """dtypes (float first), then in-place, then the rest, then plain module tests."""
    seen = {str(r.get("feature")) for r in records}
    last = ["inplace", "tests"]
    dtypes = sorted((f for f in seen if f not in last), key=lambda f: (not f.startswith("float"), f))
    return dtypes + [f for f in last if f in seen]


def _matrix(records: list[dict[str, Any]], features: list[str]) -> list[dict[str, Any]]:
    """Two row groups: ops (from parametrized tests), then test modules."""
    cells: dict[tuple[str, str], dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        group = "module" if record.get("group") == "module" else "op"
        cells[group, str(record.get("op"))][str(record.get("feature"))].append(record)
    groups = []
    for group, title in (("op", "op"), ("module", "test module")):
        rows = []
        for (kind, name), by_feature in sorted(cells.items()):
            if kind != group:
                continue
            row_records = [r for records_ in by_feature.values() for r in records_]
            passed, failed, skipped = _tally(row_records)
            rows.append({"name": name, "passed": passed, "failed": failed, "skipped": skipped,
                         "total": len(row_records),
                         "cells": [_cell(name, feature, by_feature.get(feature, [])) for feature in features]})
        if rows:
            groups.append({"title": title, "rows": rows})
    return groups


def _cell(name: str, feature: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    passed, failed, skipped = _tally(records)
    ran = passed + failed
    state = "empty" if not records else "bad" if failed else "skip" if not ran else "pass"
    return {"state": state, "passed": passed, "failed": failed, "skipped": skipped, "total": len(records),
            "text": "·" if not records else "skipped" if not ran else f"{passed}/{ran}",
            "title": f"{name}, {feature}: {passed} passed, {failed} failed, {skipped} skipped",
            # Sorting puts failures first (largest), then untested cells last.
            "sort": failed * 1_000_000 + ran if records else -1,
            "filter": f"{name} {feature}"}


def _failure(record: dict[str, Any], *, with_text: bool) -> dict[str, Any]:
    text = str(record.get("longrepr") or "") if with_text else ""
    cut = len(text) > FAILURE_TEXT_LIMIT
    return {
        "nodeid": str(record.get("nodeid")),
        "op": str(record.get("op")),
        "feature": str(record.get("feature")),
        "phase": str(record.get("phase") or "call"),
        "duration": number(record.get("duration_seconds")),
        "message": str(record.get("message") or "").strip() or "(no message)",
        "text": text[:FAILURE_TEXT_LIMIT] if cut else text,
        "cut": len(text) - FAILURE_TEXT_LIMIT if cut else 0,
    }
