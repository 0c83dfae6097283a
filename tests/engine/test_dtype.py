"""Type promotion equals torch's, for tensors of every rank class and Python scalars;
numbers out of int64's range are refused as torch refuses them."""
from __future__ import annotations

import warnings

import hypothesis.strategies as st
import numpy as np
import pytest
import torch
from hypothesis import given

import engine

DTYPES = ["bool", "int64", "float32", "float64"]
SCALARS = [True, 2, 2.5]

operand = st.one_of(
    st.tuples(st.just("tensor"), st.sampled_from(DTYPES), st.booleans()),   # (kind, dtype, zero-dim?)
    st.tuples(st.just("scalar"), st.sampled_from(range(len(SCALARS))), st.just(False)),
)


def _build(backend, spec):
    kind, what, zero_dim = spec
    if kind == "scalar":
        return SCALARS[what]
    dt = getattr(backend, what) if what != "bool" else backend.bool
    data = np.ones(() if zero_dim else (2,), dtype=np.float64)
    return backend.tensor(data.tolist(), dtype=dt)


@given(operand, operand)
def test_result_type_matches_torch(first, second):
    if first[0] == second[0] == "scalar":
        return
    specs = (first, second)
    want = torch.result_type(*[_build(torch, s) for s in specs])
    built = [_build(engine, s) for s in specs]
    got = engine._dtype.result_type([t for t in built if isinstance(t, engine.Tensor)],
                                    [s for s in built if not isinstance(s, engine.Tensor)])
    assert repr(got) == repr(want)


def test_binary_op_results_follow_promotion():
    pairs = [(engine.tensor([1, 2]), 2.5, "torch.float32"),
             (engine.tensor([True]), 2, "torch.int64"),
             (engine.tensor([1.0], dtype=engine.float64), engine.tensor(2.0), "torch.float64"),
             (engine.tensor([1, 2]), engine.tensor(2.0, dtype=engine.float64), "torch.float64")]
    for a, b, want in pairs:
        assert repr((a * b).dtype) == want


@pytest.mark.parametrize("value", [[float("inf")], [float("nan")], [1e30], float("-inf"), [1.0, 2.0 ** 70]])
def test_an_int64_tensor_of_a_number_out_of_range_is_refused_as_torch(value):
    outcomes = []
    for backend in (engine, torch):
        with pytest.raises(Exception) as raised:
            backend.tensor(value, dtype=backend.int64)
        outcomes.append((raised.type, str(raised.value)))
    assert outcomes[0] == outcomes[1]


# Arithmetic of a tensor with a Python number: the engine's fast path keeps the number as a
# wrapped number (no tensor); everything observable must stay torch's.
NUMBER_OPERANDS = [0.9, -0.0, 3, 0, True, 1e300, float("nan"), float("inf"), 2 ** 40]
NUMBER_OPS = {
    "mul": lambda x, s: x * s, "rmul": lambda x, s: s * x, "add": lambda x, s: x + s,
    "radd": lambda x, s: s + x, "sub": lambda x, s: x - s, "rsub": lambda x, s: s - x,
    "div": lambda x, s: x / s, "rdiv": lambda x, s: s / x, "add_alpha": lambda x, s: x.add(s, alpha=2),
    "sub_alpha": lambda x, s: x.sub(s, alpha=0.5), "div_none": lambda x, s: x.div(s, rounding_mode=None),
}


def _number_op_outcome(backend, dtype: str, op: str, number):
    x = backend.tensor([0.25, -1.5, 3.0], dtype=getattr(backend, dtype), requires_grad=dtype.startswith("float"))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            y = NUMBER_OPS[op](x, number)
    except Exception as e:   # noqa: BLE001 - the error itself is compared
        return ("error", type(e).__name__, str(e))
    seen = [repr(y.dtype), np.asarray(y.detach().numpy(), np.float64).tolist(), [str(w.message) for w in caught]]
    if y.grad_fn is not None:
        seen.append([(type(n).__name__ if n is not None else None, i) for n, i in y.grad_fn.next_functions])
        seen.append(y.grad_fn.name())
        (gx,) = backend.autograd.grad(y.sum(), x, create_graph=True)
        seen.append(gx.detach().numpy().tolist())
        if gx.requires_grad:
            (ggx,) = backend.autograd.grad((gx * gx).sum(), x)
            seen += [gx.grad_fn.name(), ggx.numpy().tolist()]
    return seen


@pytest.mark.parametrize("op", sorted(NUMBER_OPS))
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "bool"])
def test_arithmetic_with_a_python_number_is_torchs(dtype, op):
    for number in NUMBER_OPERANDS:
        got, want = (_number_op_outcome(b, dtype, op, number) for b in (engine, torch))
        assert repr(got) == repr(want), number   # repr: NaN equals NaN, -0.0 differs from 0.0


def test_a_saved_python_number_is_freed_with_its_graph_as_torch():
    for backend in (engine, torch):
        x = backend.tensor([1.0, 2.0], requires_grad=True)
        y = x * 0.5
        y.sum().backward()
        with pytest.raises(RuntimeError, match="backward through the graph a second time"):
            y.sum().backward()
        z = x + 0.5       # AddBackward0 saves nothing: a second backward runs
        z.sum().backward()
        z.sum().backward()
        assert x.grad.tolist() == [2.5, 2.5]
