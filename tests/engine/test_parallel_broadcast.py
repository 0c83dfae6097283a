"""Elementwise arithmetic over operands broadcast along middle dims (engine/_parallel.py `_call`),
and which elementwise computations are split over threads (`MIN_NUMEL`, `COSTLY_MIN_NUMEL`).

W5's (128, 1, 64) * (1, 32, 64) reads its first operand in runs of 64 elements; `_call` copies
that operand into the result and multiplies in place with the other (runs of 2,048). The values
must be those of one numpy call, bit for bit (NaN payloads and signed zeros included), in either
operand order, and an operand that is the output itself must not be overwritten first.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import engine
from engine import _memory, _parallel

KERNELS = [np.multiply, np.add, np.subtract, np.true_divide]

# (first operand's shape, second's): one is read in short runs, the other in long ones
SHAPES = [
    ((128, 1, 64), (1, 32, 64)),      # W5
    ((1, 32, 64), (128, 1, 64)),      # W5, operands swapped
    ((128, 32, 1), (1, 32, 64)),      # short runs of one repeated value
    ((4, 1, 3, 1, 16), (1, 64, 3, 8, 16)),
    ((300, 1, 100), (300, 40, 100)),  # the long-run operand has the result's shape
]


def _values(shape, dtype, seed):
    """Random values with float arithmetic's edge cases, NaNs with payloads of both signs among them."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3, 3, shape).astype(dtype)
    flat = x.reshape(-1)
    ints = {4: np.uint32, 8: np.uint64}[np.dtype(dtype).itemsize]
    nan_a = np.array([np.nan], dtype).view(ints) | 1
    nan_b = np.array([-np.nan], dtype).view(ints) | 3
    specials = np.concatenate([np.array([np.inf, -np.inf, 0.0, -0.0, np.finfo(dtype).tiny / 4, np.finfo(dtype).max],
                                        dtype), nan_a.view(dtype), nan_b.view(dtype)])
    count = max(1, flat.size // 20)
    flat[rng.integers(0, flat.size, count)] = rng.choice(specials, count)
    return x


def _bits(a: np.ndarray) -> np.ndarray:
    return a.view({4: np.uint32, 8: np.uint64}[a.itemsize])


@pytest.fixture
def one_thread():
    before = _parallel.get_num_threads()
    _parallel.set_num_threads(1)
    yield
    _parallel.set_num_threads(before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.__name__)
@pytest.mark.parametrize("shapes", SHAPES, ids=str)
def test_broadcast_arithmetic_has_the_bits_of_one_numpy_call(one_thread, shapes, kernel, dtype):
    x, y = _values(shapes[0], dtype, 1), _values(shapes[1], dtype, 2)
    expected = kernel(x, y)
    out = _memory.empty(expected.shape, dtype)
    with np.errstate(all="ignore"):
        _parallel.split(kernel, out, x, y)
    assert np.array_equal(_bits(out), _bits(expected))


def test_the_short_run_operand_is_copied_and_the_product_runs_over_the_long_runs(one_thread, monkeypatch):
    """The path itself: the kernel is called once, with the result as its short-run operand."""
    calls = []

    def multiply(*operands, out):
        calls.append(tuple(a is out for a in operands))
        return np.multiply(*operands, out=out)
    monkeypatch.setattr(_parallel, "_ARITHMETIC", {multiply})
    a, b = _values((128, 1, 64), np.float32, 3), _values((1, 32, 64), np.float32, 4)
    assert (_parallel._run_length((128, 32, 64), a), _parallel._run_length((128, 32, 64), b)) == (64, 2048)
    for x, y, expected in ((a, b, (True, False)), (b, a, (False, True))):
        calls.clear()
        out = _parallel.split(multiply, _memory.empty((128, 32, 64), np.float32), x, y)
        assert calls == [expected]
        assert np.array_equal(_bits(out), _bits(x * y))
    calls.clear()   # operands read in runs of one length: one call on them as they are
    _parallel.split(multiply, _memory.empty((512, 512), np.float32), _values((512, 512), np.float32, 5), b.reshape(-1)[:512])
    assert calls == [(False, False)]


def test_an_operand_that_is_the_output_is_not_overwritten_first(one_thread):
    x, y = _values((300, 1, 100), np.float32, 6), _values((300, 40, 100), np.float32, 7)
    expected = np.subtract(x, y)
    _parallel.split(np.subtract, y, x, y)        # y -= ... as y = x - y
    assert np.array_equal(_bits(y), _bits(expected))


def test_w5_product_matches_torch_in_values_and_layout():
    # (without NaN operands: which payload a NaN result carries is numpy's, not torch's, either way)
    a, b = (np.nan_to_num(_values(shape, np.float32, seed), nan=1.5, posinf=np.inf, neginf=-np.inf)
            for shape, seed in (((128, 1, 64), 8), ((1, 32, 64), 9)))
    for op in ("mul", "add", "sub", "div"):
        mine = getattr(engine.tensor(a), op)(engine.tensor(b))
        theirs = getattr(torch.tensor(a), op)(torch.tensor(b))
        assert np.array_equal(_bits(mine.numpy()), _bits(theirs.numpy())), op
        assert mine._data.strides == tuple(s * 4 for s in theirs.stride()), op


def test_cheap_kernels_split_from_a_million_elements_costly_ones_from_256k(monkeypatch):
    """A multiply of W5's 262,144 elements runs on the calling thread (two threads lost 40-45 us on
    each of W5's three: see MIN_NUMEL); tanh of as many elements is still split."""
    before = _parallel.get_num_threads()
    _parallel.set_num_threads(2)
    _parallel.set_dynamic(False)
    split = []
    run = _parallel._run
    monkeypatch.setattr(_parallel, "_run", lambda kernel, blocks: (split.append(kernel), run(kernel, blocks)))
    try:
        x = _values((512, 512), np.float32, 10)
        _parallel.split(np.multiply, _memory.empty(x.shape, np.float32), x, x)
        _parallel.split(np.tanh, _memory.empty(x.shape, np.float32), x)
        big = _values((1024, 1024), np.float32, 11)
        _parallel.split(np.multiply, _memory.empty(big.shape, np.float32), big, big)
    finally:
        _parallel.set_num_threads(before)
        _parallel.set_dynamic(True)
    assert split == [np.tanh, np.multiply]


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.__name__)
@pytest.mark.parametrize("shapes", SHAPES, ids=str)
def test_split_blocks_of_a_broadcast_computation_have_the_bits_of_one_numpy_call(monkeypatch, shapes, kernel):
    """Split over threads, each block (the outermost axis cut) takes the same short-run path."""
    before = _parallel.get_num_threads()
    _parallel.set_dynamic(False)
    monkeypatch.setattr(_parallel, "MIN_NUMEL", 1 << 12)
    try:
        for n in (2, 3):
            _parallel.set_num_threads(n)
            x, y = _values(shapes[0], np.float32, 12), _values(shapes[1], np.float32, 13)
            expected = kernel(x, y)
            with np.errstate(all="ignore"):
                out = _parallel.split(kernel, _memory.empty(expected.shape, np.float32), x, y)
            assert np.array_equal(_bits(out), _bits(expected))
    finally:
        _parallel.set_num_threads(before)
        _parallel.set_dynamic(True)
