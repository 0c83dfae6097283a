"""Run a Program on any backend module that speaks torch and record its Outcome.

The backend is a module object such as ``engine`` or ``torch`` (or an adapter
around another library): the interpreter only uses ``backend.tensor``, the
dtype attributes (``backend.float32``), the op functions, tensor methods and
Python operators, ``.backward()``, ``.grad``, ``.detach().numpy()``,
``.requires_grad`` and ``.grad_fn.name()``.
"""
from __future__ import annotations

import functools
import operator
import warnings
from dataclasses import replace
from types import ModuleType
from typing import Any, Callable

import numpy as np

from engine.optable import BY_NAME
from fuzz.outcome import Array, Failure, Outcome, RecordedWarning, StepResult
from fuzz.program import (BACKWARD, BACKWARD_GRADIENT, DOUBLE_BACKWARD, REGISTER_HOOK, REPEATED_BACKWARD,
                          RETAIN_GRAD, SUM_BACKWARD, Action, Dots, DType, Input, Literal, Program, Ref, Seq, Slice,
                          Step)

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


@functools.lru_cache(maxsize=None)
def dtype_name(dtype: Any) -> str:
    """``torch.float32`` -> ``"float32"`` (any module prefix is dropped)."""
    return str(dtype).rpartition(".")[2]


def make_input(backend: ModuleType, tensor: Input) -> Any:
    """The backend leaf tensor for a program input."""
    return backend.tensor(tensor.values, dtype=getattr(backend, tensor.dtype),
                          requires_grad=tensor.requires_grad)


def resolve(backend: ModuleType, arg: Any, env: dict[str, Any]) -> Any:
    """The Python value of an operand node (plain keyword values pass through)."""
    if isinstance(arg, Ref):
        return env[arg.name]
    if isinstance(arg, Literal):
        return arg.value
    if isinstance(arg, Seq):
        items = [resolve(backend, item, env) for item in arg.items]
        return items if arg.kind == "list" else tuple(items)
    if isinstance(arg, Slice):
        return slice(arg.start, arg.stop, arg.step)
    if isinstance(arg, Dots):
        return Ellipsis
    if isinstance(arg, DType):
        return getattr(backend, arg.name)
    return arg


def function(backend: ModuleType, name: str) -> Any:
    """``backend.<name>``, through namespaces for dotted names (``nn.functional.relu``)."""
    if "." not in name:
        return getattr(backend, name)
    value = backend
    for part in name.split("."):
        value = getattr(value, part)
    return value


def scaling_hook(scale: float, shift: float | None = None):
    """The hook `register_hook` steps install: the gradient times a constant, plus another
    when one is given (so that two hooks on one tensor do not commute: their order shows)."""
    if shift is None:
        return lambda grad: grad * scale
    return lambda grad: grad * scale + shift


def apply_step(backend: ModuleType, step: Step, env: dict[str, Any]) -> Any:
    """Call one step's op on the backend; ``env`` maps names to tensors defined so far."""
    if step.no_grad:
        with backend.no_grad():
            return _apply(backend, step, env)
    return _apply(backend, step, env)


def _apply(backend: ModuleType, step: Step, env: dict[str, Any]) -> Any:
    # (Most operands are tensors by name: looked up here, without a call.)
    args = [env[arg.name] if type(arg) is Ref else resolve(backend, arg, env) for arg in step.args]
    kwargs = {key: resolve(backend, value, env) for key, value in step.kwargs.items()} if step.kwargs else {}
    if step.op == REGISTER_HOOK:
        # NOTE: grad_fn is read first because torch 2.13 segfaults in register_hook on a view whose
        # grad_fn is stale (`v = (x * 2).view(-1); v.detach().zero_(); v.register_hook(h)`): it sets
        # the hook dict before it reads grad_fn itself, a line later. Reading it changes nothing else.
        args[0].grad_fn
        args[0].register_hook(scaling_hook(*args[1:]))
        return args[0]
    if step.form == "inplace":
        getattr(args[0], BY_NAME[step.op].inplace)(*args[1:], **kwargs)
        return args[0]
    if step.form == "function":
        return function(backend, step.op)(*args, **kwargs)
    if step.form == "property":
        return getattr(args[0], step.op)
    if step.form == "method":
        result = getattr(args[0], step.op)(*args[1:], **kwargs)
        # Statements (`x[i] = v`, `x.retain_grad()`) and in-place methods: the output is the receiver.
        return args[0] if step.aliases_first else result
    symbol = BY_NAME[step.op].operator
    operators = UNARY_OPERATORS if len(args) == 1 else BINARY_OPERATORS
    if symbol not in operators:
        raise ProgramError(f"step {step.out}: op {step.op!r} has no {len(args)}-operand operator form "
                           f"(table symbol {symbol!r})")
    return operators[symbol](*args)


def apply_action(backend: ModuleType, action: Action, env: dict[str, Any],
                 leaves: tuple[str, ...] = (), record: Any = None) -> None:
    """Run the final autograd action on its target.

    ``leaves`` are the names of the inputs that require grad (what
    ``double_backward`` differentiates); ``record(label, grads)`` receives the
    gradients an action produces along the way (leaf grads after the first
    of two backward calls, the first-order grads of a double backward).
    """
    target = env[action.target]
    record = record or (lambda label, grads: None)
    if action.kind == REPEATED_BACKWARD:
        loss = target.sum()
        if action.first_grad:
            # (retain_graph=True, or autograd.grad's default, as users write it)
            keep = {"retain_graph": True} if action.retain_graph else {}
            grads = backend.autograd.grad(loss, [env[name] for name in leaves], **keep)
            record("grad", dict(zip(leaves, grads)))
        else:
            loss.backward(retain_graph=action.retain_graph)
            record("backward1", {name: env[name].grad for name in leaves})
        loss.backward()
    elif action.kind == DOUBLE_BACKWARD:
        grads = backend.autograd.grad(target.sum(), [env[name] for name in leaves], create_graph=True)
        record("grad", dict(zip(leaves, grads)))
        sum(grad.sum() for grad in grads).backward()
    elif action.kind == SUM_BACKWARD:
        target.sum().backward()
    elif action.kind == BACKWARD:
        target.backward()
    elif action.kind == BACKWARD_GRADIENT:
        target.backward(gradient=backend.tensor(action.gradient, dtype=target.dtype))
    else:
        raise ProgramError(f"the interpreter cannot run action kind {action.kind!r}")


def snapshot(tensor: Any) -> Array:
    """A tensor's dtype name and a numpy copy of its data (later in-place ops cannot change it)."""
    name = dtype_name(tensor.dtype)
    is_zerotensor = getattr(tensor, "_is_zerotensor", None)  # (torch's and the engine's; other backends may lack it)
    if is_zerotensor is not None and is_zerotensor():
        # torch's ZeroTensor gradients (abs'' = 0) have no memory: numpy(force=True) of one viewed at an
        # offset (cat's backward narrows it) reads address 0 + offset and kills the process (torch 2.13;
        # campaign seed 26 crash, tests/fuzz/test_interpreter.py).
        return Array(name, np.zeros(tuple(tensor.shape), dtype=np.dtype(name)))
    try:
        # torch's one call for a tensor that requires grad: the array detach().numpy() gives, at a
        # third of the cost of the two calls.
        data = tensor.numpy(force=True)
    except TypeError:  # a backend whose numpy() takes no force
        data = tensor.detach().numpy()
    # (a plain array's copy() is np.array(copy=True) without the argument parsing; a subclass becomes one)
    return Array(name, data.copy() if type(data) is np.ndarray else np.array(data, copy=True))


def _tuple_result(ref: str, results: tuple | list) -> StepResult:
    """A multi-output op (split, max along a dim): one Array of the flattened outputs.

    Its dtype names every part (``"tuple[float32[2],int64[2]]"``), so shapes and
    dtypes are compared exactly; values within the loosest floating part's tolerance.
    """
    try:
        parts = [snapshot(item) for item in results]
        dtype = "tuple[" + ",".join(f"{part.dtype}{list(part.shape)}" for part in parts) + "]"
        data = np.concatenate([part.data.astype(np.float64).ravel() for part in parts]) if parts else np.zeros(0)
        grad_fns = {None if item.grad_fn is None else item.grad_fn.name() for item in results}
        return StepResult(ref, Array(dtype, data), any(bool(item.requires_grad) for item in results),
                          ",".join(sorted(name or "None" for name in grad_fns)))
    except Exception as error:  # noqa: BLE001
        return StepResult(ref, error=Failure(type(error).__name__,
                                             f"reading the result ({type(results).__name__}): {error}"))


def failure(error: BaseException, where: str | None = None) -> Failure:
    """An exception as an outcome records it."""
    return Failure(type(error).__name__, str(error), where)


def step_result(ref: str, result: Any) -> StepResult:
    """What a step's result is recorded as, read right after the step (later in-place ops cannot change it)."""
    if isinstance(result, (tuple, list)):
        return _tuple_result(ref, result)
    try:
        grad_fn = result.grad_fn
        return StepResult(ref, snapshot(result), bool(result.requires_grad),
                          None if grad_fn is None else grad_fn.name())
    except Exception as error:  # noqa: BLE001  (a result that is not a tensor is the backend's bug)
        return StepResult(ref, error=Failure(type(error).__name__,
                                             f"reading the result ({type(result).__name__}): {error}"))


_ALWAYS = ("always", None, Warning, None, 0)  # the filter `warnings.simplefilter("always")` adds


class recording_warnings:
    """``with recording_warnings() as caught:`` every warning raised inside lands in the list ``caught``,
    repeats included (the filter is "always"), as a run records them.

    What ``warnings.catch_warnings(record=True, action="always")`` does, in one step (twice an
    example, where its general path cost ~5 us)."""

    __slots__ = ("_filters", "_showwarning", "_showwarnmsg_impl")

    def __enter__(self) -> list:
        module = warnings
        self._filters = filters = module.filters
        filters = filters[:]
        if _ALWAYS in filters:
            filters.remove(_ALWAYS)
        filters.insert(0, _ALWAYS)
        module.filters = filters
        module._filters_mutated()
        self._showwarning, self._showwarnmsg_impl = module.showwarning, module._showwarnmsg_impl
        log: list = []
        module._showwarnmsg_impl = log.append
        module.showwarning = module._showwarning_orig  # (so that _showwarnmsg calls _showwarnmsg_impl)
        return log

    def __exit__(self, *exc_info) -> None:
        module = warnings
        module.filters = self._filters
        module._filters_mutated()
        module.showwarning, module._showwarnmsg_impl = self._showwarning, self._showwarnmsg_impl


def run(program: Program, backend: ModuleType, *, make_input: Callable[[Input], Any] | None = None) -> Outcome:
    """Run ``program`` on ``backend`` and record everything observable.

    Steps run in order; the first exception (from creating an input, a step,
    or the action) is recorded with where it happened, and nothing after it
    runs. Leaf gradients are read at the end either way; ``grads`` also
    holds retained grads (``v3``), leaf grads after the first of two
    backward calls (``x0@backward1``) and the first-order grads of a double
    backward (``x0@grad``). ``make_input`` makes the leaf tensor of an input
    (default: `make_input` of this module).
    """
    values: list[StepResult] = []
    env: dict[str, Any] = {}
    with recording_warnings() as caught:
        error = _execute(program, backend, env, values, make_input)
        return finish(program, backend, env, tuple(values), error, caught[:], recording=caught)


def finish(program: Program, backend: ModuleType, env: dict[str, Any], values: tuple[StepResult, ...],
           error: Failure | None, caught: list, *, recording: list | None = None) -> Outcome:
    """The Outcome of a run whose inputs and steps have run: the action (unless ``error``, the first
    failure so far), then the gradients.

    ``env`` maps the program's names to the backend's tensors, ``values`` are the
    steps' results (`step_result`), ``caught`` the warnings the inputs and steps
    raised (`recording_warnings`). `run` ends here; so does the program builder of
    `fuzz.strategies`, which has run the steps already while drawing them.
    ``recording``: the list of the `recording_warnings` this is called inside, if any
    (the action's warnings are then read from it rather than recorded anew).
    """
    if recording is None:
        with recording_warnings() as recording:
            return finish(program, backend, env, values, error, caught, recording=recording)
    mark = len(recording)
    extra: dict[str, Array | None] = {}
    if error is None:
        error = _act(program, backend, env, extra)
    grads: dict[str, Array | None] = {}
    try:
        for tensor in program.inputs:
            grads[tensor.name] = _leaf_grad(env.get(tensor.name))
        # Retained grads of non-leaf tensors are part of the outcome, under the step's name.
        for step in program.steps:
            if step.op == RETAIN_GRAD and step.out in env:
                grads[step.out] = _leaf_grad(env[step.out])
    except Exception as exc:  # noqa: BLE001 - a backend whose .grad raises: an outcome, not a crash
        if error is None:
            error = failure(exc, "action")
    grads.update(extra)
    recorded = tuple(RecordedWarning(warning.category.__name__, str(warning.message))
                     for warning in (*caught, *recording[mark:]))
    return Outcome(values, error, grads, recorded)


def _execute(program: Program, backend: ModuleType, env: dict[str, Any], values: list[StepResult],
             input_maker: Callable[[Input], Any] | None) -> Failure | None:
    """Fill ``env`` and ``values`` step by step; return the first failure, if any."""
    # Catching every Exception is the point: the backend's exceptions are observations.
    for tensor in program.inputs:
        try:
            env[tensor.name] = input_maker(tensor) if input_maker else make_input(backend, tensor)
        except Exception as exc:  # noqa: BLE001
            return failure(exc, f"input {tensor.name}")
    for index, step in enumerate(program.steps):
        try:
            result = apply_step(backend, step, env)
        except ProgramError:
            raise
        except Exception as exc:  # noqa: BLE001
            values.append(StepResult(step.out, error=failure(exc)))
            return failure(exc, f"step {index}")
        env[step.out] = result
        values.append(step_result(step.out, result))
        if values[-1].error is not None:
            return replace(values[-1].error, where=f"step {index}")
    return None


def _act(program: Program, backend: ModuleType, env: dict[str, Any], extra: dict[str, Array | None]) -> Failure | None:
    """Run the action; the gradients it reports along the way go to ``extra``. Its failure, if any."""
    def record(label: str, grads: dict[str, Any]) -> None:
        extra.update({f"{name}@{label}": _leaf_grad_value(grad) for name, grad in grads.items()})
    leaves = tuple(tensor.name for tensor in program.inputs if tensor.requires_grad)
    try:
        apply_action(backend, program.action, env, leaves, record)
    except ProgramError:
        raise
    except Exception as exc:  # noqa: BLE001
        return failure(exc, "action")
    return None


def _leaf_grad(tensor: Any) -> Array | None:
    if tensor is None:
        return None
    grad = tensor.grad  # (read once: a property that builds a tensor object on every read, on torch)
    return None if grad is None else snapshot(grad)


def _leaf_grad_value(grad: Any) -> Array | None:
    return None if grad is None else snapshot(grad)
