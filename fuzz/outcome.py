"""What running a Program on one backend produced: the `Outcome` and its parts.

An Outcome holds numpy arrays (so the comparator can do arithmetic) and
serializes to the JSON shape that results files and reports use::

    {"values": [{"ref": "v0", "dtype": "float32", "shape": [2], "data": [...],
                 "requires_grad": true, "grad_fn": "MulBackward0"},
                {"ref": "v1", "error": {"type": "RuntimeError", "message": "..."}}],
     "error": null | {"type": ..., "message": ..., "where": "step 1" | "action" | "input x0"},
     "grads": {"x0": {"dtype": "float32", "shape": [2], "data": [...]} | null},
     "warnings": [{"category": "UserWarning", "message": "..."}]}

Non-finite floats in ``data`` are the strings "nan", "inf", "-inf".
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from fuzz.program import encode_values


@dataclass(frozen=True)
class Array:
    """A tensor's contents: its dtype name (``"float32"``) and a numpy copy of its data."""

    dtype: str
    data: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    def to_json(self) -> dict:
        return {"dtype": self.dtype, "shape": list(self.shape), "data": encode_values(self.data.tolist())}


@dataclass(frozen=True)
class Failure:
    """An exception: its type name, its message, and where it was raised (top-level errors only)."""

    type: str
    message: str
    where: str | None = None

    def to_json(self) -> dict:
        data = {"type": self.type, "message": self.message}
        if self.where is not None:
            data["where"] = self.where
        return data


@dataclass(frozen=True)
class StepResult:
    """The output of one step (`value` with its autograd metadata) or the exception it raised."""

    ref: str
    value: Array | None = None
    requires_grad: bool = False
    grad_fn: str | None = None
    error: Failure | None = None

    def to_json(self) -> dict:
        if self.error is not None:
            return {"ref": self.ref, "error": self.error.to_json()}
        return {"ref": self.ref, **self.value.to_json(),
                "requires_grad": self.requires_grad, "grad_fn": self.grad_fn}


@dataclass(frozen=True)
class RecordedWarning:
    """A warning raised while the program ran: category name and message."""

    category: str
    message: str

    def to_json(self) -> dict:
        return {"category": self.category, "message": self.message}


@dataclass(frozen=True)
class Outcome:
    """Per-step results up to the first exception, that exception, leaf gradients, warnings."""

    values: tuple[StepResult, ...]
    error: Failure | None
    grads: dict[str, Array | None]
    warnings: tuple[RecordedWarning, ...]

    def value(self, ref: str) -> StepResult | None:
        """The result recorded for step output ``ref``, if the run got that far."""
        return next((result for result in self.values if result.ref == ref), None)

    def with_messages(self, normalize: Callable[[str], str]) -> Outcome:
        """The same outcome with every error and warning message passed through ``normalize``."""
        # Most messages are normal already: those keep their objects (and an outcome without any
        # changed message is returned itself).
        def fix(failure: Failure | None) -> Failure | None:
            if failure is None:
                return None
            message = normalize(failure.message)
            return failure if message == failure.message else replace(failure, message=message)

        def fixed_result(result: StepResult) -> StepResult:
            error = fix(result.error)
            return result if error is result.error else replace(result, error=error)

        def fixed_warning(warning: RecordedWarning) -> RecordedWarning:
            message = normalize(warning.message)
            return warning if message == warning.message else replace(warning, message=message)
        if self.error is None and not self.warnings:  # nothing to normalize (most outcomes)
            return self
        values = tuple(map(fixed_result, self.values))
        error, warnings = fix(self.error), tuple(map(fixed_warning, self.warnings))
        if error is self.error and all(map(operator.is_, values, self.values)) and \
                all(map(operator.is_, warnings, self.warnings)):
            return self
        return replace(self, values=values, error=error, warnings=warnings)

    def to_json(self) -> dict:
        return {
            "values": [result.to_json() for result in self.values],
            "error": None if self.error is None else self.error.to_json(),
            "grads": {name: None if grad is None else grad.to_json() for name, grad in self.grads.items()},
            "warnings": [warning.to_json() for warning in self.warnings],
        }
