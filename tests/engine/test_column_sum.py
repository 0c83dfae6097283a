"""`_sum_order.column_sum` (a bias's gradient: an (n, C) array summed over its rows, the fast
path of `_autograd.sum_to_shape`) against the general path it short-cuts (`dims_sum`, and
`_cpu.leading_sum` where that one covers the shape), bit for bit, NaN payloads and zero signs
included: every row count it covers and column counts around its kinds of column, both dtypes,
values of all magnitudes with zeros of both signs, infinities and NaNs of several payloads."""
from __future__ import annotations

import numpy as np
import pytest

from engine import _autograd, _cpu, _sum_order


def _values(rng, shape, dtype) -> np.ndarray:
    x = np.array(rng.standard_normal(shape) * 10.0 ** rng.integers(-6, 7, shape), np.float64)
    special = rng.random(shape)
    x[special < 0.05] = 0.0
    x[(special >= 0.05) & (special < 0.1)] = -0.0
    x[(special >= 0.1) & (special < 0.11)] = np.finfo(dtype).max / 2
    x[(special >= 0.11) & (special < 0.112)] = -np.inf
    x[(special >= 0.112) & (special < 0.114)] = np.inf
    x[(special >= 0.114) & (special < 0.12)] = np.finfo(dtype).smallest_subnormal
    x = x.astype(dtype)
    ints = x.view(np.int32 if x.dtype == np.float32 else np.int64)
    # NaNs of four payloads and both signs: which one a sum returns depends on the order
    nan = (special >= 0.12) & (special < 0.125)
    base = np.asarray(np.nan, dtype).view(ints.dtype)
    ints[nan] = base + rng.integers(0, 4, int(nan.sum()))
    flip = nan & (rng.random(shape) < 0.5)
    ints[flip] = ints[flip] | np.array(1 << (8 * x.itemsize - 1), np.uint64).astype(ints.dtype)
    if shape[1] > 2:
        x[:, 0] = -0.0                 # a column of -0.0: torch's sum is +0.0
        x[:, 1] = rng.choice([0.0, -0.0], shape[0])
    if shape[1] > 3:
        x[:, 2] = rng.standard_normal(shape[0])   # finite columns: sums of many roundings
        x[:, 3] = rng.standard_normal(shape[0]) * 1e30
        x[1::2, 3] = -x[::2, 3][:len(x[1::2, 3])]      # cancellations
    return x


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view(np.int32 if a.dtype == np.float32 else np.int64)


def _general(x: np.ndarray) -> np.ndarray:
    """What sum_to_shape computed before the fast path."""
    total = _cpu.leading_sum(x, 1)
    if total is None:
        total = _sum_order.dims_sum(x, (0,))
    return total.reshape(x.shape[1])


ROWS = list(range(3, 70)) + [79, 80, 81, 95, 96, 127, 128, 129, 143, 144, 192, 200, 239, 240, 241, 252, 253, 254, 255]
COLUMNS = [2, 3, 4, 8, 10, 12, 16, 20, 31, 32, 33, 64, 96, 128, 256]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_column_sum_is_the_general_sum_bit_for_bit(dtype):
    rng = np.random.default_rng(7)
    covered = set()
    for n in ROWS:
        for c in COLUMNS:
            if n * c > _cpu._GRAIN_SIZE:
                continue
            for _ in range(3):
                x = _values(rng, (n, c), dtype)
                with np.errstate(all="ignore"):
                    fast = _sum_order.column_sum(x)
                    if fast is None:
                        break
                    covered.add((n, c))
                    want = _general(x)
                assert fast.dtype == x.dtype and fast.shape == (c,) and fast.strides == want.strides
                assert np.array_equal(_bits(fast), _bits(want)), (n, c, fast, want)
    # both kinds of column (cascade, row_sum) and every row count are covered somewhere
    assert {n for n, _ in covered} == set(ROWS)
    assert (64, 10) in covered and (64, 256) in covered


def test_column_sum_covers_what_it_says():
    x = np.ones((64, 10), np.float32)
    assert _sum_order.column_sum(x) is not None
    for other in (np.ones((2, 10), np.float32), np.ones((256, 10), np.float32), np.ones((64, 1), np.float32),
                  np.ones((64, 20), np.float32).T, np.ones((64, 10), np.float16), np.ones((64, 40), np.float32),
                  np.ones((3000, 12), np.float32), np.ones((64, 6), np.float32), np.ones((4, 5, 6), np.float32)):
        assert _sum_order.column_sum(other) is None


@pytest.mark.parametrize("shape", [(64, 10), (64, 256), (5, 3), (100, 7), (64, 40), (300, 10), (64, 1)])
def test_sum_to_shape_of_a_bias_gradient(shape):
    """sum_to_shape's result (fast path or not) is the general path's for the input's shape (C,)
    and a full sum for (1,)."""
    rng = np.random.default_rng(8)
    x = _values(rng, shape, "float32")
    with np.errstate(all="ignore"):
        got = _autograd.sum_to_shape(x, (shape[1],))
        want = _general(x)
        assert np.array_equal(_bits(got), _bits(want))
        full = _autograd.sum_to_shape(x, (1,))
        assert full.shape == (1,) and np.array_equal(_bits(full), _bits(_cpu.full_sum(x, x.dtype).reshape(1)))
