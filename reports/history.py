"""Trends over past runs: ``render_history(folder)`` for a folder of nightly results directories."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from . import charts
from .render import seconds, write_page
from .results import Results, load_results, signature_of
from .site import finding_slugs, render_site

# The signature table draws at most this many runs as presence marks.
PRESENCE_RUNS = 30


def render_history(folder: str | os.PathLike[str], *, render_runs: bool = True) -> Path:
    """Write ``folder/index.html``: trends and a table over the runs in ``folder``.

    Each subdirectory holding ``meta.json`` or ``results.jsonl`` is a run;
    runs are ordered by their ``started`` time, then by name. The page charts
    examples and distinct findings per run, and the findings new and fixed
    since the run before (by signature); it lists every run, linking to its
    ``index.html``, and every signature with the runs it showed in. With
    ``render_runs``, a run whose ``index.html`` is missing or older than its
    results is rendered first, so that every link works. Returns the path of
    the page written.
    """
    root = Path(folder)
    if not root.is_dir():
        raise NotADirectoryError(f"history folder not found: {root}")
    runs, notes = [], []
    for directory in sorted(root.iterdir(), key=lambda p: _natural(p.name)):
        if not directory.is_dir() or not any((directory / name).exists() for name in ("meta.json", "results.jsonl")):
            continue
        try:
            results = load_results(directory)
        except (OSError, ValueError) as error:
            notes.append(f"Skipped {directory.name}: {error}")
            continue
        if render_runs and _stale(directory):
            render_site(directory)
        runs.append(results)
    runs.sort(key=lambda r: (str(r.meta.get("started") or ""), _natural(r.directory.name)))
    rows = _rows(runs)
    page = {
        "folder": root.resolve().name,
        "runs": rows[::-1],  # newest first
        "chart": charts.history_chart(rows),
        "signatures": _signatures(runs, rows),
        "presence_runs": [row["name"] for row in rows[-PRESENCE_RUNS:]],
    }
    return write_page(root / "index.html", "history.html", root="", page=page, notes=notes)


def _natural(name: str) -> list[Any]:
    """``run-2`` before ``run-10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _stale(directory: Path) -> bool:
    index = directory / "index.html"
    if not index.exists():
        return True
    sources = [directory / name for name in ("meta.json", "results.jsonl") if (directory / name).exists()]
    return any(source.stat().st_mtime > index.stat().st_mtime for source in sources)


def _rows(runs: list[Results]) -> list[dict[str, Any]]:
    rows, previous = [], None
    for results in runs:
        summary = results.summary or {}
        current = {signature_of(f) for f in results.findings}
        if results.kind == "conformance":
            current = {str(r.get("nodeid")) for r in results.conformance if r.get("outcome") == "failed"}
        examples = summary.get("examples", summary.get("tests"))
        rows.append({
            "name": results.directory.name,
            "href": f"{results.directory.name}/index.html",
            "started": str(results.meta.get("started") or "—"),
            "status": results.status,
            "interrupted": results.status == "interrupted",
            "examples": examples if isinstance(examples, int) else None,
            "findings": len(current),
            "new": len(current - previous) if previous is not None else 0,
            "fixed": len(previous - current) if previous is not None else 0,
            "first": previous is None,
            "duration": seconds(summary.get("duration_seconds")),
            "torch": str(results.meta.get("torch") or "—"),
            "gradfuzz": str(results.meta.get("gradfuzz") or "—"),
            "signatures": current,
        })
        previous = current
    return rows


def _signatures(runs: list[Results], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every signature seen: first and last run, how many runs, open or fixed."""
    seen: dict[str, dict[str, Any]] = {}
    for results, row in zip(runs, rows):
        slugs = finding_slugs(results) if results.kind == "campaign" else {}
        for signature in row["signatures"]:
            entry = seen.setdefault(signature, {"signature": signature, "first": row["name"], "runs": 0})
            entry["runs"] += 1
            entry["last"] = row["name"]
            entry["last_href"] = (f"{row['name']}/findings/{slugs[signature]}.html" if signature in slugs
                                  else row["href"])
    latest = rows[-1]["signatures"] if rows else set()
    recent = rows[-PRESENCE_RUNS:]
    for entry in seen.values():
        entry["open"] = entry["signature"] in latest
        entry["presence"] = [entry["signature"] in row["signatures"] for row in recent]
    return sorted(seen.values(), key=lambda e: (not e["open"], e["signature"]))

