"""Float sums over some dims add in torch's order, bit for bit (engine/_sum_order.py).

Values with cancellations (1e30 and -1e30 among small ones, magnitudes from 1e-3 to 1e8)
make the order of additions visible: numpy's pairwise and row-by-row sums differ from
torch's in about half of these cases (the first test counts them, so it fails if the
values stop telling orders apart).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import engine
from engine._sum_order import dims_sum

SIZES = (1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 33)
POOL = (1e30, -1e30, 1.0, -1.0, 0.5, 3.0, -0.0, 0.0, 1e-3, 2.5e7, -2.5e7, 0.1, -7.25)


def _random_case(rng: np.random.Generator):
    """(storage, layout, perm, axes, dtype): a tensor of up to 4 dims laid out contiguous,
    permuted in memory or every other element of a wider one, and the dims a sum reduces."""
    ndim = int(rng.integers(1, 5))
    shape = [int(n) for n in rng.choice(SIZES, ndim)]
    while np.prod(shape) > 4096:
        shape = [max(1, n // 2) for n in shape]
    dtype = str(rng.choice(["float32", "float64"]))
    layout = str(rng.choice(["contiguous", "permuted", "strided"]))
    perm = [int(d) for d in rng.permutation(ndim)]
    storage = list(shape)
    if layout == "permuted":
        storage = [shape[d] for d in perm]
    elif layout == "strided":
        storage[-1] *= 2
    count = int(np.prod(storage))
    kind = rng.integers(3)
    if kind == 0:
        values = rng.choice(POOL, count)
    elif kind == 1:
        values = rng.standard_normal(count) * 10.0 ** rng.integers(-3, 8, count)
    else:
        values = rng.standard_normal(count)
    axes = tuple(sorted(int(a) for a in rng.choice(ndim, int(rng.integers(1, ndim + 1)), replace=False)))
    return values.astype(dtype).reshape(storage), layout, perm, axes, dtype


# (a seed per case: Hypothesis's profiles decide how many, its database keeps a failing one)
summed = st.integers(0, 2**32 - 1).map(lambda seed: _random_case(np.random.default_rng(seed)))


def _laid_out(module, storage: np.ndarray, layout: str, perm: list):
    tensor = module.tensor(storage)
    if layout == "permuted":
        return tensor.permute(*np.argsort(perm).tolist())
    if layout == "strided":
        return tensor[..., ::2]
    return tensor


def _bits(array) -> np.ndarray:
    array = np.asarray(array)
    return np.where(np.isnan(array), np.nan, array).view(np.uint64 if array.dtype == np.float64 else np.uint32)


def test_the_values_tell_summation_orders_apart():
    """numpy's order differs from torch's in many drawn cases: the property below tests the order."""
    differ, rng = 0, np.random.default_rng(0)
    for _ in range(200):
        storage, layout, perm, axes, _ = _random_case(rng)
        theirs = _laid_out(torch, storage, layout, perm).sum(dim=axes, keepdim=True).numpy()
        array = np.asarray(_laid_out(engine, storage, layout, perm)._data)
        differ += not np.array_equal(_bits(np.add.reduce(array, axis=axes, keepdims=True) + 0), _bits(theirs))
    assert differ >= 40


@given(summed, st.booleans())
def test_sum_and_mean_over_dims_add_in_torchs_order(case, keepdim):
    storage, layout, perm, axes, _ = case
    ours, theirs = _laid_out(engine, storage, layout, perm), _laid_out(torch, storage, layout, perm)
    data = np.asarray(ours._data)   # (the engine's layout is its array's)
    assert tuple(s // data.itemsize for s in data.strides) == theirs.stride() or 1 in ours.shape
    for op in ("sum", "mean"):
        expected = getattr(theirs, op)(dim=axes, keepdim=keepdim).numpy()
        got = getattr(ours, op)(dim=axes, keepdim=keepdim).numpy()
        assert got.shape == expected.shape and np.array_equal(_bits(got), _bits(expected)), (op, storage.shape, axes)


@given(summed)
def test_broadcast_gradients_are_summed_in_torchs_order(case):
    """An input broadcast along `axes` gets its gradient summed over them (sum_to_size): campaign
    seed 27 found x0's gradient 0.0 in torch and -2.6 in the engine."""
    storage, layout, perm, axes, dtype = case
    gradients = {}
    for module in (engine, torch):
        gradient = _laid_out(module, storage, layout, perm)
        shape = tuple(1 if d in axes else n for d, n in enumerate(gradient.shape))
        leaf = module.zeros(shape, dtype=getattr(module, dtype), requires_grad=True)
        (leaf + module.zeros(gradient.shape, dtype=getattr(module, dtype))).backward(gradient)
        gradients[module.__name__] = leaf.grad.numpy()
    assert np.array_equal(_bits(gradients["engine"]), _bits(gradients["torch"]))


def test_campaign_seed_27_broadcast_gradient():
    nan = float("nan")
    g = [2.314597158864863, 0.5, 3.891070402889435, 2.3387462061190334, 3.0000000054977558e+38,
         -1.0000000150474662e+30, 2.5107303073759715, -0.0, nan, 1.0000000150474662e+30, -1.0, -2.6044807149838314]
    grads = []
    for module in (engine, torch):
        x0 = module.zeros(2, dtype=module.float64, requires_grad=True)
        (x0 + module.zeros(2, 3, 1, dtype=module.float64)).flatten().backward(module.tensor(g, dtype=module.float64))
        grads.append(x0.grad.numpy())
    assert np.isnan(grads[0][0]) and grads[0][1] == 0.0 and np.array_equal(grads[0], grads[1], equal_nan=True)


@pytest.mark.parametrize("shape, axes", [((2, 16384), (1,)), ((16384, 2), (0,)), ((32, 32, 32), (0, 2)),
                                         ((128, 256), (0,)), ((4, 4096, 2), (1,))])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_large_sums_up_to_one_grain_add_in_torchs_order(shape, axes, dtype):
    """Rows long enough for multi_row_sum's upper levels (every 16 and 256 groups)."""
    x = (np.random.default_rng(5).standard_normal(shape) * 10.0 ** np.random.default_rng(6).integers(-3, 8, shape))
    x = x.astype(dtype)
    assert np.array_equal(dims_sum(x, axes), torch.from_numpy(x).sum(axes, keepdim=True).numpy())


def test_not_covered_above_one_grain_or_for_other_dtypes():
    assert dims_sum(np.ones((2, 20000), np.float32), (1,)) is None
    assert dims_sum(np.ones((2, 3), np.int64), (1,)) is None
    assert dims_sum(np.ones((2, 3), np.float16), (1,)) is None


def test_layouts_of_equal_strides_in_other_dtypes_are_planned_apart():
    """A (33,) float64 array and every other element of a float32 one both have strides (8,)."""
    wide = np.random.default_rng(1).standard_normal(66) * 1e6
    for x in (wide[:33], wide.astype(np.float32)[::2], wide[:33].astype(np.float32)):
        assert np.array_equal(dims_sum(x, (0,)), torch.from_numpy(x).sum(0, keepdim=True).numpy())


def _reduction_cases(count: int, seed: int):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        ndim = int(rng.integers(1, 4))
        shape = tuple(int(s) for s in rng.choice([1, 2, 3, 5, 8, 9, 17, 33], ndim))
        dtype = str(rng.choice(["float32", "float64"]))
        axes = tuple(sorted(int(a) for a in rng.choice(ndim, int(rng.integers(1, ndim + 1)), replace=False)))
        yield (rng.standard_normal(shape) * 3).astype(dtype), axes


def test_var_gradients_subtract_a_mean_summed_in_torchs_order():
    """var's backward is 2 / dof * grad * (x - x.mean(dims, keepdim=True)): 773 of 1,500 such
    gradients differed from torch's while that mean was numpy's sum."""
    for x, axes in _reduction_cases(300, 1):
        ours, theirs = engine.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        engine.var(ours, axes, correction=0).sum().backward()
        torch.var(theirs, axes, correction=0).sum().backward()
        assert np.array_equal(_bits(ours.grad.numpy()), _bits(theirs.grad.numpy())), (x.shape, axes)


def test_logsumexp_sums_the_exponentials_in_torchs_order():
    """torch's logsumexp is log(sum(exp(x - max), dims)) + max with its sum (285 of 1,500 differed
    with numpy's sum, 57 after, all where the float32/float64 exponentials or logarithm round
    otherwise): checked here where the engine's exponentials are torch's."""
    checked = 0
    for x, axes in _reduction_cases(400, 2):
        shifted = torch.tensor(x) - torch.amax(torch.tensor(x), axes, keepdim=True)
        if x.dtype != np.float64 or not np.array_equal(shifted.exp().numpy(), np.exp(shifted.numpy())):
            continue
        checked += 1
        ours = engine.logsumexp(engine.tensor(x), axes).numpy()
        assert np.array_equal(_bits(ours), _bits(torch.logsumexp(torch.tensor(x), axes).numpy())), (x.shape, axes)
    assert checked > 100
