"""`_lane_sum` (softmax's, log_softmax's and layer_norm's row sums in torch's vector lanes) against
its rule written out one row and one addition at a time, bit for bit: over shapes around the lane
width (8 float32, 4 float64 lanes), both dtypes, zeros of both signs, huge, tiny and
non-finite terms, with and without fused tail products."""
from __future__ import annotations

import numpy as np
import pytest

from engine._ops import _fma
from engine.nn import functional as F


@np.errstate(all="ignore")
def _rule(terms: np.ndarray, fused=None) -> np.ndarray:
    """The rule of _lane_sum's docstring, addition by addition on numpy scalars."""
    rows, n = terms.shape
    lanes = 32 // terms.itemsize
    out = np.empty(rows, terms.dtype)
    for r in range(rows):
        row = terms[r]
        if n < lanes:
            acc = row[0]
            for i in range(1, n):
                acc = acc + row[i]
            out[r] = acc
            continue
        whole = n - n % lanes
        acc = [row[j] for j in range(lanes)]
        for start in range(lanes, whole, lanes):
            for j in range(lanes):
                acc[j] = acc[j] + row[start + j]
        for j in range(n - whole):
            if fused is None:
                acc[j] = acc[j] + row[whole + j]
            else:
                p, q = fused
                qv = q[whole + j] if q.ndim == 1 else q[r, whole + j]
                acc[j] = _fma(np.asarray([p[r, whole + j]]), np.asarray([qv]), np.asarray([acc[j]]))[0]
        if terms.dtype == np.float32:
            while len(acc) > 1:
                half = len(acc) // 2
                acc = [acc[j] + acc[half + j] for j in range(half)]
            out[r] = acc[0]
        else:
            total = acc[0]
            for j in range(1, lanes):
                total = total + acc[j]
            out[r] = total
    return out


def _terms(rng, shape, dtype):
    x = np.array(rng.standard_normal(shape) * 10.0 ** rng.integers(-6, 7, shape), np.float64)
    special = np.asarray(rng.random(shape))
    x[special < 0.03] = 0.0
    x[(special >= 0.03) & (special < 0.06)] = -0.0
    x[(special >= 0.06) & (special < 0.07)] = 3e38
    x[(special >= 0.07) & (special < 0.075)] = -np.inf
    x[(special >= 0.075) & (special < 0.08)] = 1e-44
    return x.astype(dtype)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal bit for bit, a NaN equal to any NaN (the payload is not what is asserted)."""
    nan = np.isnan(a)
    if not np.array_equal(nan, np.isnan(b)):
        return False
    int_type = np.int32 if a.dtype == np.float32 else np.int64
    return np.array_equal(a[~nan].view(int_type), b[~nan].view(int_type))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@np.errstate(all="ignore")   # (the engine's callers compute under _ops._errstate: values overflow here)
def test_lane_sum_adds_as_its_rule(dtype):
    rng = np.random.default_rng(7)
    for rows in (1, 2, 3, 64):
        for n in (1, 3, 4, 5, 7, 8, 9, 10, 15, 16, 17, 23, 24, 31, 33, 40, 64, 70):
            terms = _terms(rng, (rows, n), dtype)
            assert _same(F._lane_sum(terms), _rule(terms)), (rows, n)
            p, q = _terms(rng, (rows, n), dtype), _terms(rng, (n,), dtype)
            with np.errstate(all="ignore"):
                terms = p * q
            assert _same(F._lane_sum(terms, (p, q)), _rule(terms, (p, q))), (rows, n, "fused")
            q2 = _terms(rng, (rows, n), dtype)
            with np.errstate(all="ignore"):
                terms = p * q2
            assert _same(F._lane_sum(terms, (p, q2)), _rule(terms, (p, q2))), (rows, n, "fused rows")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@np.errstate(all="ignore")   # (as above)
def test_lane_sum_of_many_long_rows_adds_as_its_rule(dtype):
    """Above _LANE_COPY_MAX elements in _LANE_ROWS_MAX rows or more: `_lane_sum_rows`."""
    rng = np.random.default_rng(9)
    rows = F._LANE_ROWS_MAX
    n = F._LANE_COPY_MAX // rows + 13
    p, q = _terms(rng, (rows, n), dtype), _terms(rng, (n,), dtype)
    with np.errstate(all="ignore"):
        terms = p * q
    assert _same(F._lane_sum(terms), _rule(terms))
    assert _same(F._lane_sum(terms, (p, q)), _rule(terms, (p, q)))


def test_lane_sum_of_a_strided_input():
    """A view (a column slice, a transposed array) sums as its row-major copy."""
    rng = np.random.default_rng(8)
    for base in (_terms(rng, (64, 30), "float32"), _terms(rng, (30, 64), "float32").T):
        view = base[:, 3:21]
        assert _same(F._lane_sum(view), _rule(np.ascontiguousarray(view)))


def test_fused_subtract_product_float32_as_float64_arithmetic():
    """log_softmax's backward g - exp(y) * sum(g) for float32: the exact float64 product, its float64
    difference, cast once, bit for bit (NaN anywhere: NaN), for every shape its callers pass
    (the sum kept as a column, 0-d operands, c broadcast against the product)."""
    rng = np.random.default_rng(10)
    shapes = [((64, 10), (64, 10), (64, 1)), ((64, 10), (64, 1), (64, 10)), ((3, 4), (3, 4), (1, 4)),
              ((), (), ()), ((2, 3, 5), (1, 3, 5), (2, 1, 5)), ((5,), (5,), ())]
    for c_shape, a_shape, b_shape in shapes:
        c, a, b = (_terms(rng, shape, "float32") for shape in (c_shape, a_shape, b_shape))
        with np.errstate(all="ignore"):
            want = (c.astype(np.float64) - a.astype(np.float64) * b.astype(np.float64)).astype(np.float32)
            got = F._fused_subtract_product(c, a, b)
        assert np.shape(got) == want.shape and np.result_type(got) == np.float32
        assert _same(np.asarray(got), np.asarray(want)), (c_shape, a_shape, b_shape)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@np.errstate(all="ignore")   # (as above)
def test_lane_sum_of_negative_zeros_is_negative_zero(dtype):
    """Lanes of -0.0 only sum to -0.0, over any number of vectors (numpy's reduce starts from +0.0:
    `_cpu._sum_in_order` starts it from -0.0), on both paths; a lane of -0.0 among others adds as the rule."""
    rng = np.random.default_rng(12)
    for rows, n in ((1, 8), (1, 16), (3, 24), (2, 40), (64, 10), (1, 4096), (F._LANE_ROWS_MAX, F._LANE_COPY_MAX // 16)):
        terms = np.full((rows, n), -0.0, dtype)
        got = F._lane_sum(terms)
        assert _same(got, _rule(terms)) and np.signbit(got).all(), (rows, n)
        mixed = _terms(rng, (rows, n), dtype)
        mixed[:, 1::8] = -0.0          # a lane of -0.0
        assert _same(F._lane_sum(mixed), _rule(mixed)), (rows, n)


@pytest.mark.parametrize("op", ["log_softmax", "softmax"])
@pytest.mark.parametrize("n", [8, 16, 24, 100])
def test_gradient_rows_of_negative_zeros_as_torch(op, n):
    """The backward of a row of -0.0 gradients (its sum -0.0 in torch's lanes): the signs of torch's zeros."""
    import torch

    import engine
    x = np.random.default_rng(n).standard_normal((3, n)).astype(np.float32)
    g = np.full((3, n), -0.0, np.float32)
    got = []
    for backend in (engine, torch):
        t = backend.tensor(x, requires_grad=True)
        getattr(backend.nn.functional, op)(t, 1).backward(backend.tensor(g))
        got.append(t.grad.numpy().tobytes())
    assert got[0] == got[1]
