"""numpy-style text for the nested lists that Outcomes store tensors as."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}

# torch dtype names -> numpy dtypes for display. NOTE: numpy has no bfloat16;
# every bfloat16 value is exact in float32.
_DTYPES = {
    "bool": np.bool_,
    "uint8": np.uint8,
    "int8": np.int8,
    "int16": np.int16,
    "int32": np.int32,
    "int64": np.int64,
    "float16": np.float16,
    "bfloat16": np.float32,
    "float32": np.float32,
    "float64": np.float64,
}


def decode(data: Any) -> Any:
    """Undo the JSON encoding of non-finite floats ("nan", "inf", "-inf")."""
    if isinstance(data, list):
        return [decode(item) for item in data]
    if isinstance(data, str) and data in _NONFINITE:
        return _NONFINITE[data]
    return data


def format_array(data: Any, dtype: str | None = None, shape: list[int] | None = None) -> str:
    """Print ``data`` the way numpy prints an array of that dtype and shape.

    Floats print in their shortest round-tripping form (``floatmode="unique"``):
    a report about numerical divergences must not round away the difference.
    Data that does not fit the dtype or shape prints as JSON instead.

    >>> format_array([1.0, "nan", "-inf"], "float32", [3])
    '[  1.  nan -inf]'
    """
    try:
        array = np.array(decode(data), dtype=_DTYPES.get(dtype or ""))
        if shape is not None and list(array.shape) != list(shape):
            array = array.reshape(shape)  # e.g. [] for shape (0, 3)
    except (TypeError, ValueError, OverflowError):
        return json.dumps(data)
    return np.array2string(
        array,
        max_line_width=76,
        precision=None,
        floatmode="unique",
        threshold=200,
        edgeitems=3,
        separator=" ",
        sign="-",
        legacy=False,
    )


def format_scalar(value: Any, dtype: str | None = None) -> str:
    """One element as its dtype prints it: ``format_scalar(0.1, "float32")`` is
    ``'0.1'``, not the float64 ``0.10000000149011612``."""
    try:
        with np.errstate(all="ignore"):
            return str(np.array(value, dtype=_DTYPES.get(dtype or ""))[()])
    except (TypeError, ValueError, OverflowError):
        return json.dumps(value)
