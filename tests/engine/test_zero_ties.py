"""Signed-zero ties in the min/max/clamp family, bit for bit against torch.

torch's vectorized loops of maximum, minimum and clamp (tensor bounds) take the SECOND operand
of the SIMD instruction on a tie of +0.0 and -0.0 (x86 max_ps / min_ps), their scalar loops
(the tail after the last whole pair of vectors, and loops over non-contiguous operands) the
first (std::max / std::min). Which elements take which loop depends on the layout of every
operand (TensorIterator), the length of the inner loop and the vector width. These tests run
both libraries over many layouts and lengths and compare every result bit (the sign of zero
included), and the gradients at those ties.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import engine
from engine import _cpu

pytestmark = pytest.mark.skipif(torch.backends.cpu.get_cpu_capability() == "DEFAULT",
                                reason="torch without SIMD kernels")

DTYPES = ("float32", "float64")
# lengths around the vector boundaries (AVX2: 16 float32 / 8 float64 per pair of vectors)
LENGTHS = (1, 2, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 40, 47, 48, 63, 64, 65, 70)
SHAPES_2D = ((2, 8), (3, 5), (4, 16), (5, 7), (3, 17), (2, 33), (16, 3), (9, 4), (7, 9))


# ---------------------------------------------------------------------------------
# Operands in a given layout, built the same way in both libraries
# ---------------------------------------------------------------------------------

def _storage_shape(shape: tuple, layout: str) -> tuple:
    """The shape of the array an operand of `shape` in `layout` is made from (see _build)."""
    if layout == "0d":
        return ()
    if layout == "t":
        return shape[::-1]
    if layout == "strided":
        return shape[:-1] + (2 * shape[-1],)
    if layout == "expand":
        return (1,) + shape[1:]
    if layout == "row":             # broadcast along the first dim by shape
        return shape[1:]
    if layout == "column":          # broadcast along the last dim by shape
        return shape[:-1] + (1,)
    return shape


def _build(backend, array: np.ndarray, shape: tuple, layout: str, dtype: str):
    t = backend.tensor(array.tolist(), dtype=getattr(backend, dtype))
    if layout == "t":
        return t.permute(*range(t.dim() - 1, -1, -1))
    if layout == "strided":
        return t[..., ::2]
    if layout == "expand":
        return t.expand(*shape)
    return t


def _values(rng, shape: tuple, zeros_only: bool) -> np.ndarray:
    pool = [-0.0, 0.0] if zeros_only else [-0.0, 0.0, -0.0, 0.0, 1.0, -1.0, 0.5]
    return rng.choice(pool, size=shape)


def _bits(result) -> np.ndarray:
    """The result's values as integers (their bits: the sign of zero included)."""
    array = np.ascontiguousarray(result.detach().numpy())
    return array.view(np.int32 if array.dtype == np.float32 else np.int64)


def _assert_same_bits(op, shape: tuple, layouts: tuple, dtypes: tuple, seed: int, inplace=False):
    """op(*operands) in torch and the engine, operands of `shape` in `layouts` and `dtypes`
    (one each) with random zeros of both signs (every third seed: and a few other numbers)."""
    rng = np.random.default_rng(seed)
    arrays = [_values(rng, _storage_shape(shape, layout), zeros_only=seed % 3 != 0) for layout in layouts]
    results = []
    for backend in (torch, engine):
        operands = [_build(backend, a, shape, layout, dt) for a, layout, dt in zip(arrays, layouts, dtypes)]
        if inplace:   # a tensor of its own to write into (a transposed one stays transposed)
            operands[0] = operands[0].clone() if layouts[0] != "t" else operands[0].t().clone().t()
        results.append(op(backend, *operands))
    want, got = results
    assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1]
    assert tuple(got.shape) == tuple(want.shape)
    if not np.array_equal(_bits(got), _bits(want)):
        signs = [np.signbit(r.detach().numpy()).astype(int) for r in results]
        raise AssertionError(f"{shape} {layouts} {dtypes}: signs of torch's result\n{signs[0]}\nof the engine's\n{signs[1]}")


# ---------------------------------------------------------------------------------
# The ops
# ---------------------------------------------------------------------------------

BINARY = {
    "maximum": lambda b, x, y: b.maximum(x, y),
    "minimum": lambda b, x, y: b.minimum(x, y),
    "max(other)": lambda b, x, y: b.max(x, y),
    "min(other)": lambda b, x, y: b.min(x, y),
    "clamp_min(tensor)": lambda b, x, y: b.clamp_min(x, y),
    "clamp_max(tensor)": lambda b, x, y: b.clamp_max(x, y),
    "clamp(min=tensor)": lambda b, x, y: b.clamp(x, min=y),
    "clamp(max=tensor)": lambda b, x, y: b.clamp(x, max=y),
    "clip(min=tensor)": lambda b, x, y: b.clip(x, y),
    "Tensor.clamp_max(tensor)": lambda b, x, y: x.clamp_max(y),
}
BINARY_INPLACE = {
    "clamp_min_": lambda b, x, y: x.clamp_min_(y),
    "clamp_max_": lambda b, x, y: x.clamp_max_(y),
    "clamp_(min=tensor)": lambda b, x, y: x.clamp_(min=y),
    "clip_(max=tensor)": lambda b, x, y: x.clip_(max=y),
}
TERNARY = {
    "clamp(tensor, tensor)": lambda b, x, lo, hi: b.clamp(x, lo, hi),
    "clip(tensor, tensor)": lambda b, x, lo, hi: b.clip(x, lo, hi),
}
NUMBER_BOUNDS = {   # torch's scalar-bound kernels: the input wins every tie, vector loop or not
    "clamp(0., 0.)": lambda b, x: b.clamp(x, 0.0, 0.0),
    "clamp(-0., -0.)": lambda b, x: b.clamp(x, -0.0, -0.0),
    "clamp(-0., 0.)": lambda b, x: b.clamp(x, -0.0, 0.0),
    "clamp_min(0.)": lambda b, x: b.clamp_min(x, 0.0),
    "clamp_min(-0.)": lambda b, x: b.clamp_min(x, -0.0),
    "clamp_max(0.)": lambda b, x: b.clamp_max(x, 0.0),
    "clamp_max(-0.)": lambda b, x: b.clamp_max(x, -0.0),
    "clamp(min=0.)": lambda b, x: b.clamp(x, min=0.0),
    "clamp_(max=-0.)": lambda b, x: x.clone().clamp_(max=-0.0),
    "relu": lambda b, x: b.relu(x),
    "relu_": lambda b, x: b.relu(x.clone()).relu_(),
    "F.relu": lambda b, x: b.nn.functional.relu(x),
    "F.hardtanh(0, 1)": lambda b, x: b.nn.functional.hardtanh(x, 0.0, 1.0),
    "F.hardtanh(-1, -0.)": lambda b, x: b.nn.functional.hardtanh(x, -1.0, -0.0),
    "F.leaky_relu": lambda b, x: b.nn.functional.leaky_relu(x),
    # a 0-d tensor next to a number is read as a number (the scalar kernel)
    "clamp(0-d, number)": lambda b, x: b.clamp(x, b.tensor(0.0, dtype=x.dtype), 1.0),
}

# (layout of the first operand, of the second): every loop TensorIterator can choose
BINARY_LAYOUTS_1D = (("c", "c"), ("c", "0d"), ("0d", "c"), ("c", "strided"), ("strided", "c"),
                     ("strided", "0d"), ("c", "expand"), ("expand", "c"), ("0d", "0d"))
BINARY_LAYOUTS_2D = (("c", "c"), ("t", "t"), ("t", "c"), ("c", "t"), ("c", "row"), ("row", "c"),
                     ("c", "column"), ("column", "c"), ("t", "row"), ("t", "column"), ("c", "expand"),
                     ("expand", "c"), ("t", "expand"), ("strided", "row"), ("c", "0d"), ("0d", "t"),
                     ("strided", "strided"), ("expand", "expand"), ("row", "column"))
INPLACE_LAYOUTS = (("c", "c"), ("c", "0d"), ("t", "c"), ("t", "t"), ("c", "row"), ("t", "row"),
                   ("c", "column"), ("t", "0d"), ("c", "expand"), ("c", "strided"))


def _cases_1d(layouts):
    return [((n,), pair) for n in LENGTHS for pair in layouts if n > 1 or "strided" not in pair] + [
        ((), ("0d",) * len(layouts[0]))]


def _cases_2d(layouts):
    return [(shape, pair) for shape in SHAPES_2D for pair in layouts]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BINARY)
def test_binary_ties_match_torch_bit_for_bit(name, dtype):
    for seed, (shape, layouts) in enumerate(_cases_1d(BINARY_LAYOUTS_1D) + _cases_2d(BINARY_LAYOUTS_2D)):
        _assert_same_bits(BINARY[name], shape, layouts, (dtype, dtype), seed)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BINARY_INPLACE)
def test_in_place_ties_match_torch_bit_for_bit(name, dtype):
    cases = [c for c in _cases_1d(BINARY_LAYOUTS_1D) if c[1][0] in ("c", "0d") and c[1] != ("0d", "c")]
    for seed, (shape, layouts) in enumerate(cases + _cases_2d(INPLACE_LAYOUTS)):
        _assert_same_bits(BINARY_INPLACE[name], shape, layouts, (dtype, dtype), seed, inplace=True)


TERNARY_LAYOUTS = tuple(itertools.product(("c", "t", "row", "0d", "expand"), repeat=3))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", TERNARY)
def test_clamp_with_two_tensor_bounds_matches_torch_bit_for_bit(name, dtype):
    cases = [((n,), layouts) for n in LENGTHS for layouts in itertools.product(("c", "0d", "strided"), repeat=3)]
    cases += [(shape, layouts) for shape in SHAPES_2D[:5] for layouts in TERNARY_LAYOUTS]
    for seed, (shape, layouts) in enumerate(cases):
        _assert_same_bits(TERNARY[name], shape, layouts, (dtype,) * 3, seed)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NUMBER_BOUNDS)
def test_number_bounds_keep_the_input_on_a_tie(name, dtype):
    for seed, (shape, layouts) in enumerate(_cases_1d((("c",), ("strided",), ("expand",)))
                                            + _cases_2d((("c",), ("t",), ("strided",)))):
        _assert_same_bits(NUMBER_BOUNDS[name], shape, layouts, (dtype,), seed)


@pytest.mark.parametrize("name", ["maximum", "minimum", "clamp_min(tensor)", "clamp(max=tensor)"])
def test_operands_of_another_dtype(name):
    """A float32 input with a float64 (or int64) bound: a 0-d bound does not promote; a 1-d one
    does, and TensorIterator copies the float32 operand (keeping its strides if it is dense)."""
    for seed, (shape, layouts) in enumerate(_cases_1d((("c", "c"), ("c", "0d"), ("strided", "c"), ("0d", "c")))
                                            + _cases_2d((("t", "c"), ("c", "row"), ("strided", "row"),
                                                         ("c", "expand"), ("expand", "c")))):
        for dtypes in (("float32", "float64"), ("float64", "float32"), ("float64", "int64"), ("int64", "float32")):
            _assert_same_bits(BINARY[name], shape, layouts, dtypes, seed)


@pytest.mark.parametrize("name", BINARY_INPLACE)
def test_in_place_with_a_bound_of_another_dtype(name):
    """x.clamp_min_(float64 bound) of a float32 x computes in float64 (a 1-d bound promotes)
    and writes back: TensorIterator's float64 output is then a contiguous temporary."""
    cases = _cases_1d((("c", "c"), ("c", "0d"), ("c", "strided"))) + _cases_2d(INPLACE_LAYOUTS)
    for seed, (shape, layouts) in enumerate(cases):
        for dtypes in (("float32", "float64"), ("float64", "float32"), ("float64", "int64")):
            _assert_same_bits(BINARY_INPLACE[name], shape, layouts, dtypes, seed, inplace=True)


def test_clamp_max_of_negative_zeros_by_a_0d_zero():
    """Fuzzer findings (value|floor_divide|*, merged-main seed 2; earlier clamp_min of -0.0 by an
    int64 tensor 0): clamp_max(x, 0-d 0.) of 20 -0.0 in float32 is 16 x 0.0 (a pair of 8-float
    AVX2 vectors), then 4 x -0.0 (the tail)."""
    x = engine.tensor([-0.0] * 20)
    out = engine.clamp_max(x, engine.tensor(0.0)).numpy()
    assert np.signbit(out).tolist() == [False] * 16 + [True] * 4


def test_normalize_with_a_negative_zero_eps_keeps_the_norm():
    """normalize divides by norm.clamp_min(eps), a number bound: a norm of +0.0 (underflow)
    stays +0.0 at eps=-0.0, so the quotients are +-inf with the input's signs."""
    outs = []
    for backend in (torch, engine):
        x = backend.tensor([[1e-30, -1e-30, 0.0]], dtype=backend.float32)
        outs.append(backend.nn.functional.normalize(x, p=2.0, dim=1, eps=-0.0).numpy())
    np.testing.assert_array_equal(outs[1], outs[0])
    assert outs[0][0, :2].tolist() == [np.inf, -np.inf]


def test_vector_loop_mask_follows_torchs_iterator():
    """The engine's model of torch's loops (engine/_cpu.py), on layouts whose answer is known."""
    x = np.zeros((3, 20), np.float32)
    def mask(*operands, dtype=None):
        return _cpu.vector_loop_mask(*operands, dtype=dtype, vector_bytes=32)
    assert mask(x).sum(axis=1).tolist() == [20, 20, 8]                         # one loop of 60
    assert mask(x.T).sum(axis=0).tolist() == [20, 20, 8]                       # memory order
    assert mask(x, np.zeros((), np.float32)).sum() == 48                       # a stride-0 scalar
    assert mask(x, np.zeros(20, np.float32)).sum() == 48                       # a row: loops of 20
    assert mask(x, np.zeros((3, 1), np.float32)).sum() == 48                   # a column: a scalar per row
    assert mask(x[:, ::2], x[:, ::2]).sum() == 0                               # strided
    assert mask(x, np.zeros((), np.float32), np.zeros((), np.float32)).sum() == 0   # two scalars
    assert mask(np.zeros(16, np.float64)).tolist() == [True] * 16
    assert mask(np.zeros(16, np.float32), np.zeros(16, np.float64), dtype=np.float64).sum() == 16


# ---------------------------------------------------------------------------------
# Gradients at +-0 ties
# ---------------------------------------------------------------------------------

GRADIENT_OPS = {
    "maximum": lambda b, x, y: b.maximum(x, y),
    "minimum": lambda b, x, y: b.minimum(x, y),
    "clamp_min(tensor)": lambda b, x, y: b.clamp_min(x, y),
    "clamp_max(tensor)": lambda b, x, y: b.clamp_max(x, y),
    "clamp(tensor, tensor)": lambda b, x, y: b.clamp(x, y, y),
    "clamp(number)": lambda b, x, y: b.clamp(x, 0.0, 0.0) * y,
    "relu": lambda b, x, y: b.relu(x) * y,
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", GRADIENT_OPS)
@pytest.mark.parametrize("n", [3, 20, 40])
def test_gradients_at_zero_ties_match_torch(name, dtype, n):
    """maximum / minimum split the gradient in half at a tie; clamp passes it at the bounds;
    the values (and so the signs of zero that flow further) follow the loops above."""
    rng = np.random.default_rng(n)
    x, y = rng.choice([-0.0, 0.0], size=(2, n)).tolist()
    w = rng.standard_normal(n).tolist()
    outs = []
    for backend in (torch, engine):
        a = backend.tensor(x, dtype=getattr(backend, dtype), requires_grad=True)
        b = backend.tensor(y, dtype=getattr(backend, dtype), requires_grad=True)
        out = GRADIENT_OPS[name](backend, a, b)
        # exp(1 / out): the sign of each zero of out decides the gradient (-inf or NaN)
        (out * backend.tensor(w, dtype=out.dtype) + (1 / out).exp()).sum().backward()
        outs.append([np.ascontiguousarray(t.detach().numpy()) for t in (out, a.grad, b.grad)])
    for want, got in zip(*outs):
        np.testing.assert_array_equal(got, want)
        assert np.array_equal(np.signbit(got), np.signbit(want))


@pytest.mark.skipif(engine._cpu.VECTOR_BYTES != 32, reason="torch's AVX512 all-reductions combine lanes otherwise "
                                                             "(not emulated)")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", ["max", "min"])
def test_max_and_min_of_all_elements_keep_torchs_zero(op, dtype):
    """max()/min() of every element: which of tied 0.0 and -0.0 comes out follows torch's
    vector lanes (a 10-minute campaign's finding: max() of a (1, 2, 3) float64 tensor holding
    0.0, -3.07, 0.0, -1.48, -0.0, -3.9 is 0.0 in torch, and was -0.0 in the engine), for every
    length around the vector sizes, contiguous or transposed, and through the gradient."""
    rng = np.random.default_rng(7)
    other = -1.0 if op == "max" else 1.0
    checked = 0
    for n in [*range(1, 41), 63, 64, 65, 100, 129]:
        for _ in range(12):
            values = rng.choice([0.0, -0.0, other], size=n)
            if not (values == 0).any():
                continue
            shape = (2, n // 2) if n % 2 == 0 else (1, n)
            results = []
            for backend in (torch, engine):
                x = backend.tensor(values.reshape(shape).tolist(), dtype=getattr(backend, dtype), requires_grad=True)
                for arg in (x, x.t()):
                    out = getattr(arg, op)()
                    (1 / out).exp().backward()   # -inf or NaN gradient: the sign of the zero
                    results.append(np.asarray(out.detach().numpy()))
                results.append(x.grad.numpy())
            half = len(results) // 2
            for want, got in zip(results[:half], results[half:]):
                np.testing.assert_array_equal(got, want)
                assert np.array_equal(np.signbit(got), np.signbit(want)), (n, values)
            checked += 1
    assert checked > 400


@pytest.mark.skipif(engine._cpu.VECTOR_BYTES != 32, reason="torch's AVX512 reductions read other vector widths "
                                                             "(not emulated)")
@pytest.mark.parametrize("op", ["amax", "amin"])
def test_amax_and_amin_over_dims_keep_torchs_zero(op):
    """amax/amin over dims: which of tied 0.0 and -0.0 comes out follows torch's vectorized inner
    reduction (the last dim reduced: chunks of four vectors, lanes combined) and outer reduction
    (whole chunks of 16 float64 / 32 float32 columns keep the later zero, the rest the first), in the
    input's memory order when its kept dims lie in their own order (a 10-minute campaign's finding:
    amax(dim=0) of a (4, 4, 4) float64 input with 0.0 then -0.0 in a column is -0.0 in torch). Every
    layout: contiguous, transposed, any dims, sizes around the chunk lengths."""
    rng = np.random.default_rng(5)
    other = -1.0 if op == "amax" else 1.0
    checked = 0
    for _ in range(1500):
        ndim = int(rng.integers(1, 5))
        shape = tuple(int(s) for s in rng.integers(1, 5, ndim - 1)) + (int(rng.choice([1, 3, 15, 16, 17, 31, 32, 33, 64, 65, 70])),)
        values = rng.choice([0.0, -0.0, other], size=shape)
        dims = tuple(sorted(rng.choice(ndim, size=int(rng.integers(1, ndim + 1)), replace=False).tolist()))
        dtype = str(rng.choice(DTYPES))
        transposed = ndim > 1 and rng.random() < 0.5
        results = []
        for backend in (torch, engine):
            if transposed:   # the transpose of a contiguous tensor: another memory order
                x = backend.tensor(np.swapaxes(values, 0, -1).tolist(), dtype=getattr(backend, dtype)).transpose(0, -1)
            else:
                x = backend.tensor(values.tolist(), dtype=getattr(backend, dtype))
            results.append(getattr(backend, op)(x, dim=dims).numpy())
        want, got = results
        assert np.array_equal(np.signbit(got), np.signbit(want)) and np.array_equal(got, want), \
            (shape, dims, dtype, transposed)
        checked += bool((want == 0).any())
    assert checked > 1000
