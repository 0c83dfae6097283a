"""What PyTorch says: run Programs on torch, normalize its messages, and compute
finite-difference gradients that adjudicate gradient divergences.

    >>> from oracle import run_torch, numerical_gradient
    >>> outcome = run_torch(program)            # the reference Outcome
    >>> numerical_gradient(program)["x0"]       # float64 central differences
"""
from oracle.numerical import finite_difference_noise, numerical_gradient
from oracle.reference import normalize_message, run_torch

__all__ = ["run_torch", "normalize_message", "numerical_gradient", "finite_difference_noise"]
