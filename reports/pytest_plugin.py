"""pytest plugin: ``pytest --gradfuzz-report DIR`` records a conformance run and renders its report.

Registered through the ``pytest11`` entry point, so every pytest run loads
this module: it adds the option and nothing else. Only with the option does
it import the session (:mod:`reports.pytest_session`), which records each
test's op, feature, outcome, duration and failure text into
``DIR/results.jsonl`` and ``DIR/meta.json`` and renders ``DIR/index.html``
at the end. Neither this module nor the session imports torch or the engine.

Split as pytest-benchmark splits its plugin: options and hooks here, state
in the session, and a renderer (:func:`reports.render_site`) that reads the
saved files only.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gradfuzz", "gradfuzz conformance report")
    group.addoption(
        "--gradfuzz-report", metavar="DIR", default=None,
        help="record per-op conformance results in DIR (results.jsonl, meta.json) "
             "and render DIR/index.html; DIR's previous results are replaced",
    )


def pytest_configure(config: pytest.Config) -> None:
    directory = config.getoption("gradfuzz_report", None)
    # pytest-xdist workers send their reports to the controller, which records them.
    if not directory or hasattr(config, "workerinput"):
        return
    from .pytest_session import ConformanceSession

    path = Path(config.invocation_params.dir, directory)
    config.pluginmanager.register(ConformanceSession(config, path), ConformanceSession.name)
