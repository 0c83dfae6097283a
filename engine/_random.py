"""The engine's random number generator (torch.default_generator's counterpart).

Every random op of the engine (rand, randn, randint, dropout, nn.Linear's
initialization) draws from `generator`; `engine.manual_seed` reseeds it in
place. The engine's numbers need not equal torch's; the same seed gives the
same numbers within the engine.
"""
from __future__ import annotations

import numpy as np

generator = np.random.default_rng()


def seed(value: int) -> None:
    """Reseed `generator` in place, so that every holder of it sees the new stream."""
    generator.bit_generator.state = np.random.PCG64(value).state


def uniform(low: float, high: float, shape, dtype) -> np.ndarray:
    return generator.uniform(low, high, size=shape).astype(dtype)
