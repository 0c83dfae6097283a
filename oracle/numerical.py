"""Finite-difference gradients: a third opinion when two backends disagree on a gradient."""
from __future__ import annotations

import numpy as np
import torch

from fuzz import interpreter
from fuzz.program import BACKWARD_GRADIENT, DTYPES, RETAIN_GRAD, Program


def _evaluated(program: Program, leaves: dict[str, np.ndarray]) -> tuple[float, dict]:
    """The scalar the action differentiates, on float64 torch tensors built from ``leaves``,
    and every value the program made on the way."""
    # Copies: an in-place step on an input must not move the point being differentiated at.
    env = {name: torch.from_numpy(array.copy()) for name, array in leaves.items()}
    with torch.no_grad():
        for step in program.steps:
            # retain_grad only records a gradient (and would refuse the no_grad values here).
            env[step.out] = env[step.args[0].name] if step.op == RETAIN_GRAD \
                else interpreter.apply_step(torch, step, env)
        target = env[program.action.target]
        if program.action.kind == BACKWARD_GRADIENT:
            target = target * torch.tensor(program.action.gradient, dtype=target.dtype)
        # For a scalar target, plain backward() differentiates the target itself, which is its sum.
        return float(target.sum()), env


def _float64_point(program: Program) -> tuple[Program, dict[str, np.ndarray]]:
    """`program` with its floating inputs in float64, and their values as arrays by name."""
    program = program.with_dtype("float64")
    return program, {tensor.name: np.array(tensor.values, dtype=np.float64 if tensor.dtype in DTYPES else tensor.dtype)
                     for tensor in program.inputs}


def _loss(program: Program, leaves: dict[str, np.ndarray]) -> float:
    return _evaluated(program, leaves)[0]


# The loss's rounding error, in units of float64's epsilon times the largest magnitude the
# program computes on the way (a generous count of the roundings that can add up).
ROUNDINGS = 64


def finite_difference_noise(program: Program, *, step: float = 1e-6) -> dict[str, np.ndarray] | None:
    """Per requires_grad input, how far `numerical_gradient` may be off by rounding alone.

    The loss is computed through values up to some magnitude M, so its rounding error can be
    ~ROUNDINGS * eps * M whatever the loss's own size (x0 @ [-1e30, 1e30, 0.5] sums to 0 or to
    0.5 depending on the order of the terms); divided by the step, that bounds the error of a
    central difference. Where it exceeds the difference of two gradients, finite differences
    cannot tell them apart. None where `numerical_gradient` is None.
    """
    multiple = program.loss_multiple()
    if multiple is None:
        return None
    program, leaves = _float64_point(program)
    try:
        loss, env = _evaluated(program, leaves)
    except Exception:  # noqa: BLE001  (as numerical_gradient: no loss, no opinion)
        return None
    largest = abs(loss)
    for value in env.values():
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            values = np.abs(value.detach().numpy())
            largest = max(largest, float(np.max(values[np.isfinite(values)], initial=0.0)))
    rounding = ROUNDINGS * np.finfo(np.float64).eps * largest
    return {tensor.name: multiple * rounding / (step * np.maximum(1.0, np.abs(leaves[tensor.name])))
            for tensor in program.inputs if tensor.requires_grad}


def numerical_gradient(program: Program, *, step: float = 1e-6) -> dict[str, np.ndarray] | None:
    """Central finite differences of the action's loss w.r.t. each requires_grad input.

    The loss is ``sum(target)`` (``sum_backward``, and ``backward`` on a
    scalar) or ``sum(target * gradient)`` (``backward_gradient``), evaluated
    on torch with every floating input cast to float64, times the number of
    backward calls that accumulate it (`Program.loss_multiple`: 2 for repeated
    backward). Returns None for programs whose gradients are not a multiple
    of the loss's derivative (hooks, detach, no_grad, double backward). Each element ``x`` is moved by
    ``step * max(1, |x|)`` both ways. Returns None when the float64 program
    raises (then there is no loss to differentiate).

    >>> numerical_gradient(program)   # doctest: +SKIP
    {'x0': array([2., 2.])}
    """
    if step <= 0:
        raise ValueError(f"step must be positive, got {step}")
    multiple = program.loss_multiple()
    if multiple is None:
        return None
    program, leaves = _float64_point(program)
    gradients: dict[str, np.ndarray] = {}
    try:
        for tensor in program.inputs:
            if not tensor.requires_grad:
                continue
            point = leaves[tensor.name]
            gradient = np.empty_like(point)
            for index in np.ndindex(point.shape):
                original = point[index]
                delta = step * max(1.0, abs(original))
                point[index] = original + delta
                above = _loss(program, leaves)
                point[index] = original - delta
                below = _loss(program, leaves)
                point[index] = original
                gradient[index] = multiple * (above - below) / (2 * delta)
            gradients[tensor.name] = gradient
    except Exception:  # noqa: BLE001  (any torch error means the loss is undefined here)
        return None
    return gradients
