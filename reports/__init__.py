"""Static HTML reports rendered from gradfuzz results directories.

A report reads files only; it never imports the engine, torch or the fuzz
package (DESIGN.md: campaign -> results directory -> report).

    render_site(results_dir)   a campaign's or a conformance run's pages
    render_history(folder)     trends over a folder of past runs

The names are imported on first use (PEP 562), so that importing the pytest
plugin, ``reports.pytest_plugin``, costs no jinja2, matplotlib or numpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .history import render_history
    from .site import render_site

__all__ = ["render_history", "render_site"]


def __getattr__(name: str) -> Any:
    if name == "render_site":
        from .site import render_site
        return render_site
    if name == "render_history":
        from .history import render_history
        return render_history
    raise AttributeError(f"module 'reports' has no attribute {name!r}")
