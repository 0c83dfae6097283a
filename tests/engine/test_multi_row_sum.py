"""`_cpu._multi_row_sum` (torch's multi_row_sum cascade, behind leading_sum, full_sum and dims_sum)
against the loop it emulates, one row and one move at a time, bit for bit: over row counts
around each level's step of 16 (up to the top level, from 4,096 rows), both dtypes, zeros of
both signs (columns of -0.0 only), huge, tiny and non-finite rows."""
from __future__ import annotations

import numpy as np
import pytest

from engine import _cpu


def _loop(rows: np.ndarray) -> np.ndarray:
    """multi_row_sum as its loop runs: four accumulators from +0.0; each row into the first; after
    every 16 rows the first is added to the second and restarts from 0, after every 256 the second
    to the third, after every 4,096 the third to the fourth; at the end the total is the first
    plus the second plus the third plus the fourth."""
    zero = np.zeros(rows.shape[1:], rows.dtype)
    acc = [zero, zero, zero, zero]
    for i in range(rows.shape[0]):
        acc[0] = acc[0] + rows[i]
        count = i + 1
        for level in range(3):
            if count % 16 ** (level + 1):
                break
            acc[level + 1] = acc[level + 1] + acc[level]
            acc[level] = zero
    total = acc[0]
    for level in range(1, 4):
        total = total + acc[level]
    return total


def _rows(rng, shape, dtype) -> np.ndarray:
    x = np.array(rng.standard_normal(shape) * 10.0 ** rng.integers(-6, 7, shape), np.float64)
    special = np.asarray(rng.random(shape))
    x[special < 0.05] = 0.0
    x[(special >= 0.05) & (special < 0.1)] = -0.0
    x[(special >= 0.1) & (special < 0.11)] = 3e38
    x[(special >= 0.11) & (special < 0.112)] = -np.inf
    x[(special >= 0.112) & (special < 0.114)] = np.nan
    x[(special >= 0.114) & (special < 0.12)] = 1e-44
    x = x.astype(dtype)
    if x.ndim > 1 and x.shape[1] > 2:
        x[:, 0] = -0.0          # a column of -0.0 only: the loop's +0.0
        x[:, 1] = rng.choice([0.0, -0.0], x[:, 1].shape)
    return x


def _same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    nan = np.isnan(a)
    if a.shape != b.shape or not np.array_equal(nan, np.isnan(b)):
        return False
    ints = np.int32 if a.dtype == np.float32 else np.int64
    return np.array_equal(a[~nan].view(ints), b[~nan].view(ints))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_multi_row_sum_is_its_loop(dtype):
    rng = np.random.default_rng(11)
    counts = [0, 1, 2, 3, 15, 16, 17, 31, 32, 33, 64, 100, 255, 256, 257, 272, 511, 4095, 4096, 4097, 4113]
    for n in counts:
        for tail in ((4,), (4, 3)) if n < 1000 else ((4,),):
            rows = _rows(rng, (n,) + tail, dtype)
            with np.errstate(all="ignore"):
                assert _same(_cpu._multi_row_sum(rows), _loop(rows)), (n, tail)


def test_multi_row_sum_of_w3s_bias_gradient():
    """A (64, 256) float32 gradient summed over its rows (a linear layer's bias, leading_sum)."""
    rng = np.random.default_rng(12)
    g = _rows(rng, (64, 256), "float32")
    with np.errstate(all="ignore"):
        assert _same(_cpu.leading_sum(g, 1), np.zeros(256, np.float32) + _loop(g))
