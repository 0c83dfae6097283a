"""Factories beyond the table: torch's errors, exact ranges, and the random factories by statistics."""
from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import torch

import engine


def _outcome(backend, call):
    try:
        result = call(backend)
    except Exception as exc:  # noqa: BLE001  (the exception is what is compared)
        return type(exc).__name__, str(exc)
    return "ok", str(result.dtype), tuple(result.shape), result.requires_grad


MISUSE = {
    "zeros no size": lambda b: b.zeros(),
    "zeros negative": lambda b: b.zeros(2, -3),
    "zeros negative tuple": lambda b: b.zeros((2, -3)),
    "ones negative": lambda b: b.ones(2, -3, -4),
    "full negative": lambda b: b.full((-2,), 1),
    "rand negative": lambda b: b.rand(-1),
    "randn negative": lambda b: b.randn(-2),
    "randint negative": lambda b: b.randint(10, (-1,)),
    "zeros float size": lambda b: b.zeros(2.5),
    "zeros float vararg": lambda b: b.zeros(2, 3.0),
    "zeros float in tuple": lambda b: b.zeros((2, 3.0)),
    "zeros str in list": lambda b: b.zeros([2, "a"]),
    "zeros str": lambda b: b.zeros("a"),
    "zeros bool": lambda b: b.zeros(True),
    "zeros bool in tuple": lambda b: b.zeros((True, 2)),
    "zeros bool vararg": lambda b: b.zeros(2, True),
    "zeros two tuples": lambda b: b.zeros((2,), (3,)),
    "zeros 0-d int tensor": lambda b: b.zeros(b.tensor(3)),
    "zeros 1-d tensor": lambda b: b.zeros(b.tensor([3, 2])),
    "zeros dtype type": lambda b: b.zeros(2, dtype=3),
    "zeros int requires grad": lambda b: b.zeros(2, dtype=b.int64, requires_grad=True),
    "ones size keyword-free Size": lambda b: b.ones(b.Size([2, 3])),
    "full int size": lambda b: b.full(2, 1),
    "full tensor fill": lambda b: b.full((2,), b.tensor([3.0])),
    "full 0-d tensor fill": lambda b: b.full((2,), b.tensor(3.0)),
    "full str fill": lambda b: b.full((2,), "a"),
    "full int requires grad": lambda b: b.full((2,), 1, requires_grad=True),
    "full float requires grad": lambda b: b.full((2,), 1.5, requires_grad=True),
    "full too big": lambda b: b.full((2,), 2 ** 70),
    "full_like str": lambda b: b.full_like(b.ones(2), "a"),
    "zeros_like list": lambda b: b.zeros_like([1, 2]),
    "ones_like number": lambda b: b.ones_like(3),
    "zeros_like int requires grad": lambda b: b.zeros_like(b.ones(2), dtype=b.int64, requires_grad=True),
    "ones_like drops requires_grad": lambda b: b.ones_like(b.ones(2, requires_grad=True)),
    "new_zeros negative": lambda b: b.ones(2).new_zeros(-2),
    "new_full int size": lambda b: b.ones(2).new_full(-2, 1),
    "new_zeros requires grad": lambda b: b.ones(2).new_zeros(2, requires_grad=True),
    "eye negative n": lambda b: b.eye(-1),
    "eye negative m": lambda b: b.eye(2, -1),
    "eye tuple": lambda b: b.eye((2, 3)),
    "eye float": lambda b: b.eye(2.0),
    "eye bool": lambda b: b.eye(True),
    "eye 0-d tensor": lambda b: b.eye(b.tensor(2)),
    "arange zero step": lambda b: b.arange(0, 3, 0),
    "arange zero float step": lambda b: b.arange(0, 3, 0.0),
    "arange nan step": lambda b: b.arange(0, 5, float("nan")),
    "arange truncated step": lambda b: b.arange(0, 3, 0.5, dtype=b.int64),
    "arange wrong sign": lambda b: b.arange(0, 3, -1),
    "arange wrong sign int64": lambda b: b.arange(0, 3, -0.5, dtype=b.int64),
    "arange negative end": lambda b: b.arange(-2.5),
    "arange inf": lambda b: b.arange(float("inf")),
    "arange -inf": lambda b: b.arange(float("-inf"), 0),
    "arange inf int64": lambda b: b.arange(0, float("inf"), dtype=b.int64),
    "arange overflow": lambda b: b.arange(0, 1, 1e-30),
    "arange inf step": lambda b: b.arange(0, 5, float("inf")),
    "arange bool": lambda b: b.arange(5, dtype=b.bool),
    "arange int requires grad": lambda b: b.arange(5, requires_grad=True),
    "arange keywords": lambda b: b.arange(start=1, end=4),
    "arange end keyword": lambda b: b.arange(end=4),
    "arange bool args": lambda b: b.arange(0, 3, True),
    "arange 0-d tensor": lambda b: b.arange(b.tensor(3.5)),
    "arange huge start": lambda b: b.arange(1e20, 1e20 + 1),
    "linspace no steps": lambda b: b.linspace(0, 1),
    "linspace float steps": lambda b: b.linspace(0, 1, 2.5),
    "linspace bool steps": lambda b: b.linspace(0, 1, True),
    "linspace negative steps": lambda b: b.linspace(0, 1, -1),
    "linspace bool": lambda b: b.linspace(0, 1, 5, dtype=b.bool),
    "linspace 1-d start": lambda b: b.linspace(b.tensor([0.0]), 1, 3),
    "linspace int requires grad": lambda b: b.linspace(0, 1, 3, dtype=b.int64, requires_grad=True),
    "rand int64": lambda b: b.rand(2, dtype=b.int64),
    "rand bool": lambda b: b.rand(2, dtype=b.bool),
    "randn int64": lambda b: b.randn(2, dtype=b.int64),
    "randn bool": lambda b: b.randn(2, dtype=b.bool),
    "rand float size": lambda b: b.rand(2, 3.0),
    "rand requires grad": lambda b: b.rand(2, requires_grad=True),
    "randint no size": lambda b: b.randint(10),
    "randint int size": lambda b: b.randint(10, 3),
    "randint float high": lambda b: b.randint(2.5, (3,)),
    "randint empty range": lambda b: b.randint(5, 5, (3,)),
    "randint reversed range": lambda b: b.randint(10, 3, (3,)),
    "randint zero high": lambda b: b.randint(0, (3,)),
    "randint bool high": lambda b: b.randint(10, (3,), dtype=b.bool),
    "randint bool low": lambda b: b.randint(-1, 2, (2,), dtype=b.bool),
    "randint bool ok": lambda b: b.randint(2, (3,), dtype=b.bool),
    "randint int requires grad": lambda b: b.randint(10, (3,), requires_grad=True),
    "randint float requires grad": lambda b: b.randint(3, (2,), dtype=b.float32, requires_grad=True),
    "randint keywords": lambda b: b.randint(low=1, high=10, size=(2,)),
    "randint size keyword": lambda b: b.randint(5, size=(2,), dtype=b.float64),
    "randint 0-d": lambda b: b.randint(10, ()),
}


@pytest.mark.parametrize("name", MISUSE)
def test_errors_and_result_types_match_torch(name):
    assert _outcome(engine, MISUSE[name]) == _outcome(torch, MISUSE[name])


RANGES = [
    ("arange", (0, 1, 0.1), {}), ("arange", (-3, 3, 0.7), {}), ("arange", (1, 2.5, 0.5), {}),
    ("arange", (0.5, 3.7, 1), {"dtype": "int64"}), ("arange", (10, 0, -3), {}), ("arange", (5,), {"dtype": "float64"}),
    ("linspace", (0.1, 1.7, 6), {}), ("linspace", (-3.5, 12.25, 11), {}), ("linspace", (0, 1, 7), {"dtype": "float64"}),
    ("linspace", (-7, 0, 4), {"dtype": "int64"}), ("linspace", (0, 10, 5), {"dtype": "int64"}),
    ("linspace", (1e-3, 1e3, 9), {}),
]


@pytest.mark.parametrize("name, args, kwargs", RANGES)
def test_small_ranges_equal_torch_bit_for_bit(name, args, kwargs):
    got = getattr(engine, name)(*args, **{k: getattr(engine, v) for k, v in kwargs.items()})
    want = getattr(torch, name)(*args, **{k: getattr(torch, v) for k, v in kwargs.items()})
    assert str(got.dtype) == str(want.dtype)
    np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_arange_size_rule_is_ceil_of_the_double_quotient():
    # NOTE: a float step that does not divide the range rounds the count up, and a float32
    # end just above a multiple still counts in double: both follow torch's size rule.
    for args in [(0, 1, 0.3), (0, 0.9, 0.3), (1, 1.0000001, 1e-7), (0, 10, 3), (-1, 1, 0.25)]:
        assert engine.arange(*args).shape == torch.arange(*args).shape, args


def test_manual_seed_makes_random_factories_reproducible():
    def draw():
        return (engine.rand(3, 2).tolist(), engine.randn(4, dtype=engine.float64).tolist(),
                engine.randint(-5, 5, (6,)).tolist())

    generator = engine.manual_seed(123)
    first = draw()
    assert engine.manual_seed(123) is generator   # one generator, re-seeded in place
    assert draw() == first
    engine.manual_seed(124)
    assert draw() != first
    engine.manual_seed(-1)                          # torch takes negative seeds (as unsigned)
    assert engine.manual_seed(2 ** 64 - 1) is generator


def test_rand_is_uniform_on_the_unit_interval():
    engine.manual_seed(0)
    for dt in (engine.float32, engine.float64):
        x = engine.rand(200, 100, dtype=dt)
        assert x.dtype is dt and x.shape == engine.Size([200, 100]) and not x.requires_grad
        data = x.numpy()
        assert data.min() >= 0.0 and data.max() < 1.0
        assert abs(data.mean() - 0.5) < 0.01          # sd of the mean: 0.29 / sqrt(2e4) = 0.002
        assert abs(data.var() - 1 / 12) < 0.005
        assert np.all(np.abs(np.histogram(data, bins=10, range=(0, 1))[0] / data.size - 0.1) < 0.01)


def test_randn_is_standard_normal():
    engine.manual_seed(0)
    for dt in (engine.float32, engine.float64):
        data = engine.randn(200, 100, dtype=dt).numpy()
        assert data.dtype == dt.np
        assert abs(data.mean()) < 0.03 and abs(data.std() - 1) < 0.03
        assert abs(np.mean(np.abs(data) < 1) - 0.6827) < 0.02
    assert engine.randn((2, 3), requires_grad=True).requires_grad


def test_randint_covers_its_half_open_range_uniformly():
    engine.manual_seed(0)
    x = engine.randint(-3, 4, (20000,))
    assert x.dtype is engine.int64
    counts = np.bincount(x.numpy() + 3)
    assert len(counts) == 7 and np.all(np.abs(counts / 20000 - 1 / 7) < 0.015)
    high_only = engine.randint(3, (1000,)).numpy()
    assert set(high_only.tolist()) == {0, 1, 2}
    as_float = engine.randint(0, 5, (2, 2), dtype=engine.float64)
    assert as_float.dtype is engine.float64 and np.all(as_float.numpy() == np.round(as_float.numpy()))
    assert set(engine.randint(2, (100,), dtype=engine.bool).tolist()) == {False, True}


def test_random_shapes_accept_every_size_form():
    for size in [(2, 3), ((2, 3),), ([2, 3],), (engine.Size([2, 3]),)]:
        assert engine.rand(*size).shape == (2, 3)
        assert engine.randn(*size).shape == (2, 3)
    assert engine.rand(()).shape == () and engine.randn(0).shape == (0,)
    assert engine.randint(10, [2, 2]).shape == (2, 2)


def test_factories_make_fresh_writable_leaves():
    for make in (lambda b: b.zeros(2), lambda b: b.full((2,), 1.0), lambda b: b.zeros_like(b.ones(2)),
                 lambda b: b.eye(2), lambda b: b.arange(2.0), lambda b: b.linspace(0, 1, 2), lambda b: b.rand(2)):
        x = make(engine)
        assert x.is_leaf and x.grad_fn is None
        x.zero_()
        assert x.tolist() == make(torch).zero_().tolist()


@pytest.mark.parametrize("call", [
    lambda b: b.zeros(size=(2, 3)), lambda b: b.zeros(2, size=(2, 3)), lambda b: b.ones(2, device="cpu"),
    lambda b: b.full((2,), 1.5, device="cpu", pin_memory=False, requires_grad=None), lambda b: b.eye(2, layout=1),
    lambda b: b.arange(2, 3, device=1.5), lambda b: b.ones(2).new_zeros(2, device=1.5),
    lambda b: b.zeros_like(b.ones(2), foo=1, dtype=1), lambda b: b.linspace(0, 1, steps=b.tensor(3)),
    lambda b: b.arange(b.tensor(3)), lambda b: b.full((2,), b.tensor(2.5)), lambda b: b.ones(2, 3).new_ones(size=(1,)),
])
def test_factory_arguments_as_torch(call):
    # size by keyword, the options torch's signature takes (the CPU device), 0-d tensors as numbers
    assert _outcome(engine, call) == _outcome(torch, call)


@pytest.mark.parametrize("data", [
    [[1.0], [2.0, 3.0]], [[1.0], 2.0], [[[1.0, 2.0]], [[1.0]]], [(1.0, 2.0), [3.0, 4.0]], [[True, 1], [2.5, 0]],
    [[[True]], [[False]]], [[1, 2], [3, 4]], [[1.0, 2.0], [3.0], 4.0], [[[1.0], [2.0]], [[3.0]], 4.0], [[]], [], [[[1.0, -0.0]] * 3] * 2,
], ids=repr)
def test_nested_lists_take_torch_shape_dtype_and_ragged_errors(data):
    """engine.tensor validates nested sequences as torch.tensor does (lists are checked before the number ABCs)."""
    try:
        expected = torch.tensor(data)
    except Exception as error:  # noqa: BLE001  (torch's error is the expectation)
        with pytest.raises(type(error), match=f"^{re.escape(str(error))}$"):
            engine.tensor(data)
        return
    result = engine.tensor(data)
    assert (tuple(result.shape), str(result.dtype)) == (tuple(expected.shape), str(expected.dtype))
    assert np.array_equal(result.numpy(), expected.numpy()) and \
        np.array_equal(np.signbit(result.numpy()), np.signbit(expected.numpy()))


_FILLS = {
    "int64 from a 0-d nan": lambda m: m.zeros(2, dtype=m.int64).fill_(m.tensor(float("nan"))),
    "int64 from a 0-d 1e300": lambda m: m.zeros(2, dtype=m.int64).fill_(m.tensor(1e300, dtype=m.float64)),
    "float32 from a 0-d float64 1e300": lambda m: m.zeros(2).fill_(m.tensor(1e300, dtype=m.float64)),
    "int64 from nan": lambda m: m.zeros(2, dtype=m.int64).fill_(float("nan")),
    "int64 from inf": lambda m: m.zeros(2, dtype=m.int64).fill_(float("inf")),
    "int64 from 2.7": lambda m: m.zeros(2, dtype=m.int64).fill_(-2.7),
    "float32 from 1e300": lambda m: m.zeros(2).fill_(1e300),
    "float32 from inf": lambda m: m.zeros(2).fill_(float("inf")),
    "tensor of 1e300": lambda m: m.tensor([1e300, 1.0]),
}


@pytest.mark.parametrize("case", sorted(_FILLS))
def test_fill_and_tensor_convert_out_of_range_numbers_as_torch(case):
    """Campaign finding (seed 18): fill_ warned "invalid value encountered in cast" (numpy) where
    torch is silent: a 0-d tensor value is cast as copy_ casts (nan into int64 is its minimum);
    a number is converted with torch's overflow checks (nan, inf, 1e300 into int64 and 1e300
    into float32 raise); torch.tensor(1e300) is inf without a warning."""
    outcomes = []
    for m in (torch, engine):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                outcomes.append(_FILLS[case](m).tolist())
            except RuntimeError as error:
                outcomes.append(str(error))
        outcomes.append([str(w.message) for w in caught])
    assert outcomes[2:] == outcomes[:2]


@pytest.mark.parametrize("data", [
    np.float64(0.5), np.float32(0.5), np.int64(3), np.bool_(True), [np.float64(0.5), np.float64(1)],
    [1.0, np.float64(2)], [1, np.float32(2)], [True, np.int64(2)], [[1.5, np.float64(2)], [3, 4]],
    [np.float32(2), 1e40], [np.float64(1e40)],
], ids=repr)
def test_numpy_scalars_keep_their_dtype_and_promote_with_the_others(data):
    """torch infers a numpy scalar's own dtype (infer_scalar_type) and promotes the items of a
    list: torch.tensor(np.float64(0.5)) is float64 (it was float32 in the engine)."""
    theirs, ours = torch.tensor(data), engine.tensor(data)
    assert str(ours.dtype) == str(theirs.dtype) and ours.tolist() == theirs.tolist()


def test_a_0d_tensor_in_a_list_keeps_its_dtype():
    ours = engine.tensor([engine.tensor(1.0, dtype=engine.float64), 2.0])
    assert ours.dtype == engine.float64 and torch.tensor([torch.tensor(1.0, dtype=torch.float64), 2.0]).dtype == torch.float64


@pytest.mark.parametrize("scalar", [np.int32(3), np.float16(1.5)], ids=repr)
def test_a_numpy_scalar_of_a_dtype_the_engine_lacks_is_refused_by_name(scalar):
    with pytest.raises(NotImplementedError, match=f"not numpy {scalar.dtype}"):
        engine.tensor(scalar)
