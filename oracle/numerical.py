"""Finite-difference gradients: a third opinion when two backends disagree on a gradient."""
from __future__ import annotations

import numpy as np
import torch

from fuzz import interpreter
from fuzz.program import BACKWARD_GRADIENT, DTYPES, Program


def _loss(program: Program, leaves: dict[str, np.ndarray]) -> float:
    """The scalar the action differentiates, on float64 torch tensors built from ``leaves``."""
    # Copies: an in-place step on an input must not move the point being differentiated at.
    env = {name: torch.from_numpy(array.copy()) for name, array in leaves.items()}
    with torch.no_grad():
        for step in program.steps:
            env[step.out] = interpreter.apply_step(torch, step, env)
        target = env[program.action.target]
        if program.action.kind == BACKWARD_GRADIENT:
            target = target * torch.tensor(program.action.gradient, dtype=target.dtype)
        # For a scalar target, plain backward() differentiates the target itself, which is its sum.
        return float(target.sum())


def numerical_gradient(program: Program, *, step: float = 1e-6) -> dict[str, np.ndarray] | None:
    """Central finite differences of the action's loss w.r.t. each requires_grad input.

    The loss is ``sum(target)`` (``sum_backward``, and ``backward`` on a
    scalar) or ``sum(target * gradient)`` (``backward_gradient``), evaluated
    on torch with every floating input cast to float64. Returns None for
    programs whose gradients are not those of the loss
    (`Program.uses_autograd_features`). Each element ``x`` is moved by
    ``step * max(1, |x|)`` both ways. Returns None when the float64 program
    raises (then there is no loss to differentiate).

    >>> numerical_gradient(program)   # doctest: +SKIP
    {'x0': array([2., 2.])}
    """
    if step <= 0:
        raise ValueError(f"step must be positive, got {step}")
    if program.uses_autograd_features():
        # Hooks, detach, no_grad regions, repeated and double backward: the grads are not
        # the derivative of one loss, so finite differences have no opinion.
        return None
    program = program.with_dtype("float64")
    leaves = {tensor.name: np.array(tensor.values, dtype=np.float64 if tensor.dtype in DTYPES else tensor.dtype)
              for tensor in program.inputs}
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
                gradient[index] = (above - below) / (2 * delta)
            gradients[tensor.name] = gradient
    except Exception:  # noqa: BLE001  (any torch error means the loss is undefined here)
        return None
    return gradients
