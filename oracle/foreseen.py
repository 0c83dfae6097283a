"""Errors torch certainly raises, told without asking torch, where asking costs far more than an op.

The program builder (`fuzz.strategies`) evaluates every drawn step and the action on torch. A torch
error costs 150-250K instructions (a C++ exception: backtrace capture, unwinding, translation to
Python) against ~17K for a small op, and unflatten's size error ~10.7M: torch catches the error of
its size inference and reads its message with `what()`, which symbolizes a C++ backtrace (dladdr
per frame), ~2.7-10 ms each. Here, for a few frequent cases whose condition and message are plain,
the builder raises the error torch would raise itself. Nothing else uses this: `oracle.run_torch`
always runs torch, and tests/fuzz/test_foreseen.py checks each case against torch.
"""
from __future__ import annotations

from typing import Any

import torch

from fuzz import interpreter
from fuzz.program import BACKWARD, REPEATED_BACKWARD, SUM_BACKWARD, Action, Step

# torch's message for backward() (or autograd.grad) on a tensor that neither requires grad nor has a grad_fn.
NO_GRAD_MESSAGE = "element 0 of tensors does not require grad and does not have a grad_fn"
# The actions whose first call is backward() on the target or its sum, without a gradient given.
_PLAIN_BACKWARD = (SUM_BACKWARD, BACKWARD)

_UNFLATTEN_PARAMETERS = ("input", "dim", "sizes")


def step_error(step: Step, env: dict[str, Any]) -> Exception | None:
    """The exception torch raises for ``step`` (``env``: the tensors by name), where it is foreseen
    here; None otherwise (then ask torch)."""
    if step.op == "unflatten" and step.form in ("method", "function"):
        return _unflatten_error(step, env)
    return None


def _unflatten_error(step: Step, env: dict[str, Any]) -> RuntimeError | None:
    """unflatten's "Provided sizes ... don't multiply up" error, for a tensor of rank >= 1, an int dim in
    range, and sizes of positive ints with at most one -1 along a side >= 1 (else None: torch's answer)."""
    if len(step.args) + len(step.kwargs) != 3:
        return None
    bound = dict(zip(_UNFLATTEN_PARAMETERS, (interpreter.resolve(torch, arg, env) for arg in step.args)))
    for key, value in step.kwargs.items():
        if key in bound or key not in _UNFLATTEN_PARAMETERS:
            return None
        bound[key] = interpreter.resolve(torch, value, env)
    tensor, dim, sizes = bound["input"], bound["dim"], bound["sizes"]
    if type(tensor) is not torch.Tensor or type(dim) is not int or type(sizes) not in (tuple, list) or not sizes \
            or any(type(size) is not int or size == 0 or size < -1 for size in sizes) or sizes.count(-1) > 1:
        return None
    shape = tuple(tensor.shape)
    if not -len(shape) <= dim < len(shape):  # (a 0-d tensor too)
        return None
    dim %= len(shape)
    side = shape[dim]
    known = 1
    for size in sizes:
        known *= size if size != -1 else 1
    if side < 1 or (side % known == 0 if -1 in sizes else known == side):
        return None
    return RuntimeError(f"unflatten: Provided sizes {list(sizes)} don't multiply up to the size of dim {dim} "
                        f"({side}) in the input tensor")


def action_error(action: Action, env: dict[str, Any]) -> RuntimeError | None:
    """The exception torch raises at once for ``action`` (``env``: the tensors by name), where it is
    foreseen here (backward() of a target that does not require grad, with grad mode on); else None."""
    if action.kind in _PLAIN_BACKWARD or (action.kind == REPEATED_BACKWARD and not action.first_grad):
        target = env.get(action.target)
        if type(target) is torch.Tensor and not target.requires_grad and torch.is_grad_enabled():
            return RuntimeError(NO_GRAD_MESSAGE)
    return None
