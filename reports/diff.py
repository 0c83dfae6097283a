"""Where two outcomes' numbers differ: largest absolute and relative errors per tensor.

Computed from the data a finding record carries (``outcomes``), so the page
shows the difference itself, not only the comparator's one-line ``detail``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .arrays import decode


@dataclass(frozen=True)
class Worst:
    """One element: its index and both sides' values there."""

    error: float
    index: tuple[int, ...]
    tested: float | int | bool
    reference: float | int | bool


@dataclass(frozen=True)
class Difference:
    """One step value (``"v1"``) or leaf gradient (``"grad x0"``) on both sides."""

    subject: str
    shape: tuple[int, ...] | None = None
    dtypes: tuple[str | None, str | None] = (None, None)
    # Why the numbers cannot be compared ("shapes differ: ..."), or None.
    problem: str | None = None
    differing: int = 0
    size: int = 0
    absolute: Worst | None = None
    relative: Worst | None = None


def differences(tested: dict[str, Any] | None, reference: dict[str, Any] | None) -> list[Difference]:
    """Compare every step value and leaf gradient present in both OUTCOMEs.

    ``reference`` (torch) is the denominator of relative errors. NaN equals
    NaN and infinities equal when their signs do (Contract 4); a NaN or
    infinity on one side only is an infinite error. Tensors that differ come
    first, largest absolute error first; then the equal ones in program order.
    """
    if not tested or not reference:
        return []
    pairs = []
    values = {v.get("ref"): v for v in reference.get("values") or [] if isinstance(v, dict)}
    for value in tested.get("values") or []:
        if isinstance(value, dict) and value.get("ref") in values:
            pairs.append((str(value["ref"]), value, values[value["ref"]]))
    grads = reference.get("grads") or {}
    for leaf, grad in (tested.get("grads") or {}).items():
        if leaf in grads:
            pairs.append((f"grad {leaf}", grad, grads[leaf]))
    found = [d for d in (_difference(*pair) for pair in pairs) if d is not None]
    order = {id(d): n for n, d in enumerate(found)}
    return sorted(found, key=lambda d: (d.differing == 0 and d.problem is None,
                                        -(d.absolute.error if d.absolute else 0.0), order[id(d)]))


def _difference(subject: str, tested: Any, reference: Any) -> Difference | None:
    if not isinstance(tested, dict) or not isinstance(reference, dict):
        if (tested is None) == (reference is None):
            return None
        side, other = ("the tested backend", reference) if tested is None else ("torch", tested)
        dtype = other.get("dtype") if isinstance(other, dict) else None
        return Difference(subject, dtypes=(None, dtype) if tested is None else (dtype, None),
                          problem=f"None on {side} only")
    if tested.get("error") or reference.get("error"):
        return None  # errors are shown with the outcomes, not as numbers
    dtypes = (tested.get("dtype"), reference.get("dtype"))
    try:
        a, b = _array(tested), _array(reference)
    except (TypeError, ValueError, OverflowError):
        return Difference(subject, dtypes=dtypes, problem="data not numeric")
    if a.shape != b.shape:
        return Difference(subject, dtypes=dtypes,
                          problem=f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    shape = tuple(int(n) for n in a.shape)
    if a.size == 0:
        return Difference(subject, shape, dtypes)
    with np.errstate(all="ignore"):
        agree = (a == b) | (np.isnan(a) & np.isnan(b))
        absolute = np.where(agree, 0.0, np.nan_to_num(np.abs(a - b), nan=np.inf, posinf=np.inf))
        relative = np.where(agree, 0.0, absolute / np.abs(b))
        relative = np.nan_to_num(relative, nan=np.inf, posinf=np.inf)
    differing = int((~agree).sum())
    if not differing:
        return Difference(subject, shape, dtypes, size=a.size)
    return Difference(subject, shape, dtypes, None, differing, int(a.size),
                      _worst(absolute, a, b), _worst(relative, a, b))


def _array(entry: dict[str, Any]) -> np.ndarray:
    array = np.array(decode(entry.get("data")), dtype=np.float64)
    shape = entry.get("shape")
    if isinstance(shape, list) and list(array.shape) != shape:
        array = array.reshape(shape)  # e.g. [] for shape (0, 3)
    return array


def _worst(errors: np.ndarray, a: np.ndarray, b: np.ndarray) -> Worst:
    index = np.unravel_index(int(np.argmax(errors)), errors.shape)
    return Worst(float(errors[index]), tuple(int(i) for i in index), a[index].item(), b[index].item())
