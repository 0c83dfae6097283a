"""The self-test page: which planted engine bugs a short campaign caught, and how fast.

Reads ``selftest.jsonl`` (one ``{"type": "selftest", ...}`` record per mutant,
written by ``gradfuzz selftest``) and ``meta.json``; files only, like every report.
"""
from __future__ import annotations

import json
from pathlib import Path

from .render import write_page


def load_selftest(directory: str | Path) -> tuple[dict, list[dict]]:
    """(meta, records) of a self-test directory; lines that are not JSON objects are skipped."""
    directory = Path(directory)
    meta_path, records_path = directory / "meta.json", directory / "selftest.jsonl"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    records = []
    for line in (records_path.read_text().splitlines() if records_path.exists() else ()):
        try:
            record = json.loads(line)
        except ValueError:
            continue  # the half-written last line of a killed run
        if isinstance(record, dict) and record.get("type") == "selftest":
            records.append(record)
    return meta, records


def render_selftest(directory: str | Path) -> Path:
    """Render ``directory/index.html`` for a self-test run and return its path."""
    directory = Path(directory)
    meta, records = load_selftest(directory)
    for record in records:
        # Each mutant's campaign directory is a results directory with its own report.
        record["report"] = f"{record['mutant']}/index.html" if (directory / record["mutant"] / "index.html").exists() else None
    page = {"meta": meta, "records": records, "caught": sum(bool(r.get("caught")) for r in records),
            "total": len(records)}
    return write_page(directory / "index.html", "selftest.html", root="", page=page)
