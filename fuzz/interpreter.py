"""Run a Program on any backend module that speaks torch and record its Outcome.

The backend is a module object such as ``engine`` or ``torch`` (or an adapter
around another library): the interpreter only uses ``backend.tensor``, the
dtype attributes (``backend.float32``), the op functions, tensor methods and
Python operators, ``.backward()``, ``.grad``, ``.detach().numpy()``,
``.requires_grad`` and ``.grad_fn.name()``.
"""
from __future__ import annotations

import operator
import warnings
from dataclasses import replace
from types import ModuleType
from typing import Any

import numpy as np

from engine.optable import BY_NAME
from fuzz.outcome import Array, Failure, Outcome, RecordedWarning, StepResult
from fuzz.program import BACKWARD, BACKWARD_GRADIENT, SUM_BACKWARD, Action, Input, Literal, Program, Step

# Python's operator syntax: the table names an op's symbol, this maps it to the call.
UNARY_OPERATORS = {"-": operator.neg, "+": operator.pos, "~": operator.invert, "abs": abs}
BINARY_OPERATORS = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv, "//": operator.floordiv,
    "%": operator.mod, "**": operator.pow, "@": operator.matmul,
    "&": operator.and_, "|": operator.or_, "^": operator.xor, "<<": operator.lshift, ">>": operator.rshift,
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}


class ProgramError(Exception):
    """The program cannot be run as written (not an exception of the backend's)."""


def dtype_name(dtype: Any) -> str:
    """``torch.float32`` -> ``"float32"`` (any module prefix is dropped)."""
    return str(dtype).rpartition(".")[2]


def make_input(backend: ModuleType, tensor: Input) -> Any:
    """The backend leaf tensor for a program input."""
    return backend.tensor(tensor.values, dtype=getattr(backend, tensor.dtype),
                          requires_grad=tensor.requires_grad)


def apply_step(backend: ModuleType, step: Step, env: dict[str, Any]) -> Any:
    """Call one step's op on the backend; ``env`` maps names to tensors defined so far."""
    args = [arg.value if isinstance(arg, Literal) else env[arg.name] for arg in step.args]
    if step.form == "function":
        return getattr(backend, step.op)(*args, **step.kwargs)
    if step.form == "method":
        return getattr(args[0], step.op)(*args[1:], **step.kwargs)
    symbol = BY_NAME[step.op].operator
    operators = UNARY_OPERATORS if len(args) == 1 else BINARY_OPERATORS
    if symbol not in operators:
        raise ProgramError(f"step {step.out}: op {step.op!r} has no {len(args)}-operand operator form "
                           f"(table symbol {symbol!r})")
    return operators[symbol](*args)


def apply_action(backend: ModuleType, action: Action, env: dict[str, Any]) -> None:
    """Run the final autograd action on its target."""
    target = env[action.target]
    if action.kind == SUM_BACKWARD:
        target.sum().backward()
    elif action.kind == BACKWARD:
        target.backward()
    elif action.kind == BACKWARD_GRADIENT:
        target.backward(gradient=backend.tensor(action.gradient, dtype=target.dtype))
    else:
        raise ProgramError(f"the interpreter cannot run action kind {action.kind!r}")


def snapshot(tensor: Any) -> Array:
    """A tensor's dtype name and a numpy copy of its data (later in-place ops cannot change it)."""
    return Array(dtype_name(tensor.dtype), np.array(tensor.detach().numpy(), copy=True))


def _failure(error: BaseException, where: str | None = None) -> Failure:
    return Failure(type(error).__name__, str(error), where)


def _step_result(ref: str, result: Any) -> StepResult:
    try:
        grad_fn = result.grad_fn
        return StepResult(ref, snapshot(result), bool(result.requires_grad),
                          None if grad_fn is None else grad_fn.name())
    except Exception as error:  # noqa: BLE001  (a result that is not a tensor is the backend's bug)
        return StepResult(ref, error=Failure(type(error).__name__,
                                             f"reading the result ({type(result).__name__}): {error}"))


def run(program: Program, backend: ModuleType) -> Outcome:
    """Run ``program`` on ``backend`` and record everything observable.

    Steps run in order; the first exception (from creating an input, a step,
    or the action) is recorded with where it happened, and nothing after it
    runs. Leaf gradients are read at the end either way.
    """
    values: list[StepResult] = []
    env: dict[str, Any] = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        error = _execute(program, backend, env, values)
        grads = {tensor.name: _leaf_grad(env.get(tensor.name)) for tensor in program.inputs}
    recorded = tuple(RecordedWarning(warning.category.__name__, str(warning.message)) for warning in caught)
    return Outcome(tuple(values), error, grads, recorded)


def _execute(program: Program, backend: ModuleType, env: dict[str, Any],
             values: list[StepResult]) -> Failure | None:
    """Fill ``env`` and ``values`` step by step; return the first failure, if any."""
    # Catching every Exception is the point: the backend's exceptions are observations.
    for tensor in program.inputs:
        try:
            env[tensor.name] = make_input(backend, tensor)
        except Exception as exc:  # noqa: BLE001
            return _failure(exc, f"input {tensor.name}")
    for index, step in enumerate(program.steps):
        try:
            result = apply_step(backend, step, env)
        except ProgramError:
            raise
        except Exception as exc:  # noqa: BLE001
            values.append(StepResult(step.out, error=_failure(exc)))
            return _failure(exc, f"step {index}")
        env[step.out] = result
        values.append(_step_result(step.out, result))
        if values[-1].error is not None:
            return replace(values[-1].error, where=f"step {index}")
    try:
        apply_action(backend, program.action, env)
    except ProgramError:
        raise
    except Exception as exc:  # noqa: BLE001
        return _failure(exc, "action")
    return None


def _leaf_grad(tensor: Any) -> Array | None:
    if tensor is None or tensor.grad is None:
        return None
    return snapshot(tensor.grad)
