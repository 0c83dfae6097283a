"""Tensor printing that reproduces torch 2.13's ``repr``/``str`` of CPU tensors.

Only the default print options are supported (precision 4, threshold 1000,
edgeitems 3, linewidth 80, automatic scientific notation), and only the dtypes
the engine has: float32, float64, int64 and bool.  The goal is byte-for-byte
equality with torch, so several of torch's quirks are reproduced on purpose;
they are marked with ``NOTE:``.
"""

from __future__ import annotations

import math

import numpy as np

PRECISION = 4
THRESHOLD = 1000
EDGEITEMS = 3
LINEWIDTH = 80
PREFIX = "tensor("

DEFAULT_DTYPE = "float32"
_NUMPY_DTYPES = {
    "float32": np.float32,
    "float64": np.float64,
    "int64": np.int64,
    "bool": np.bool_,
}
# A non-empty tensor of these dtypes can be told apart by its values alone
# (float32 is the default, ints have no decimal point, bools print True/False),
# so torch omits the dtype suffix for them.
_DTYPES_INFERABLE_FROM_VALUES = {"float32", "int64", "bool"}


class _ElementFormatter:
    """One notation and one column width shared by every printed element.

    torch decides both from the elements that will actually be shown, so the
    caller passes the summarized array when the tensor is summarized.
    """

    def __init__(self, shown: np.ndarray) -> None:
        self.is_float = shown.dtype.kind == "f"
        self.int_mode = True  # every value integral: print "7." instead of "7.0000"
        self.sci_mode = False
        self.width = 1
        flat = shown.reshape(-1)

        if not self.is_float:
            self.width = max([1] + [len(str(v)) for v in flat.tolist()])
            return

        # Zeros and non-finite values never influence notation or width
        # (NOTE: so "nan"/"inf"/"-0." may stick out of the column in torch too).
        informative = flat[np.isfinite(flat) & (flat != 0)]
        if informative.size == 0:
            return

        self.int_mode = bool(np.all(informative == np.ceil(informative)))
        # torch compares magnitudes in double precision, whatever the dtype;
        # Python floats give the same IEEE results without numpy overflow warnings.
        magnitudes = np.abs(informative.astype(np.float64))
        smallest, largest = float(magnitudes.min()), float(magnitudes.max())
        self.sci_mode = largest / smallest > 1000.0 or largest > 1.0e8 or smallest < 1.0e-4

        values = informative.tolist()
        if self.sci_mode:
            widths = [len(f"{v:.{PRECISION}e}") for v in values]
        elif self.int_mode:
            widths = [len(f"{v:.0f}") + 1 for v in values]  # +1 for the trailing "."
        else:
            widths = [len(f"{v:.{PRECISION}f}") for v in values]
        self.width = max(self.width, max(widths))

    def format(self, value: float | int | bool) -> str:
        if not self.is_float:
            text = str(value)
        elif self.sci_mode:
            text = f"{value:.{PRECISION}e}"
        elif self.int_mode:
            text = f"{value:.0f}"
            # The "." marks the tensor as floating; "nan"/"inf" already do that.
            if math.isfinite(value):
                text += "."
        else:
            text = f"{value:.{PRECISION}f}"
        return text.rjust(self.width)


def _shown_indices(length: int, summarize: bool) -> list[int | None]:
    """Indices printed along one dimension; ``None`` stands for the ellipsis."""
    if summarize and length > 2 * EDGEITEMS:
        return [*range(EDGEITEMS), None, *range(length - EDGEITEMS, length)]
    return list(range(length))


def _summarized(data: np.ndarray) -> np.ndarray:
    """The sub-array of elements that survive summarization (for width/notation)."""
    for axis, length in enumerate(data.shape):
        kept = [i for i in _shown_indices(length, True) if i is not None]
        if len(kept) < length:
            data = np.take(data, kept, axis=axis)
    return data


def _format_row(row: np.ndarray, fmt: _ElementFormatter, indent: int, summarize: bool) -> str:
    values = row.tolist()
    items = [
        # NOTE: torch's 1-d ellipsis carries a leading space and takes a slot in
        # the wrapping arithmetic like any other element.
        " ..." if i is None else fmt.format(values[i])
        for i in _shown_indices(len(values), summarize)
    ]
    # Each element costs its width plus ", "; the row wraps under its "[".
    per_line = max(1, (LINEWIDTH - indent) // (fmt.width + 2))
    lines = [", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]
    return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"


def _format_nested(data: np.ndarray, fmt: _ElementFormatter, indent: int, summarize: bool) -> str:
    if data.ndim == 0:
        return fmt.format(data.item())
    if data.ndim == 1:
        return _format_row(data, fmt, indent, summarize)
    blocks = [
        "..." if i is None else _format_nested(data[i], fmt, indent + 1, summarize)
        for i in _shown_indices(data.shape[0], summarize)
    ]
    # Deeper blocks are separated by more blank lines: one per dimension below 2-d.
    separator = "," + "\n" * (data.ndim - 1) + " " * (indent + 1)
    return "[" + separator.join(blocks) + "]"


def _append_suffixes(text: str, suffixes: list[str], indent: int) -> str:
    # NOTE: torch measures the current line as its real length + 2 (both for a
    # single-line and a multi-line body), but after it breaks a line it uses the
    # real length.  Hence a suffix may go on its own line slightly early.
    line_len = len(text) - text.rfind("\n") + 1
    parts = [text]
    for suffix in suffixes:
        if line_len + len(suffix) + 2 > LINEWIDTH:
            parts.append(",\n" + " " * indent + suffix)
            line_len = indent + len(suffix)
        else:
            parts.append(", " + suffix)
            line_len += len(suffix) + 2
    parts.append(")")
    return "".join(parts)


def format_tensor(data: np.ndarray, dtype_name: str, suffixes: list[str]) -> str:
    """Return ``repr(t)`` (== ``str(t)``) exactly as torch prints a CPU tensor.

    ``suffixes`` (e.g. ``"requires_grad=True"``, ``"grad_fn=<MulBackward0>"``)
    are appended after the ``size=``/``dtype=`` suffixes this function adds.
    """
    values = np.asarray(data, dtype=_NUMPY_DTYPES[dtype_name])
    indent = len(PREFIX)
    own_suffixes = []
    if values.size == 0:
        # An empty tensor shows its shape unless it is the plain (0,), and its
        # dtype unless it is the default: there are no values to infer it from.
        if values.ndim != 1:
            own_suffixes.append(f"size={tuple(values.shape)}")
        if dtype_name != DEFAULT_DTYPE:
            own_suffixes.append(f"dtype=torch.{dtype_name}")
        body = "[]"
    else:
        if dtype_name not in _DTYPES_INFERABLE_FROM_VALUES:
            own_suffixes.append(f"dtype=torch.{dtype_name}")
        summarize = values.size > THRESHOLD
        formatter = _ElementFormatter(_summarized(values) if summarize else values)
        body = _format_nested(values, formatter, indent, summarize)
    return _append_suffixes(PREFIX + body, own_suffixes + list(suffixes), indent)
