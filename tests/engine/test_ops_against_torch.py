"""Per-op conformance from the op table: values, gradients and second gradients equal torch's.

One parametrized test over op x dtype x sample (the idea of PyTorch's OpInfo);
the samples come from the op's kind and domain in `engine.optable`.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import engine
from engine import optable

DTYPES = ("float32", "float64")
RNG_SEED = 1234


def _values(shape, domain, rng):
    x = np.asarray(rng.uniform(-2.0, 2.0, size=shape))
    if domain == optable.POSITIVE:
        x = np.abs(x) + 0.25
    elif domain == optable.NONZERO:
        x = np.where(np.abs(x) < 0.25, 0.5, x)
    return np.asarray(x)


def _samples(op):
    """(args, kwargs) samples for an op: numpy arrays stand for tensors, numbers stay numbers."""
    rng = np.random.default_rng(RNG_SEED)
    dom = lambda i: op.domain[i] if i < len(op.domain) else optable.REAL  # noqa: E731
    if op.kind == optable.UNARY:
        return [((_values(s, dom(0), rng),), {}) for s in [(), (3,), (2, 3), (2, 1, 3)]]
    if op.kind == optable.BINARY:
        pairs = [((3,), (3,)), ((2, 3), (3,)), ((2, 1), (1, 3)), ((), (2, 2)), ((2, 1, 3), (4, 1))]
        out = [((_values(a, dom(0), rng), _values(b, dom(1), rng)), {}) for a, b in pairs]
        out.append(((_values((3,), dom(0), rng), 2), {}))
        out.append(((1.5 if dom(0) == optable.POSITIVE else -1.5, _values((2, 2), dom(1), rng)), {}))
        return out
    if op.kind == optable.REDUCTION:
        x = _values((2, 3, 4), dom(0), rng)
        kws = [{}, {"dim": 0}, {"dim": -1, "keepdim": True}, {"dim": (0, 2)}, {"dim": [1]}]
        return [((x,), kw) for kw in kws] + [((_values((), dom(0), rng),), {})]
    if op.kind == optable.MATMUL:
        shapes = [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 2)), ((2, 3), (3, 4)), ((2, 2, 3), (3, 4)),
                  ((2, 3), (4, 3, 2)), ((2, 2, 3), (3,)), ((3,), (2, 3, 2)), ((1, 2, 3), (4, 3, 2)),
                  ((4, 2, 3), (1, 3, 2)), ((2, 1, 2, 3), (3, 3, 2))]
        return [((rng.uniform(-2, 2, a), rng.uniform(-2, 2, b)), {}) for a, b in shapes]
    raise AssertionError(f"no samples for kind {op.kind}")


CASES = [pytest.param(op, dt, i, id=f"{op.name}-{dt}-{i}")
         for op in optable.OPS for dt in DTYPES for i in range(len(_samples(op)))]


def _run(backend, op, dtype_name, args, kwargs):
    """Forward, first and second order gradients of an op on one backend, as numpy."""
    dt = getattr(backend, dtype_name)
    leaves = [backend.tensor(a, dtype=dt, requires_grad=True) if isinstance(a, np.ndarray) else a for a in args]
    out = getattr(backend, op.name)(*leaves, **kwargs)
    tensors = [t for t in leaves if not isinstance(t, (int, float))]
    weights = backend.tensor(np.linspace(-1, 1, max(out.numel(), 1)).reshape(tuple(out.shape)), dtype=dt)
    grads = backend.autograd.grad((out * weights).sum(), tensors, create_graph=True) \
        if hasattr(backend, "autograd") else _grads_via_backward(backend, out, weights, tensors)
    second = _second_order(backend, grads, tensors)
    return (out.detach().numpy(), str(out.dtype), out.grad_fn.name(),
            [g.detach().numpy() for g in grads], second)


def _grads_via_backward(backend, out, weights, tensors):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Using backward\\(\\) with create_graph=True")
        (out * weights).sum().backward(create_graph=True)
    grads = [t.grad for t in tensors]
    for t in tensors:
        t.grad = None
    return grads


def _second_order(backend, grads, tensors):
    total = sum(g.sum() for g in grads if g.requires_grad)
    if isinstance(total, int):   # every gradient is constant in the inputs
        return [None for _ in tensors]
    if hasattr(backend, "autograd"):
        seconds = backend.autograd.grad(total, tensors, allow_unused=True)
    else:
        total.backward()
        seconds = [t.grad for t in tensors]
    return [None if s is None else s.detach().numpy() for s in seconds]


@pytest.mark.parametrize("op, dtype_name, index", CASES)
def test_op_matches_torch(op, dtype_name, index):
    args, kwargs = _samples(op)[index]
    got = _run(engine, op, dtype_name, args, kwargs)
    want = _run(torch, op, dtype_name, args, kwargs)
    assert got[1] == want[1], "dtype"
    assert got[2] == want[2], "grad_fn name"
    assert got[2] in op.grad_fn, f"{got[2]} is not listed in the op table entry of {op.name}"
    torch.testing.assert_close(torch.from_numpy(got[0]), torch.from_numpy(want[0]), msg="forward")
    for g, w in zip(got[3], want[3]):
        torch.testing.assert_close(torch.from_numpy(g), torch.from_numpy(w), msg="gradient")
    for g, w in zip(got[4], want[4]):
        if w is None:
            assert g is None or not np.any(g), "second-order gradient where torch has none"
        else:
            # A None on the engine side means an all-zero second derivative.
            torch.testing.assert_close(torch.from_numpy(g if g is not None else np.zeros_like(w)),
                                       torch.from_numpy(w), msg="second-order gradient")
