"""The nodes a backward with create_graph makes are created in torch's order.

A further backward runs later-created nodes first, so the creation order decides the order
in which gradients reach (and are summed into) each input, and so how the sums round. torch's
derivative formulas are C++: GCC evaluates an overloaded operator's right operand first
(`-grad * x` makes x's nodes before NegBackward0), a method's object before its arguments,
and the generated backward functions compute the inputs' gradients in the sorted order of
their argument names (div: other, then self). The engine's Python rules follow that
(engine/_ops.py _neg_grad_times).

For every op-table sample (float64) the engine's graph is compared with torch's where both
make the same kinds of nodes (names that compute alike taken as one: MulBackward1, mul by a
number, is MulBackward0); the op tables's other graphs differ in node kinds (the engine's
ThresholdBackwardBackward0 where torch masks with masked_fill, ...), not compared here.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import engine
from engine import optable
from tests.engine.test_ops_against_torch import RNG_SEED, _flat_outputs, _function, _materialize, _values, samples

# Node kinds that compute the same gradient under two names (torch's C++ formulas multiply by a
# Scalar, MulBackward1, where the engine's Python rules multiply by a wrapped number).
ALIAS = {"MulBackward1": "MulBackward0", "AddBackward1": "AddBackward0", "DivBackward1": "DivBackward0",
         "SubBackward1": "SubBackward0", "RsubBackward1": "SubBackward0", "UnsqueezeBackward0": "ViewBackward0",
         "SqueezeBackward0": "ViewBackward0", "SqueezeBackward1": "ViewBackward0"}


def _sequence(backend, node):
    return node._sequence_nr() if backend is torch else node._seq


def _nodes(root, into):
    stack = [root]
    while stack:
        node = stack.pop()
        if node is None or id(node) in into:
            continue
        into[id(node)] = node
        stack.extend(child for child, _ in node.next_functions)
    return into


def backward_graph_order(backend, op, args, kwargs):
    """Names of the nodes the first backward (create_graph) makes, in creation order; None
    where the sample has nothing to differentiate."""
    rng = np.random.default_rng(RNG_SEED)
    draw = lambda arg: _values(arg.shape, arg.domain, rng)  # noqa: E731
    built = [_materialize(backend, a, "float64", draw) for a in args]
    kwargs = {k: getattr(backend, v) if k == "dtype" else v for k, v in kwargs.items()}
    built_kwargs = {k: _materialize(backend, v, "float64", draw) for k, v in kwargs.items()}
    leaves = [t for t in _flat_outputs([*built, *built_kwargs.values()]) if getattr(t, "requires_grad", False)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outs = [o for o in _flat_outputs(_function(backend, op)(*built, **built_kwargs))
                if getattr(o, "requires_grad", False)]
    if not outs or not leaves:
        return None
    weights = [backend.tensor(np.linspace(-1, 1, o.numel()).reshape(tuple(o.shape)).tolist() if o.ndim else 0.5,
                              dtype=o.dtype, requires_grad=True) for o in outs]
    forward = {}
    for o in outs:
        _nodes(o.grad_fn, forward)
    last = max(_sequence(backend, n) for n in forward.values() if "AccumulateGrad" not in n.name())
    grads = backend.autograd.grad(outs, leaves, grad_outputs=weights, create_graph=True, allow_unused=True)
    made = {}
    for g in grads:
        if g is not None:
            _nodes(g.grad_fn, made)
    order = sorted((_sequence(backend, n), n.name()) for n in made.values()
                   if "AccumulateGrad" not in n.name() and _sequence(backend, n) > last)
    return [ALIAS.get(name, name) for _, name in order]


OPS = [op for op in optable.OPS if "float64" in op.dtypes and op.differentiable]


@pytest.mark.parametrize("op", OPS, ids=[op.name for op in OPS])
def test_backward_nodes_are_made_in_torchs_order(op):
    compared = 0
    for args, kwargs in samples(op):
        try:
            want = backward_graph_order(torch, op, args, kwargs)
        except Exception:       # an error case: the op-table tests compare those
            continue
        got = backward_graph_order(engine, op, args, kwargs)
        if want is None or sorted(want) != sorted(got or []):
            continue
        compared += 1
        assert got == want, f"{op.name}{args}: engine {got}, torch {want}"


def test_addcdiv_second_gradient_cancels_as_in_torch():
    """Campaign seed 16: addcdiv(x0, x1, x1, value=2)'s gradients, summed and differentiated again,
    are 0 in torch; the engine left 1.5e-5 (an ulp of 186) when -grad's node came first."""
    values = [1.8563605546951294, 1.1361223459243774, 0.10361146181821823]
    results = []
    for backend in (engine, torch):
        x0 = backend.tensor(0.0, requires_grad=True)
        x1 = backend.tensor(values, requires_grad=True)
        grads = backend.autograd.grad(backend.addcdiv(x0, x1, x1, value=2).sum(), [x0, x1], create_graph=True)
        sum(g.sum() for g in grads).backward()
        results.append(x1.grad.numpy())
    np.testing.assert_array_equal(results[0], results[1])
    assert results[0][2] == 0


@pytest.mark.parametrize("value", [0.3, -1.7, 3.0])
def test_number_over_tensor_in_a_formula_rounds_once(value):
    """torch's C++ `value / tensor2` (addcdiv's tensor1 gradient) fills a tensor and divides:
    DivBackward0, one rounding; Python's `value / t` is reciprocal(t) * value, two."""
    t2 = np.random.default_rng(5).uniform(0.3, 3.0, 64).astype(np.float32)
    results = []
    for backend in (engine, torch):
        x = backend.zeros(64, requires_grad=True)
        t1 = backend.ones(64, requires_grad=True)
        d = backend.tensor(t2, requires_grad=True)
        grad, = backend.autograd.grad(backend.addcdiv(x, t1, d, value=value).sum(), [t1], create_graph=True)
        results.append((grad.detach().numpy(), grad.grad_fn.next_functions[1][0].name()))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    assert results[0][1] == results[1][1] == "DivBackward0"


def _made_nodes(backend, fn, values):
    x = backend.tensor(values, dtype=backend.float64, requires_grad=True)
    y = backend.tensor([[0.5, 0.0, -2.0], [0.0, 0.0, 1.0]], dtype=backend.float64, requires_grad=True)
    out = fn(backend, x, y)
    weight = backend.tensor(np.linspace(-1, 1, out.numel()).reshape(tuple(out.shape)).tolist(), dtype=out.dtype,
                            requires_grad=True)
    last = out.grad_fn._sequence_nr() if backend is torch else out.grad_fn._seq
    grads = backend.autograd.grad(out, [x, y], weight, create_graph=True, allow_unused=True)
    made = {}
    for g in grads:
        if g is not None:
            _nodes(g.grad_fn, made)
    return [ALIAS.get(n.name(), n.name()) for s, n in sorted((_sequence(backend, n), n) for n in made.values()
                                                             if "AccumulateGrad" not in n.name())
            if s > last]


# Formulas of torch's that zero with masked_fill_ (std, xlogy, the p-norms, maximum/minimum),
# each node kind and its place in torch's order.
MASKED_FILL_FORMULAS = {
    "std(dim)": lambda B, x, y: x.std(1),
    "std()": lambda B, x, y: x.std(),
    "xlogy": lambda B, x, y: B.xlogy(x, y.abs() + 0.5),
    "xlogy(number other)": lambda B, x, y: B.xlogy(x, -1.5),
    "maximum": lambda B, x, y: B.maximum(x, y),
    "minimum": lambda B, x, y: B.minimum(x, y),
    **{f"norm(p={p})": (lambda p: lambda B, x, y: B.norm(x, p, dim=1))(p)
       for p in (2.0, 3.0, 1.5, 0.5)},
}


@pytest.mark.parametrize("case", MASKED_FILL_FORMULAS)
def test_formulas_that_zero_by_masked_fill_make_torchs_nodes_in_torchs_order(case):
    values = [[1.0, 0.0, -2.0], [0.0, 0.0, 0.0]]
    want = _made_nodes(torch, MASKED_FILL_FORMULAS[case], values)
    assert "MaskedFillBackward0" in want
    assert _made_nodes(engine, MASKED_FILL_FORMULAS[case], values) == want
