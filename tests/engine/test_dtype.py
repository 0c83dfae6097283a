"""Type promotion equals torch's, for tensors of every rank class and Python scalars;
numbers out of int64's range are refused as torch refuses them."""
from __future__ import annotations

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
