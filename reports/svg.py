"""Matplotlib figures as inline SVG, for embedding in self-contained HTML.

Only the SVG backend's writer is used (through ``Figure.savefig``), never
pyplot, so rendering a report selects no GUI backend and touches no global
pyplot state.
"""

from __future__ import annotations

import io

import matplotlib
from matplotlib.figure import Figure

# Text stays text (small, selectable, printable, picks up the page's fonts);
# a fixed hash salt and no Date metadata make the output byte-for-byte
# reproducible, so re-rendering an unchanged results directory changes nothing.
SVG_RC = {"svg.fonttype": "none", "svg.hashsalt": "gradfuzz"}

# Dublin Core metadata would add a <metadata> block with http:// URIs and a
# timestamp; inline in HTML it is dead weight.
_NO_METADATA = {"Creator": None, "Date": None, "Format": None, "Type": None}


def figure_to_svg(fig: Figure) -> str:
    """Return ``fig`` as an ``<svg>...</svg>`` string ready to paste into HTML.

    The XML prolog and DOCTYPE that matplotlib writes are stripped (they are
    invalid inside an HTML document). Build the figure inside
    ``matplotlib.rc_context(SVG_RC)`` for reproducible output; this function
    applies the same settings while saving.

    >>> fig = Figure(figsize=(2, 1))
    >>> _ = fig.add_subplot().plot([0, 1])
    >>> figure_to_svg(fig).startswith("<svg")
    True
    """
    buf = io.StringIO()
    with matplotlib.rc_context(SVG_RC):
        fig.savefig(buf, format="svg", metadata=_NO_METADATA)
    text = buf.getvalue()
    start = text.find("<svg")
    if start < 0:  # pragma: no cover - matplotlib always writes an <svg> root
        raise ValueError("matplotlib wrote no <svg> element")
    return text[start:].strip()
