"""Compare a backend's Outcome with torch's: a Verdict, `match` or one named divergence.

Every difference found is a divergence of one kind (DIVERGENCE_KINDS). The
verdict reports one of them: the first *consequential* one in program order
(errors, shapes, dtypes, values, gradients: the ones that change later data,
so the first is the root), or, when there is none, the first *cosmetic* one
(grad_fn names, error messages, warnings). The rest are listed in `others`.

Tolerances are `torch.testing.assert_close`'s defaults per dtype, computed
with numpy; NaN equals NaN and infinities must match in sign. A float32
difference is not reported when the program cast to float64 shows it is
rounding (the engine is within tolerance of the float64 result, or no more
than PRECISION_FACTOR times further from it than torch is); the verdict then
carries a note instead. So does a value or gradient difference in a program
that reaches extreme magnitudes (above EXTREME_MAGNITUDE) when it is no larger
than the rounding error at those magnitudes (`_without_rounding`): summing
-1e30, 1e30 and 3 gives 0 or 3 by the order of the terms, and no order is
torch's contract. Gradient divergences are adjudicated with float64 finite
differences (`oracle.numerical_gradient`).
"""
from __future__ import annotations

import functools
import re
from collections import Counter
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Callable

import numpy as np

import oracle
from oracle.numerical import ROUNDINGS
from engine.optable import BY_NAME, OPS
from engine.optable import LINALG as LINALG_KIND, MATMUL as MATMUL_KIND, REDUCTION as REDUCTION_KIND
from fuzz import interpreter
from fuzz.outcome import Array, Failure, Outcome, StepResult
from fuzz.program import (BACKWARD_GRADIENT, DOUBLE_BACKWARD, REPEATED_BACKWARD, SUM_BACKWARD, Action, Literal, Program,
                          Ref)

MATCH = "match"
# Consequential kinds change the data that later steps see; cosmetic ones do not.
ERROR_VS_SUCCESS, ERROR_TYPE, SHAPE, DTYPE, VALUE, GRADIENT_NONE, GRADIENT = (
    "error-vs-success", "error-type", "shape", "dtype", "value", "gradient-none", "gradient")
GRAD_FN, ERROR_MESSAGE, WARNING = "grad-fn", "error-message", "warning"
CONSEQUENTIAL_KINDS = (ERROR_VS_SUCCESS, ERROR_TYPE, SHAPE, DTYPE, VALUE, GRADIENT_NONE, GRADIENT)
COSMETIC_KINDS = (GRAD_FN, ERROR_MESSAGE, WARNING)
DIVERGENCE_KINDS = CONSEQUENTIAL_KINDS + COSMETIC_KINDS

# (rtol, atol): torch.testing.assert_close defaults. Other dtypes compare exactly.
TOLERANCES = {"float32": (1.3e-6, 1e-5), "float64": (1e-7, 1e-7)}
# A float32 difference is rounding when the engine is at most this many times
# further from the float64 result than torch is.
PRECISION_FACTOR = 4.0
# Agreement with central differences (step 1e-6 in float64, truncation error
# ~1e-12 relative) for gradients computed in float32 or float64.
FINITE_DIFFERENCE_TOLERANCE = (1e-3, 1e-4)
# Magnitudes above which a program's tolerances mean nothing (the strategy's MODERATE bound on the
# operands it draws inside a domain, fuzz.strategies.MODERATE): there, a difference of at most
# oracle.numerical.ROUNDINGS roundings (eps of the dtype) at the largest magnitude the compared value depends
# on is the order of summation, not a divergence. Campaign seed 9 (10 min) had 12 such findings of
# 21: x @ [-1e30, ..., 1e30, ..., -3.3] summed to 0 in torch's BLAS and to -3.3 in numpy's.
EXTREME_MAGNITUDE = 1e4

ENGINE_AGREES = "engine agrees with finite differences"
TORCH_AGREES = "torch agrees with finite differences"
BOTH_AGREE = "both agree with finite differences (precision difference)"
CONVENTION = "non-differentiable point (kink or tie): convention difference"
NEITHER_AGREES = "neither agrees with finite differences"
NO_FINITE_DIFFERENCES = "no finite differences (the float64 program raises)"
UNRESOLVED = "no finite differences (the loss's rounding at the magnitudes the program reaches exceeds the difference)"
NOT_ONE_LOSS = "no finite differences (hooks, detach, no_grad or double backward: the gradients are no loss's)"


@dataclass(frozen=True)
class Verdict:
    """The comparison of two Outcomes of one Program.

    ``kind`` is MATCH or one of DIVERGENCE_KINDS; ``op`` the op held
    responsible; ``where`` the place (``"step 2"``, ``"action"``, ``"grad x0"``,
    ``"warnings"``, ``"input x0"``); ``detail`` one line with the largest
    errors; ``adjudication`` the finite-difference opinion (gradient kinds);
    ``notes`` differences judged to be rounding; ``others`` the divergences
    not reported.
    """

    kind: str
    op: str | None = None
    dtype: str | None = None
    where: str | None = None
    detail: str = ""
    adjudication: str | None = None
    notes: tuple[str, ...] = ()
    others: tuple[str, ...] = ()

    @property
    def diverged(self) -> bool:
        return self.kind != MATCH

    @property
    def torch_at_fault(self) -> bool:
        """Torch's gradient disagrees with the mathematics and the engine's agrees: a finding about
        torch, reported, but no fault of the engine's (see `fuzz.campaign.Summary.engine_findings`)."""
        return self.adjudication == ENGINE_AGREES

    @property
    def signature(self) -> str:
        """``kind|op|dtype``: findings with one signature are one bug."""
        return f"{self.kind}|{self.op}|{self.dtype}"

    def to_json(self) -> dict:
        return {"kind": self.kind, "signature": self.signature if self.diverged else None,
                "op": self.op, "dtype": self.dtype, "where": self.where, "detail": self.detail,
                "adjudication": self.adjudication, "notes": list(self.notes), "others": list(self.others)}


@dataclass(frozen=True)
class _Place:
    """Where two outcomes are compared."""

    where: str          # "step 2", "action", "grad x0", "warnings", "input x0"
    subject: str        # the ref or input name whose data is compared
    label: str          # how a detail line names the place, e.g. "step 2 (mul, v2)"
    step: int | None = None  # index of the step, for step-level places


@dataclass(frozen=True)
class _Divergence:
    kind: str
    place: _Place
    detail: str
    # For a value or gradient difference: the largest |engine - torch| where they differ, or None
    # where one side is not finite there (NaN against a number, inf against another value).
    gap: float | None = None

    @property
    def consequential(self) -> bool:
        return self.kind in CONSEQUENTIAL_KINDS


def compare(engine_outcome: Outcome, torch_outcome: Outcome, program: Program, *,
            backend: ModuleType | None = None, adjudicate: bool = True) -> Verdict:
    """Compare the backend's outcome of ``program`` with torch's.

    ``backend``, the module that produced ``engine_outcome``, is optional: when
    given, a divergence that shows only in gradients, the action or warnings
    is pinned on an op by rerunning ever longer prefixes of the program on
    both backends; without it, the op nearest the inputs is blamed.
    ``adjudicate=False`` leaves a gradient divergence's finite-difference
    opinion for later (`adjudicated`): it does not change the signature, and a
    campaign needs it only for the findings it records.

    >>> verdict = compare(interpreter.run(p, engine), oracle.run_torch(p), p, backend=engine)
    >>> verdict.kind, verdict.signature    # doctest: +SKIP
    ('gradient', 'gradient|mul|float32')
    """
    if _identical(engine_outcome, torch_outcome):
        return _MATCH  # what the comparison below finds in equal outcomes: nothing, and nothing forgiven
    notes: list[str] = []
    found = _divergences(engine_outcome, torch_outcome, program, notes)
    if found:
        found = _without_rounding(found, program, torch_outcome, notes)
    if not found:
        return Verdict(MATCH, notes=tuple(notes))
    primary = next((d for d in found if d.consequential), found[0])
    place = primary.place
    if place.step is not None:
        step = program.steps[place.step]
        op = _inplace_check_owner(engine_outcome, torch_outcome, step.out, primary.kind) or \
            _shared_check_owner(engine_outcome, torch_outcome, step.out, primary.kind) or step.op
    elif primary.kind == WARNING and (owner := _warning_owner(engine_outcome, torch_outcome)) is not None:
        op = owner
    elif place.where.startswith("input"):
        op = "tensor"
    elif primary.kind == ERROR_MESSAGE and place.where == "action" and torch_outcome.error is not None:
        op = _message_owner(torch_outcome.error.message, program.action.kind)
    elif primary.kind in (ERROR_VS_SUCCESS, ERROR_TYPE) and place.where == "action" and \
            (message := _autograd_message(engine_outcome, torch_outcome)) is not None:
        op = _message_owner(message, program.action.kind)
    else:
        op = (_localize(primary.kind, program, backend, torch_outcome) if backend is not None else None) \
            or _nearest_input_op(program)
    adjudication = None
    if primary.kind == GRADIENT and adjudicate:
        adjudication = _adjudicate(program, place.subject, engine_outcome, torch_outcome)
    others = tuple(f"{d.kind} at {d.place.where}" for d in found if d is not primary)
    return Verdict(primary.kind, op, program.dtype, place.where, primary.detail, adjudication,
                   tuple(notes), others)


_MATCH = Verdict(MATCH)


def _identical(engine: Outcome, torch_: Outcome) -> bool:
    """Whether the two outcomes are the same in everything `_divergences` compares: every step's ref,
    error, autograd metadata and data (dtype, shape and bytes: signs of zero and NaNs included), the
    error, every gradient and the warnings. Most outcomes are; this says so without the per-step
    bookkeeping (places, tolerances, float32 lineage) that only a difference needs."""
    if engine.error != torch_.error or engine.warnings != torch_.warnings or \
            len(engine.values) != len(torch_.values) or engine.grads.keys() != torch_.grads.keys():
        return False
    for mine, theirs in zip(engine.values, torch_.values):
        if mine.ref != theirs.ref or mine.error != theirs.error or mine.grad_fn != theirs.grad_fn or \
                mine.requires_grad != theirs.requires_grad or not _same_array(mine.value, theirs.value):
            return False
    grads = torch_.grads
    return all(_same_array(grad, grads[name]) for name, grad in engine.grads.items())


def _same_array(engine: Array | None, torch_: Array | None) -> bool:
    if engine is None or torch_ is None:
        return engine is torch_
    return engine.dtype == torch_.dtype and engine.data.dtype == torch_.data.dtype and \
        engine.data.shape == torch_.data.shape and engine.data.tobytes() == torch_.data.tobytes()


def adjudicated(verdict: Verdict, program: Program, engine_outcome: Outcome, torch_outcome: Outcome) -> Verdict:
    """``verdict`` (of ``compare(..., adjudicate=False)``) with its finite-difference opinion."""
    if verdict.kind != GRADIENT or verdict.adjudication is not None:
        return verdict
    subject = verdict.where.split(" ", 1)[1]  # "grad x0" -> "x0"
    return replace(verdict, adjudication=_adjudicate(program, subject, engine_outcome, torch_outcome))


def tolerance(dtype: str, ops: tuple[str, ...] = ()) -> tuple[float, float]:
    """(rtol, atol) for ``dtype``: assert_close's default, loosened by any op's table override.

    A multi-output result (``"tuple[float32[2],int64[2]]"``) takes its loosest floating part's:
    its values copy inputs that may already differ within tolerance (integer parts, indices,
    still differ by at least 1 when they differ).
    """
    if dtype.startswith("tuple["):
        parts = [TOLERANCES[part] for part in re.findall(r"float(?:32|64)", dtype)] or [(0.0, 0.0)]
        rtol, atol = max(part[0] for part in parts), max(part[1] for part in parts)
    else:
        rtol, atol = TOLERANCES.get(dtype, (0.0, 0.0))
    for name in ops:
        override = (BY_NAME[name].tol or {}).get(dtype) if name in BY_NAME else None
        if override:
            rtol, atol = max(rtol, override[0]), max(atol, override[1])
    return rtol, atol


def _carried_tolerance(dtype: str, carries_float32: bool, ops: tuple[str, ...]) -> tuple[float, float]:
    """The tolerance of a result of ``dtype``, loosened to float32's when it carries float32
    rounding: a float64 value computed from a float32 one, or a float64 gradient that flowed
    through float32 steps (a float64 leaf cast to float32 gets its gradient from float32
    arithmetic)."""
    rtol, atol = tolerance(dtype, ops)
    if dtype == "float64" and carries_float32:
        low_rtol, low_atol = tolerance("float32", ops)
        rtol, atol = max(rtol, low_rtol), max(atol, low_atol)
    return rtol, atol


def close(actual: np.ndarray, expected: np.ndarray, rtol: float, atol: float) -> np.ndarray:
    """Elementwise ``|actual - expected| <= atol + rtol * |expected|`` in float64; NaN == NaN, inf by sign.

    `np.isclose(..., equal_nan=True)` computed directly: most compared arrays are equal,
    and np.isclose's generality costs ten times the arithmetic on arrays this small.
    """
    if actual.dtype == expected.dtype:
        equal = actual == expected  # also infinities of the same sign
        if equal.all():
            return equal
    a, b = actual.astype(np.float64), expected.astype(np.float64)
    equal = a == b
    if equal.all():
        return equal
    with np.errstate(invalid="ignore", over="ignore"):
        within = (np.abs(a - b) <= atol + rtol * np.abs(b)) & np.isfinite(b)
    return equal | within | (np.isnan(a) & np.isnan(b))


def _divergences(engine: Outcome, torch_: Outcome, program: Program, notes: list[str]) -> list[_Divergence]:
    """Every difference, in program order; ``notes`` collects float32 rounding that was forgiven."""
    found: list[_Divergence] = []
    float64_reference = _Float64Reference(program)

    input_divergence = _compare_input_errors(engine.error, torch_.error)
    if input_divergence:
        return [input_divergence]
    both_reached_action = True
    step_dtypes = {tensor.dtype for tensor in program.inputs}
    # Tensors whose values carry float32 rounding: float32 ones and any computed from one.
    rounded32 = {tensor.name for tensor in program.inputs if tensor.dtype == "float32"}
    # Step outputs computed from a sum of products (see _ACCUMULATING_OPS), that step's own included:
    # where its terms overflow, inf against NaN is the kernel's order, and the steps after it that
    # carry the value on (neg, detach, retain_grad, ...) show the same (campaign seed 12: one bmm of
    # terms near 3e38 was four findings, keyed on four later steps).
    summed: set[str] = set()
    for index, step in enumerate(program.steps):
        engine_result, torch_result = engine.value(step.out), torch_.value(step.out)
        if engine_result is None or torch_result is None:
            both_reached_action = False
            break
        place = _Place(f"step {index}", step.out, f"step {index} ({step.op}, {step.out})", index)
        if engine_result.error or torch_result.error:
            found += _compare_failures(engine_result.error, torch_result.error, place, engine_result, torch_result)
            both_reached_action = False
            break
        dtype = torch_result.value.dtype
        step_dtypes.add(dtype)
        refs = step.refs()
        inherits = any(name in rounded32 for name in refs)
        if inherits or dtype == "float32":
            rounded32.add(step.out)
        if step.op in _ACCUMULATING_OPS or (summed and any(name in summed for name in refs)):
            summed.add(step.out)
        found += _compare_arrays(engine_result.value, torch_result.value, place, VALUE,
                                 _carried_tolerance(dtype, inherits, (step.op,)),
                                 lambda ref=step.out: float64_reference.value(ref), notes,
                                 zero_signs=_signs_comparable(step), sums=step.out in summed)
        found += _compare_autograd_metadata(engine_result, torch_result, place)

    if both_reached_action:
        engine_error = engine.error if engine.error and engine.error.where == "action" else None
        torch_error = torch_.error if torch_.error and torch_.error.where == "action" else None
        action = program.action
        found += _compare_failures(engine_error, torch_error,
                                   _Place("action", action.target, f"action ({action.kind} on {action.target})"))

    # Leaf grads, then retained grads (``v3``), grads after a first backward (``x0@backward1``)
    # and first-order grads of a double backward (``x0@grad``).
    names = [tensor.name for tensor in program.inputs]
    names += sorted((set(engine.grads) | set(torch_.grads)) - set(names), key=_grad_order)
    for name in names:
        engine_grad, torch_grad = engine.grads.get(name), torch_.grads.get(name)
        place = _Place(f"grad {name}", name, f"grad of {name}")
        if engine_grad is None and torch_grad is None:
            continue
        if engine_grad is None or torch_grad is None:
            found.append(_Divergence(GRADIENT_NONE, place, f"{place.label}: engine {_describe(engine_grad)} "
                                                           f"vs torch {_describe(torch_grad)}"))
            continue
        found += _compare_arrays(engine_grad, torch_grad, place, GRADIENT,
                                 _carried_tolerance(torch_grad.dtype, "float32" in step_dtypes, program.ops()),
                                 lambda name=name: float64_reference.grad(name), notes,
                                 sums=_passes_a_sum_of_products(program, name.partition("@")[0]))

    warning_divergence = _compare_warnings(engine, torch_)
    if warning_divergence:
        found.append(warning_divergence)
    return found


def _passes_a_sum_of_products(program: Program, name: str) -> bool:
    """Whether the gradient of tensor `name` comes back through a step that sums products.

    NOTE: as for a step's value (see _ACCUMULATING_OPS), the backward of matmul, einsum or a
    reduction sums products (matmul's is matmuls), in its kernel's order: where terms overflow,
    inf against NaN there is that order (fuzzer finding: einsum('ij,jk,kl->il') with terms
    near 3e38, a gradient NaN in torch, -inf in the engine's BLAS call). Only the steps that
    read `name`, directly or through other steps, pass its gradient back.
    """
    reached = {name}
    for step in program.steps:
        if reached.intersection(step.refs()):
            if step.op in _ACCUMULATING_OPS:
                return True
            reached.add(step.out)
    return False


def _grad_order(name: str) -> tuple:
    """Intermediate grads (``x0@backward1``, ``x0@grad``) before retained ones, by name."""
    return ("@" not in name, name)


class _Float64Reference:
    """torch's outcome of the program cast to float64, computed at most once and only if needed."""

    def __init__(self, program: Program):
        self.program = program

    @functools.cached_property
    def outcome(self) -> Outcome | None:
        if "float32" not in {tensor.dtype for tensor in self.program.inputs}:
            return None
        return oracle.run_torch(self.program.with_dtype("float64"))

    def value(self, ref: str) -> np.ndarray | None:
        result = self.outcome and self.outcome.value(ref)
        return None if not result or result.value is None else result.value.data

    def grad(self, name: str) -> np.ndarray | None:
        grad = self.outcome and self.outcome.grads.get(name)
        return None if grad is None else grad.data


def _compare_input_errors(engine_error: Failure | None, torch_error: Failure | None) -> _Divergence | None:
    engine_input = engine_error if engine_error and engine_error.where.startswith("input") else None
    torch_input = torch_error if torch_error and torch_error.where.startswith("input") else None
    if not engine_input and not torch_input:
        return None
    where = (engine_input or torch_input).where
    return next(iter(_compare_failures(engine_input, torch_input, _Place(where, where.split()[1], where))), None)


def _compare_failures(engine_error: Failure | None, torch_error: Failure | None, place: _Place,
                      engine_result: StepResult | None = None,
                      torch_result: StepResult | None = None) -> list[_Divergence]:
    if engine_error is None and torch_error is None:
        return []
    if engine_error is None or torch_error is None:
        engine_side = _describe_failure(engine_error) if engine_error else _describe_success(engine_result)
        torch_side = _describe_failure(torch_error) if torch_error else _describe_success(torch_result)
        return [_Divergence(ERROR_VS_SUCCESS, place, f"{place.label}: engine {engine_side}; torch {torch_side}")]
    if engine_error.type != torch_error.type:
        return [_Divergence(ERROR_TYPE, place, f"{place.label}: engine {_describe_failure(engine_error)}; "
                                               f"torch {_describe_failure(torch_error)}")]
    engine_message = oracle.normalize_message(engine_error.message)
    torch_message = oracle.normalize_message(torch_error.message)
    if engine_message != torch_message:
        return [_Divergence(ERROR_MESSAGE, place,
                            f"{place.label}: {torch_error.type} messages differ: "
                            f"engine {_one_line(engine_message)!r} vs torch {_one_line(torch_message)!r}")]
    return []


# Ops whose zero results are sums: their sign depends on the summation order (the BLAS
# kernel), not on a convention, so -0.0 against 0.0 there is not a divergence.
_ACCUMULATING_OPS = frozenset(op.name for op in OPS if op.kind in (MATMUL_KIND, LINALG_KIND, REDUCTION_KIND)) | {
    "nn.functional.linear", "cumsum", "cumprod"}

# NOTE: at a tie of 0.0 and -0.0 between two tensors, torch's scalar loop returns the first
# operand and its SIMD loop (_mm*_max_pd / _min_pd) the second; which elements take which loop
# depends on the length and the CPU's vector width (tests/engine/test_pointwise.py shows it).
# The sign there is a machine artefact, not torch behaviour: with a number bound (one tensor)
# torch uses the scalar rule throughout, and that stays compared.
_TIE_PICKING_OPS = frozenset({"maximum", "minimum", "clamp", "clamp_min", "clamp_max", "clip"})


def _signs_comparable(step) -> bool:
    """Whether a zero's sign in this step's result is a convention the engine must follow.

    Only for an op that does not sum (see _ACCUMULATING_OPS) applied directly to program
    inputs: an earlier step's zero can carry an order-dependent sign that later steps
    merely propagate. Not for a tie between two tensors in _TIE_PICKING_OPS.
    """
    if step.op in _TIE_PICKING_OPS and len(step.refs()) > 1:
        return False
    return step.op not in _ACCUMULATING_OPS and all(ref.startswith("x") for ref in step.refs())  # inputs: x0, x1, ...


def _compare_arrays(engine: Array, torch_: Array, place: _Place, kind: str, rtol_atol: tuple[float, float],
                    float64_result: Callable[[], np.ndarray | None], notes: list[str],
                    zero_signs: bool = True, sums: bool = False) -> list[_Divergence]:
    """Shape, dtype and values (as ``kind``: VALUE or GRADIENT) of two arrays at one place.

    ``sums``: the values are sums of products (matmul, einsum, reductions), whose order is the
    kernel's; where terms overflow, inf against NaN is that order (inf + -inf), not a divergence.
    """
    if engine.data.shape != torch_.data.shape:
        return [_Divergence(SHAPE, place, f"{place.label}: engine shape {list(engine.shape)} "
                                          f"vs torch {list(torch_.shape)}")]
    # Most compared arrays are bit for bit the same (the same dtype, every element, sign of zero
    # and NaN included): nothing below could find a difference in them.
    if engine.dtype == torch_.dtype and engine.data.dtype == torch_.data.dtype and \
            engine.data.tobytes() == torch_.data.tobytes():
        return []
    found = []
    if engine.dtype != torch_.dtype:
        found.append(_Divergence(DTYPE, place, f"{place.label}: engine {engine.dtype} vs torch {torch_.dtype}"))
    rtol, atol = rtol_atol
    agree = close(engine.data, torch_.data, rtol, atol)
    if sums and not agree.all():
        overflow = ~agree & ((np.isnan(engine.data) & np.isinf(torch_.data)) |
                             (np.isinf(engine.data) & np.isnan(torch_.data)))
        if overflow.any():
            notes.append(f"{place.label}: {int(overflow.sum())} of {overflow.size} elements inf against NaN: "
                         f"overflowing terms summed in another order")
            agree = agree | overflow
    if agree.all():
        if kind == VALUE and not found and zero_signs:
            found += _compare_zero_signs(engine, torch_, place)
        return found
    detail = (f"{place.label}: {_error_summary(engine.data, torch_.data, agree)} "
              f"({torch_.dtype} rtol {rtol:g} atol {atol:g})")
    if torch_.dtype == "float32":
        reference = float64_result()
        if reference is not None and reference.shape == torch_.shape and \
                _rounding_explains(engine.data, torch_.data, reference, agree, rtol, atol):
            notes.append(f"{detail}; the float64 program shows this is float32 rounding")
            return found
    with np.errstate(all="ignore"):
        apart = engine.data[~agree].astype(np.float64), torch_.data[~agree].astype(np.float64)
        gap = float(np.max(np.abs(apart[0] - apart[1]))) if np.isfinite(apart).all() else None
    found.append(_Divergence(kind, place, detail, gap))
    return found


def _without_rounding(found: list[_Divergence], program: Program, torch_outcome: Outcome,
                      notes: list[str]) -> list[_Divergence]:
    """``found`` without its value and gradient differences that rounding at extreme magnitudes
    explains (each becomes a note), when every consequential difference is one of them.

    A value at step k depends on the inputs and steps 0..k; a gradient on the whole program and
    the gradients computed before it (a double backward's first-order ones). The magnitudes are
    torch's, so the engine cannot raise its own allowance.
    """
    consequential = [d for d in found if d.consequential]
    if any(d.kind not in (VALUE, GRADIENT) or d.gap is None for d in consequential):
        return found
    explained = []
    for divergence in consequential:
        last_step = divergence.place.step if divergence.kind == VALUE else len(program.steps) - 1
        magnitude = _largest_magnitude(program, torch_outcome, last_step, grads=divergence.kind == GRADIENT)
        dtype = _compared_dtype(divergence, torch_outcome)
        allowed = ROUNDINGS * float(np.finfo(dtype).eps) * magnitude
        if magnitude <= EXTREME_MAGNITUDE or divergence.gap > allowed:
            return found
        explained.append(f"{divergence.detail}; within rounding at the magnitudes reached "
                         f"({magnitude:.3g}: at most {allowed:.3g})")
    notes += explained
    return [d for d in found if not d.consequential]


def _largest_magnitude(program: Program, torch_outcome: Outcome, last_step: int, *, grads: bool) -> float:
    """The largest finite magnitude among the inputs, torch's values of steps 0..last_step and,
    with ``grads``, torch's gradients and the explicit gradient backward was given (campaign seed
    27: 1e30 and -1e30 in it, summed over a broadcast dim in another order, gave 0.0 or -2.6)."""
    arrays = [np.asarray(tensor.values, dtype=np.float64) for tensor in program.inputs
              if tensor.dtype in TOLERANCES]
    if grads and program.action.gradient is not None:
        arrays.append(np.asarray(program.action.gradient, dtype=np.float64))
    for step in program.steps[:last_step + 1]:
        result = torch_outcome.value(step.out)
        if result is not None and result.value is not None and result.value.dtype in TOLERANCES:
            arrays.append(result.value.data)
    if grads:
        arrays += [grad.data for grad in torch_outcome.grads.values() if grad is not None and grad.dtype in TOLERANCES]
    largest = 0.0
    with np.errstate(all="ignore"):
        for array in arrays:
            magnitudes = np.abs(np.asarray(array, dtype=np.float64))
            largest = max(largest, float(np.max(magnitudes[np.isfinite(magnitudes)], initial=0.0)))
    return largest


def _compared_dtype(divergence: _Divergence, torch_outcome: Outcome) -> np.dtype:
    """The float dtype of the array a value or gradient divergence compared (torch's)."""
    if divergence.kind == VALUE:
        result = torch_outcome.value(divergence.place.subject)
        array = result.value if result is not None else None
    else:
        array = torch_outcome.grads.get(divergence.place.subject)
    return np.dtype(array.dtype if array is not None and array.dtype in TOLERANCES else "float64")


def _compare_zero_signs(engine: Array, torch_: Array, place: _Place) -> list[_Divergence]:
    """-0.0 against 0.0 in a forward value: equal as numbers, but later results differ
    (``1 / x``, ``atan2``), so it is a value divergence of its own."""
    if engine.data.dtype.kind != "f" or torch_.data.dtype.kind != "f":
        return []
    differ = np.signbit(engine.data) != np.signbit(torch_.data)
    if not differ.any():  # the common case, in fewer operations
        return []
    differ &= (engine.data == 0) & (torch_.data == 0)
    if not differ.any():
        return []
    index = tuple(int(i) for i in np.argwhere(differ)[0])
    return [_Divergence(VALUE, place, f"{place.label}: sign of zero: {int(differ.sum())} of {differ.size} elements; "
                                      f"at {list(index)} engine {engine.data[index].item()!r} "
                                      f"vs torch {torch_.data[index].item()!r}")]


def _rounding_explains(engine: np.ndarray, torch_: np.ndarray, reference: np.ndarray, agree: np.ndarray,
                       rtol: float, atol: float) -> bool:
    """Whether, wherever the two differ, the engine is about as close to the float64 result as torch.

    torch's float32 error is taken per element, but never below the largest float32 error
    torch makes anywhere in this tensor: an ill-conditioned program amplifies rounding in
    every element, and torch being lucky at one element is no evidence against the engine.
    """
    with np.errstate(all="ignore"):
        engine_error = np.abs(engine.astype(np.float64) - reference)
        torch_error = np.abs(torch_.astype(np.float64) - reference)
        finite = torch_error[np.isfinite(torch_error)]
        noise = np.maximum(torch_error, finite.max() if finite.size else 0.0)
        acceptable = close(engine, reference, rtol, atol) | (engine_error <= PRECISION_FACTOR * noise)
    return bool(acceptable[~agree].all())


def _compare_autograd_metadata(engine: StepResult, torch_: StepResult, place: _Place) -> list[_Divergence]:
    if engine.grad_fn != torch_.grad_fn:
        return [_Divergence(GRAD_FN, place, f"{place.label}: engine grad_fn {engine.grad_fn} "
                                            f"vs torch {torch_.grad_fn}")]
    if engine.requires_grad != torch_.requires_grad:
        return [_Divergence(GRAD_FN, place, f"{place.label}: engine requires_grad={engine.requires_grad} "
                                            f"vs torch {torch_.requires_grad}")]
    return []


# Warnings torch raises once per process (TORCH_WARN_ONCE): whether a program sees one
# depends on what ran before it in the process (the strategy runs torch while drawing),
# so they are not compared. The engine warns once per process too.
ONCE_PER_PROCESS_WARNINGS = (
    "The use of `x.T` on tensors of dimension other than 2",
    "Tensor.T is deprecated on 0-D tensors",
    "Tensor.H is deprecated on 0-D tensors",
    "Tensor.mT is deprecated on 0-D tensors",
    "Tensor.mH is deprecated on 0-D tensors",
    "adjoint() is deprecated on 0-D tensors",
    "Using backward() with create_graph=True",
    # AccumulateGrad's CHECK_RESULT (a .grad of a size-1 dim with stride 0, e.g. a leaf made by
    # zeros_like of an expanded tensor, after a second backward; campaign seed 23). The engine
    # lays .grad out contiguously there and does not warn.
    "grad and param do not obey the gradient layout contract",
)


def _compare_warnings(engine: Outcome, torch_: Outcome) -> _Divergence | None:
    if not engine.warnings and not torch_.warnings:
        return None
    def counted(outcome: Outcome) -> Counter:
        return Counter((w.category, oracle.normalize_message(w.message)) for w in outcome.warnings
                       if not w.message.startswith(ONCE_PER_PROCESS_WARNINGS))
    engine_warnings, torch_warnings = counted(engine), counted(torch_)
    if engine_warnings == torch_warnings:
        return None
    def listed(warnings: Counter) -> str:
        return "; ".join(f"{category}: {_one_line(message)}" for category, message in warnings.elements()) or "none"
    return _Divergence(WARNING, _Place("warnings", "warnings", "warnings"),
                       f"warnings differ: engine only [{listed(engine_warnings - torch_warnings)}], "
                       f"torch only [{listed(torch_warnings - engine_warnings)}]")


def _error_summary(engine: np.ndarray, torch_: np.ndarray, agree: np.ndarray) -> str:
    """How many elements differ, and the largest absolute and relative errors with their indices."""
    with np.errstate(all="ignore"):
        absolute = np.abs(engine.astype(np.float64) - torch_.astype(np.float64))
        # A NaN or an infinity on one side only is an infinitely large error.
        absolute = np.where(agree, 0.0, np.nan_to_num(absolute, nan=np.inf, posinf=np.inf))
        relative = np.where(agree, 0.0, absolute / np.abs(torch_.astype(np.float64)))
        relative = np.nan_to_num(relative, nan=np.inf, posinf=np.inf)
    worst_absolute = np.unravel_index(np.argmax(absolute), absolute.shape)
    worst_relative = np.unravel_index(np.argmax(relative), relative.shape)

    def at(index: tuple) -> str:
        return f"[{', '.join(str(int(i)) for i in index)}] (engine {engine[index].item()!r} vs torch {torch_[index].item()!r})"
    return (f"{int((~agree).sum())} of {agree.size} elements differ; "
            f"max abs err {absolute[worst_absolute]:.3g} at {at(worst_absolute)}; "
            f"max rel err {relative[worst_relative]:.3g} at {at(worst_relative)}")


def _describe(array: Array | None) -> str:
    return "None" if array is None else f"{array.dtype}{list(array.shape)}"


def _describe_failure(failure: Failure) -> str:
    return f"raised {failure.type}: {_one_line(oracle.normalize_message(failure.message))!r}"


def _describe_success(result: StepResult | None) -> str:
    return "succeeded" if result is None else f"returned {_describe(result.value)}"


def _one_line(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _message_owner(message: str, action_kind: str) -> str:
    """Who owns a message that backward raised: the node it names, else the backward call.

    Both backends raised the same exception type at the backward call with different texts.
    Those texts come from the autograd engine itself (graph freed, saved tensor modified,
    gradient shape), not from the ops the program happens to contain: keyed on an op, one
    wrong message shows as one finding per op. Keyed on the node the message names
    ("... output 0 of ExpBackward0 ...") or else on the action, it is one finding.
    """
    named = _NODE_NAME.search(message)
    return next(group for group in named.groups() if group) if named else action_kind


def _autograd_message(engine: Outcome, torch_: Outcome) -> str | None:
    """The message of the error raised at the action when it is the autograd engine's own (a freed
    graph, a root without grad_fn, an implicit gradient of a non-scalar, ...), else None.

    NOTE: such an error says nothing about the ops of the program. Keyed on an op (the first
    step, which _localize finds because every prefix shows the error), one bug that frees the
    graph despite retain_graph=True showed as 84 findings in 60 s, one per first op.
    """
    for outcome in (engine, torch_):
        error = outcome.error
        if error is not None and error.where == "action" and error.message.startswith(_AUTOGRAD_MESSAGES):
            return error.message
    return None


def _inplace_check_owner(engine: Outcome, torch_: Outcome, ref: str, kind: str) -> str | None:
    """The check that raised at step ``ref`` when it is autograd's refusal of an in-place op (on a leaf
    that requires grad, on a view of one, on a view made under no_grad or by a multi-output op),
    else None: the op that made the view where the message names one, else the check's name.

    NOTE: those checks run before any op's kernel, the same for every in-place op. Keyed on the
    step's op, an engine that skipped the leaf check (unseen-bug check, session 10) showed as
    91 findings in 60 s, one per in-place op.
    """
    if kind not in (ERROR_VS_SUCCESS, ERROR_TYPE, ERROR_MESSAGE):
        return None
    for outcome in (torch_, engine):
        result = outcome.value(ref)
        error = result.error if result is not None else None
        if error is None:
            continue
        for pattern, check in _INPLACE_CHECKS:
            if matched := pattern.match(error.message):
                return matched.groupdict().get("op") or check
    return None


# The beginnings of autograd's refusals of an in-place op, whatever the op, and their names.
_INPLACE_CHECKS = tuple((re.compile(pattern, re.S), check) for pattern, check in (
    (r"a leaf Variable that requires grad is being used in an in-place operation", "inplace-on-leaf"),
    (r"a view of a leaf Variable that requires grad is being used in an in-place", "inplace-on-leaf-view"),
    (r"A view was created in no_grad mode and .* modified inplace", "inplace-on-no-grad-view"),
    # "Output 0 of Split is a view and is being modified inplace. ...": keyed on the op it names
    (r"Output \d+ of (?P<op>\w+) is a view .* modified inplace", "inplace-on-view"),
))


def _shared_check_owner(engine: Outcome, torch_: Outcome, ref: str, kind: str) -> str | None:
    """The check whose message both sides raised at step ``ref`` with different texts, when it is
    a check many ops share (the broadcast of the operands' shapes), else None.

    NOTE: keyed on the step's op, an engine whose broadcast message named another dim showed as
    35 findings in 60 s, one per binary op and dtype (unseen-bug check, session 11). Only a
    message difference is keyed on the check: where one side raised it and the other did not,
    the op's own broadcasting is what differs.
    """
    if kind != ERROR_MESSAGE:
        return None
    results = engine.value(ref), torch_.value(ref)
    errors = [result.error if result is not None else None for result in results]
    if any(error is None for error in errors):
        return None
    for pattern, check in _SHARED_CHECKS:
        if all(pattern.match(error.message) for error in errors):
            return check
    return None


# The messages of checks that many ops share, and their names.
_SHARED_CHECKS = tuple((re.compile(pattern), check) for pattern, check in (
    (r"The size of tensor a \(\d+\) must match the size of tensor b \(\d+\) at non-singleton dimension \d+$",
     "broadcast"),
))


def _warning_owner(engine: Outcome, torch_: Outcome) -> str | None:
    """What raised the warnings only one side gave, when every one of them is autograd's own
    (reading .grad of a non-leaf tensor), else None.

    NOTE: the interpreter reads .grad of the tensors it compares after the action; keyed on the
    op of the shortest prefix showing the difference, an engine that never warned there showed
    as 18 findings in 60 s (unseen-bug check, session 10).
    """
    engine_warnings = Counter((w.category, w.message) for w in engine.warnings)
    torch_warnings = Counter((w.category, w.message) for w in torch_.warnings)
    different = (engine_warnings - torch_warnings) + (torch_warnings - engine_warnings)
    if different and all(message.startswith(_NON_LEAF_GRAD_WARNING) for _, message in different):
        return "Tensor.grad"
    return None


_NON_LEAF_GRAD_WARNING = "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed"


# The beginnings of the messages torch.autograd.backward / grad and the autograd engine raise
# about a backward call itself, whatever the graph's ops.
_AUTOGRAD_MESSAGES = (
    "Trying to backward through the graph a second time",
    "element 0 of tensors does not require grad",
    "grad can be implicitly created only for",
    "One of the differentiated Tensors",
    "The differentiated Tensor at index",
    "Mismatch in shape: grad_output",
    "one of the variables needed for gradient computation has been modified by an inplace operation",
    "`inputs` argument to",
)

# "..., which is output 0 of Exp, is at version 1; ..." (torch names the op, not the node, there)
# or a node name such as MulBackward0.
_NODE_NAME = re.compile(r"\boutput \d+ of (\w+)|\b([A-Z]\w*Backward\d+)\b")


def _nearest_input_op(program: Program) -> str | None:
    """The op of the target's ancestor step nearest the inputs (the first one)."""
    ancestors = program.ancestors(program.action.target)
    return program.steps[ancestors[0]].op if ancestors else None


def _localize(kind: str, program: Program, backend: ModuleType, torch_outcome: Outcome) -> str | None:
    """The op of the shortest prefix of the program that shows the same kind of divergence.

    Each prefix ends at one step, with a backward through that step's output
    (`_probe`) and, for an action of several backward passes (a double or repeated
    backward), that action on the step's output, or the original action when that
    output is the action's target. Without the second, a bug that only a second-order
    gradient shows (in a rule that a double backward runs, such as mean's inside std's
    backward) would be blamed on the last step before the action.
    """
    action = program.action
    for index, step in enumerate(program.steps):
        if step.out == action.target:
            probes = (action,)
        else:
            # The weighted probe shows misplaced gradients; the uniform one, what only a gradient
            # that cancels shows (campaign seed 18: softmax's gradient, an ulp off torch's where
            # a uniform gradient made it cancel, was blamed on the op after it in five programs,
            # five signatures for one bug).
            weighted = _probe(step.out, torch_outcome)
            probes = (weighted,) if weighted.kind == SUM_BACKWARD else (weighted, Action(SUM_BACKWARD, step.out))
            if action.kind in (DOUBLE_BACKWARD, REPEATED_BACKWARD):
                probes += (replace(action, target=step.out),)
        for probe in probes:
            prefix = program.prefix(index + 1, probe)
            found = _divergences(interpreter.run(prefix, backend), oracle.run_torch(prefix), prefix, [])
            if any(divergence.kind == kind for divergence in found):
                return step.op
    return None


def _probe(ref: str, torch_outcome: Outcome) -> Action:
    """The backward that tests a prefix ending at ``ref``: with a gradient of 1, 2, ..., 7, 1, ...

    A uniform gradient (``sum().backward()``) hides every bug that moves gradient elements to
    the wrong place (roll, flip, permute, gather): all of them are 1. Small integers are exact
    in every float dtype. A non-float or one-element output keeps ``sum().backward()``.
    """
    result = torch_outcome.value(ref)
    value = result.value if result is not None else None
    if value is None or value.dtype not in ("float32", "float64") or value.data.size < 2:
        return Action(SUM_BACKWARD, ref)
    weights = np.arange(value.data.size) % 7 + 1.0
    return Action(BACKWARD_GRADIENT, ref, gradient=weights.reshape(value.shape).tolist())


def _adjudicate(program: Program, name: str, engine: Outcome, torch_: Outcome) -> str:
    """Which side, if either, agrees with float64 finite differences on input ``name``'s gradient."""
    if program.loss_multiple() is None:
        return NOT_ONE_LOSS
    if _at_kink(program, engine, torch_):
        return CONVENTION
    numerical = oracle.numerical_gradient(program)
    if numerical is None or name not in numerical:
        return NO_FINITE_DIFFERENCES
    rtol, atol = FINITE_DIFFERENCE_TOLERANCE
    ours, theirs = (np.asarray(outcome.grads[name].data, dtype=np.float64) for outcome in (engine, torch_))
    noise = oracle.finite_difference_noise(program)[name]
    with np.errstate(all="ignore"):
        apart = ~close(ours, theirs, rtol, atol)
        if np.any(apart & (np.abs(ours - theirs) <= noise)):
            return UNRESOLVED
    engine_agrees = bool(close(ours, numerical[name], rtol, atol + noise).all())
    torch_agrees = bool(close(theirs, numerical[name], rtol, atol + noise).all())
    if engine_agrees and torch_agrees:
        return BOTH_AGREE
    return ENGINE_AGREES if engine_agrees else TORCH_AGREES if torch_agrees else NEITHER_AGREES


def _at_kink(program: Program, *outcomes: Outcome) -> bool:
    """Whether a step the target depends on evaluates an op at one of its table kinks."""
    inputs = {tensor.name: (np.asarray(tensor.values, dtype=np.float64), tensor.dtype) for tensor in program.inputs}
    for index in program.ancestors(program.action.target):
        step = program.steps[index]
        kinks = BY_NAME[step.op].kinks if step.op in BY_NAME else ()
        if not kinks:
            continue
        # The table's kinks are points of the first argument.
        first = step.args[0] if step.args else None
        if isinstance(first, Literal) and isinstance(first.value, (int, float)):
            candidates = [(np.asarray(first.value, dtype=np.float64), "float64")]
        elif not isinstance(first, Ref):
            continue
        elif first.name in inputs:
            candidates = [inputs[first.name]]
        else:
            candidates = [(result.value.data, result.value.dtype) for outcome in outcomes
                          if (result := outcome.value(first.name)) is not None and result.value is not None]
        for values, dtype in candidates:
            rtol, atol = TOLERANCES.get(dtype, (0.0, 0.0))
            if any(np.any(np.abs(values - kink) <= atol + rtol * abs(kink)) for kink in kinks):
                return True
    return False
