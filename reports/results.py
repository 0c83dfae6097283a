"""Reading a campaign's results directory: the contract between fuzz and reports."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The features a campaign's coverage matrix counts, in the order shown.
FEATURES = ("float32", "float64", "broadcast", "inplace", "double-backward", "error")


@dataclass
class Results:
    """What one results directory holds, as read by :func:`load_results`."""

    directory: Path
    meta: dict[str, Any]
    # One record per distinct signature, in the order first written.
    findings: list[dict[str, Any]]
    # signature -> how many finding records carried it (parallel workers may
    # each write the same finding; the first one written is kept).
    occurrences: dict[str, int]
    # The last summary record, or None when the run stopped before writing one.
    summary: dict[str, Any] | None
    # Conformance records (pytest runs), one per test node id, the last one
    # written winning, in the order first written.
    conformance: list[dict[str, Any]] = field(default_factory=list)
    # 1-based numbers of results.jsonl lines that were not JSON objects (for
    # example the half-written last line of a killed run).
    skipped_lines: list[int] = field(default_factory=list)

    @property
    def status(self) -> str:
        """``"complete"`` or ``"interrupted"`` (no summary means interrupted)."""
        if self.summary is None:
            return "interrupted"
        return str(self.summary.get("status") or "interrupted")

    @property
    def kind(self) -> str:
        """``"conformance"`` for a pytest conformance run, else ``"campaign"``."""
        if self.meta.get("kind") == "conformance" or self.conformance:
            return "conformance"
        return "campaign"


def signature_of(record: dict[str, Any]) -> str:
    """A finding's de-duplication key; rebuilt from kind|op|dtype if absent."""
    signature = record.get("signature")
    if signature:
        return str(signature)
    return "|".join(str(record.get(key)) for key in ("kind", "op", "dtype"))


def load_results(results_dir: str | Path) -> Results:
    """Read ``meta.json`` and ``results.jsonl`` from ``results_dir``.

    Either file may be missing (a run killed early), not both.

    ``meta.json`` is one JSON object, written when the run starts::

        {"gradfuzz": "0.1.0", "torch": "2.13.0+cpu", "numpy": "2.4.6",
         "python": "3.11.7", "backend": "engine", "seed": 0,
         "budget_seconds": 60.0, "started": "2026-11-27T10:00:00+00:00",
         "command": "gradfuzz run --budget 60s",
         "machine": {"platform": "...", "processor": "...", "cpus": 2}}

    Keys beyond these are shown as they are.

    ``results.jsonl`` holds one JSON object per line, told apart by ``"type"``;
    blank lines, unknown types and lines that are not JSON objects are skipped
    (the latter are counted in :attr:`Results.skipped_lines`).

    A ``"finding"`` record, one per distinct divergence (by ``signature``)::

        {"type": "finding", "signature": "gradient|mul|float32",
         "kind": "gradient", "op": "mul", "dtype": "float32",
         "detail": "max abs error 2.0 at (1,) in grad of x0",
         "adjudication": "torch agrees with finite differences" | null,
         "at_fault": "engine" | "torch",   # torch: its gradient alone disagrees with finite differences
         "steps": 2, "program": {...Program JSON, not read here...},
         "reproducer": "repro/gradient-mul-float32.py",
         "finding_file": "findings/gradient-mul-float32.json",
         "found_after_examples": 123, "found_after_seconds": 4.2,
         "outcomes": {"engine": OUTCOME, "torch": OUTCOME}}

    ``reproducer`` and ``finding_file`` are relative to the results directory.

    A crash finding (a worker process died: `fuzz.workers`) has ``"kind": "crash"``,
    a signature ``crash|SIGNAL|function``, null ``op``, ``dtype``, ``steps`` and
    ``program``, no ``outcomes``, and a ``"crash"`` object: ``{"worker", "exitcode",
    "example", "hypothesis", "seed", "program_options", "mutant", "stack"}`` (the
    example's index in the worker's stream, and Python's stack at the crash); its
    ``reproducer`` is null when the worker died inside a Hypothesis run.

    An OUTCOME is what one backend did with the program::

        {"values": [{"ref": "v1", "dtype": "float32", "shape": [2, 3],
                     "data": [[...], [...]], "grad_fn": "MulBackward0"},
                    {"ref": "v2", "error": {"type": "RuntimeError",
                                            "message": "..."}}],
         "error": null | {"type": "...", "message": "...",
                          "where": "step 2" | "backward"},
         "grads": {"x0": {"dtype": "float32", "shape": [2], "data": [...]}
                         | null},
         "warnings": [{"category": "UserWarning", "message": "..."}]}

    Non-finite floats inside ``data`` are the strings ``"nan"``, ``"inf"``,
    ``"-inf"``.

    A ``"summary"`` record; when several are written the last one wins, and a
    run interrupted before writing one has status ``"interrupted"``::

        {"type": "summary", "status": "complete" | "interrupted",
         "examples": 5000, "valid": 4100, "raised_both": 900, "forgiven": 40, "crashes": 0,
         "duration_seconds": 60.1,
         "verdicts": {"match": 4990, "gradient": 3, ...},
         "ops": {"mul": {"examples": 900, "findings": 1}, ...},
         "coverage": {"mul": {"float32": {"examples": 700, "findings": 1},
                              "broadcast": {"examples": 310, "findings": 0},
                              ...}, ...},
         "findings": 1}

    ``verdicts`` counts examples per verdict kind; ``findings`` counts
    distinct findings. ``status`` may also be another word the campaign uses
    for a normal end (``"completed"``, ``"max-findings"``).

    ``coverage`` is optional: per op, per feature of :data:`FEATURES` (others
    are shown after them), the examples that exercised the op with that
    feature and the distinct findings blamed on it. One example counts under
    every feature it has, so a row's features need not add up to its
    ``ops`` count.

    A conformance run (``pytest --gradfuzz-report DIR``, see
    :mod:`reports.pytest_plugin`) writes ``"kind": "conformance"`` and
    ``"pytest"`` (its version) into ``meta.json`` and, instead of findings,
    one ``"conformance"`` record per test::

        {"type": "conformance",
         "nodeid": "tests/engine/test_ops_against_torch.py::test_op_matches_torch[mul-float32-0]",
         "module": "tests/engine/test_ops_against_torch.py",
         "test": "test_op_matches_torch",
         "group": "op" | "module",   # "op": parametrized with an op
         "op": "mul",                # the module path for "module" tests
         "feature": "float32",       # dtype, "inplace", or "tests"
         "dtype": "float32" | null,
         "params": {"op": "mul", "dtype_name": "float32", "index": "0"},
         "outcome": "passed" | "failed" | "skipped",
         "phase": "setup" | "call" | "teardown" | null,  # where it failed or skipped
         "duration_seconds": 0.004,
         "message": "one line" | null,   # failure or skip reason
         "longrepr": "the failure text" | null}

    and a summary ``{"type": "summary", "status": "complete" |
    "interrupted", "tests": 812, "outcomes": {"passed": 800, "failed": 2,
    "skipped": 10}, "duration_seconds": 41.2, "exitstatus": 1}``.
    """
    directory = Path(results_dir)
    if not directory.is_dir():
        raise NotADirectoryError(f"results directory not found: {directory}")
    meta_path = directory / "meta.json"
    results_path = directory / "results.jsonl"
    if not meta_path.exists() and not results_path.exists():
        raise FileNotFoundError(f"neither meta.json nor results.jsonl in {directory}")

    meta: dict[str, Any] = {}
    if meta_path.exists():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if not isinstance(meta, dict):
            raise ValueError(f"{meta_path}: expected a JSON object")

    findings: list[dict[str, Any]] = []
    occurrences: dict[str, int] = {}
    summary = None
    conformance: dict[str, dict[str, Any]] = {}
    skipped: list[int] = []
    if results_path.exists():
        lines = results_path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                skipped.append(number)
                continue
            if not isinstance(record, dict):
                skipped.append(number)
                continue
            if record.get("type") == "finding":
                signature = signature_of(record)
                if signature not in occurrences:
                    findings.append(record)
                occurrences[signature] = occurrences.get(signature, 0) + 1
            elif record.get("type") == "summary":
                summary = record
            elif record.get("type") == "conformance":
                # A test reported twice (reruns) keeps its first place, last outcome.
                conformance[str(record.get("nodeid"))] = record
    return Results(directory, meta, findings, occurrences, summary, list(conformance.values()), skipped)
