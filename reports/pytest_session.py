"""The conformance session: what ``pytest --gradfuzz-report DIR`` collects and saves.

One ``conformance`` record per test, appended to ``DIR/results.jsonl`` as
the test finishes (a killed run keeps what finished), then a summary record,
then the report rendered from the saved files. Format: see
:func:`reports.results.load_results`.

Which op and feature a test is about comes from its parametrization: the
per-op tests (``tests/engine/test_ops_against_torch.py``) take ``op`` (an
``engine.optable.Op``; its ``.name`` is used, never the engine itself) and
``dtype_name``; ``test_inplace_variant_matches_torch`` is the in-place
feature. Every other test counts under its module's path, in its
``dtype_name`` column if it has one, else in the "tests" column.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import shlex
import sys
import time
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

INPLACE_TEST = "test_inplace_variant_matches_torch"
# results.jsonl keeps this much of each failure's text.
LONGREPR_LIMIT = 50_000


class ConformanceSession:
    """Registered by :mod:`reports.pytest_plugin` when ``--gradfuzz-report`` is given."""

    name = "gradfuzz-conformance"

    def __init__(self, config: pytest.Config, directory: Path):
        self.config = config
        self.directory = directory
        self.tests: dict[str, dict[str, Any]] = {}   # node id -> op, feature, ... from collection
        self.phases: dict[str, list[pytest.TestReport]] = defaultdict(list)
        self.outcomes: Counter = Counter()
        self.started = time.monotonic()
        self.started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.index: Path | None = None
        self.problem: str | None = None
        self.results = None

    # -- hooks ----------------------------------------------------------------------

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "meta.json").write_text(json.dumps(self.meta(), indent=2) + "\n", encoding="utf-8")
        self.results = open(self.directory / "results.jsonl", "w", encoding="utf-8")  # noqa: SIM115

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            self.tests[item.nodeid] = classify(item)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:  # a module that does not import is a failure of all its tests
            self.write(conformance_record(report.nodeid, None, [report]))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.phases[report.nodeid].append(report)

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        reports = self.phases.pop(nodeid, [])
        if reports:
            self.write(conformance_record(nodeid, self.tests.get(nodeid), reports))

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.results is None:  # the session never started
            return
        interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
        self.write({"type": "summary", "status": "interrupted" if interrupted else "complete",
                    "tests": sum(self.outcomes.values()), "outcomes": dict(self.outcomes),
                    "duration_seconds": round(time.monotonic() - self.started, 3),
                    "exitstatus": int(exitstatus)})
        self.results.close()
        # The versions the tests ran with: torch is imported by now if any test used it.
        (self.directory / "meta.json").write_text(json.dumps(self.meta(), indent=2) + "\n", encoding="utf-8")
        try:
            from .site import render_site
            self.index = render_site(self.directory)
        except Exception as error:  # noqa: BLE001  (a report problem must not hide the test results)
            self.problem = f"{type(error).__name__}: {error}"

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.index is not None:
            terminalreporter.write_sep("-", f"gradfuzz conformance report: {self.index}")
        elif self.problem is not None:
            terminalreporter.write_sep("-", f"gradfuzz conformance report not rendered: {self.problem}", red=True)

    # -- saving ---------------------------------------------------------------------

    def write(self, record: dict[str, Any]) -> None:
        if record["type"] == "conformance":
            self.outcomes[record["outcome"]] += 1
        self.results.write(json.dumps(record) + "\n")
        self.results.flush()

    def meta(self) -> dict[str, Any]:
        args = self.config.invocation_params.args
        return {
            "kind": "conformance",
            "gradfuzz": _version("gradfuzz"),
            "torch": _version("torch"),
            "numpy": _version("numpy"),
            "python": platform.python_version(),
            "pytest": pytest.__version__,
            "started": self.started_at,
            "command": shlex.join(["pytest", *args]),
            "rootdir": str(self.config.rootpath),
            "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                        "cpus": os.cpu_count()},
        }


def classify(item: pytest.Item) -> dict[str, Any]:
    """The op, feature, dtype and parameters of a collected test."""
    params = dict(getattr(getattr(item, "callspec", None), "params", {}) or {})
    module = item.nodeid.split("::", 1)[0]
    test = getattr(item, "originalname", None) or item.name
    op = params.get("op")
    op = op if isinstance(op, str) else getattr(op, "name", None)
    dtype = params.get("dtype_name") if isinstance(params.get("dtype_name"), str) else None
    if isinstance(op, str):
        group, feature = "op", "inplace" if test == INPLACE_TEST else dtype or "tests"
    else:
        group, op, feature = "module", module, dtype or "tests"
    return {"module": module, "test": test, "group": group, "op": op, "feature": feature, "dtype": dtype,
            "params": {name: _label(value) for name, value in params.items()}}


def conformance_record(nodeid: str, info: dict[str, Any] | None, reports: list) -> dict[str, Any]:
    """One test's record from its setup, call and teardown reports (or a collection report)."""
    if info is None:  # not collected here (a collection error, or an xdist worker's test)
        module = nodeid.split("::", 1)[0]
        info = {"module": module, "test": nodeid.rpartition("::")[2] or module, "group": "module",
                "op": module, "feature": "tests", "dtype": None, "params": {}}
    outcome, phase, message, longrepr = "passed", None, None, None
    for report in reports:
        when = getattr(report, "when", None) or "collect"
        if report.failed:
            outcome, phase, longrepr = "failed", when, report.longreprtext[:LONGREPR_LIMIT]
            crash = getattr(getattr(report, "longrepr", None), "reprcrash", None)
            message = getattr(crash, "message", None) or _last_error_line(report.longreprtext)
            break
        if report.skipped and outcome == "passed":
            outcome, phase = "skipped", when
            if hasattr(report, "wasxfail"):
                message = "expected to fail" + (f": {report.wasxfail}" if report.wasxfail else "")
            elif isinstance(report.longrepr, tuple):
                message = str(report.longrepr[2]).removeprefix("Skipped: ")
    return {"type": "conformance", "nodeid": nodeid, **info, "outcome": outcome, "phase": phase,
            "duration_seconds": round(sum(getattr(r, "duration", 0.0) for r in reports), 6),
            "message": message, "longrepr": longrepr}


def _label(value: Any) -> str:
    """A parameter as the report shows it: an op by its name, others short."""
    name = getattr(value, "name", None)
    if isinstance(name, str):
        return name
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:79] + "…"


def _last_error_line(text: str) -> str | None:
    lines = [line[1:].strip() for line in text.splitlines() if line.startswith("E ")]
    return lines[0] if lines else (text.strip().splitlines() or [None])[-1]


def _version(distribution: str) -> str | None:
    module = sys.modules.get(distribution)
    version = getattr(module, "__version__", None)
    if isinstance(version, str):
        return version
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
