"""The engine's random number generator, seeded by `engine.manual_seed`.

The engine draws its own numbers (they need not equal torch's); the same seed
gives the same numbers within the engine.
"""
from __future__ import annotations

import numpy as np

generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the engine's generator; returns it (torch returns its Generator)."""
    global generator
    generator = np.random.default_rng(int(seed))
    return generator


def uniform(low: float, high: float, shape, dtype) -> np.ndarray:
    return generator.uniform(low, high, size=shape).astype(dtype)
