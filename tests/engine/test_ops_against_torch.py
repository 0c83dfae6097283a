"""Per-op conformance from the op table: values, gradients and second gradients equal torch's.

One parametrized test over op x dtype x sample (the idea of PyTorch's OpInfo).
Samples come from the op's table entry (`Op.samples`, with `T` marking tensor
arguments) or, for the kinds the fuzzer draws, from the op's kind and domain.
For each sample, both backends compute the op, a weighted sum of its floating
outputs, the gradients of that sum with create_graph, the gradients of the
sum of those gradients (again with create_graph), and the third-order
gradients from those; every piece must match torch within
`torch.testing.assert_close` tolerances, along with dtypes and node names.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import engine
from engine import optable
from engine.optable import T
from fuzz.compare import ONCE_PER_PROCESS_WARNINGS
from oracle import normalize_message

RNG_SEED = 1234


def _values(shape, domain, rng):
    x = np.asarray(rng.uniform(-2.0, 2.0, size=shape))
    if domain == optable.POSITIVE:
        x = np.abs(x) + 0.25
    elif domain == optable.NONZERO:
        x = np.where(np.abs(x) < 0.25, 0.5, x)
    return np.asarray(x)


def _kind_samples(op):
    """Default samples for the kinds the fuzzer draws."""
    dom = lambda i: op.domain[i] if i < len(op.domain) else optable.REAL  # noqa: E731
    if op.kind == optable.UNARY:
        return [((T(s, domain=dom(0)),), {}) for s in [(), (3,), (2, 3), (2, 1, 3)]]
    if op.kind == optable.BINARY:
        pairs = [((3,), (3,)), ((2, 3), (3,)), ((2, 1), (1, 3)), ((), (2, 2)), ((2, 1, 3), (4, 1))]
        out = [((T(a, domain=dom(0)), T(b, domain=dom(1))), {}) for a, b in pairs]
        out.append(((T((3,), domain=dom(0)), 2), {}))
        out.append(((1.5 if dom(0) == optable.POSITIVE else -1.5, T((2, 2), domain=dom(1))), {}))
        return out
    if op.kind == optable.REDUCTION:
        x = T((2, 3, 4), domain=dom(0))
        kws = [{}, {"dim": 0}, {"dim": -1, "keepdim": True}, {"dim": (0, 2)}, {"dim": [1]}]
        return [((x,), kw) for kw in kws] + [((T((), domain=dom(0)),), {})]
    if op.kind == optable.MATMUL:
        shapes = [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 2)), ((2, 3), (3, 4)), ((2, 2, 3), (3, 4)),
                  ((2, 3), (4, 3, 2)), ((2, 2, 3), (3,)), ((3,), (2, 3, 2)), ((1, 2, 3), (4, 3, 2)),
                  ((4, 2, 3), (1, 3, 2)), ((2, 1, 2, 3), (3, 3, 2))]
        return [((T(a), T(b)), {}) for a, b in shapes]
    return []


def samples(op):
    return list(op.samples) or _kind_samples(op)


CASES = [pytest.param(op, dt, i, id=f"{op.name}-{dt}-{i}")
         for op in optable.OPS for dt in op.dtypes for i in range(len(samples(op)))]


def _function(backend, op):
    namespace, _, name = op.name.rpartition(".")
    module = backend
    for part in filter(None, namespace.split(".")):
        module = getattr(module, part)
    if optable.FUNCTION in op.forms:
        return getattr(module, name)
    if optable.PROPERTY in op.forms:
        return lambda self: getattr(self, name)
    return lambda self, *args, **kwargs: getattr(self, name)(*args, **kwargs)


# `T(..., dtype=NO_GRAD)`: a tensor of the dtype under test that does not require grad
# (loss weights, which torch refuses to differentiate, must share the input's dtype).
NO_GRAD = "no_grad"


def _materialize(backend, arg, dtype_name, rng_values):
    """A backend tensor for a `T` (drawn values are shared by both backends through `rng_values`).

    Lists and tuples (of `T`: cat and stack operands, einsum's operand list, index
    expressions such as `(slice(None), T(...))`) are materialized item by item."""
    if isinstance(arg, (list, tuple)):
        return type(arg)(_materialize(backend, a, dtype_name, rng_values) for a in arg)
    if not isinstance(arg, T):
        return arg
    dt_name = dtype_name if arg.dtype in (None, NO_GRAD) else arg.dtype
    data = np.asarray(arg.values) if arg.values is not None else rng_values(arg)
    dt = getattr(backend, dt_name)
    grad = dt_name.startswith("float") and arg.dtype is None
    return backend.tensor(data.tolist() if data.ndim else data.item(), dtype=dt, requires_grad=grad)


def _flat_outputs(out):
    if isinstance(out, (tuple, list)):
        return [t for item in out for t in _flat_outputs(item)]
    return [out]


def _numpy(t):
    """A gradient's values; torch's ZeroTensor gradients (e.g. abs'' = 0) convert with force=True only."""
    return t.numpy(force=True) if isinstance(t, torch.Tensor) else t.detach().numpy()


def _run(backend, op, dtype_name, args, kwargs, inplace=None, function=None):
    """Forward, first and second order gradients of one sample on one backend, as numpy.

    With `inplace` (a method name such as "add_"), the method is applied to a
    non-leaf copy of the first argument (`x * 1`), as in-place ops on leaves
    that require grad are refused. `function` replaces the op (a reference
    decomposition).
    """
    rng = np.random.default_rng(RNG_SEED)
    draw = lambda arg: _values(arg.shape, arg.domain, rng)  # noqa: E731
    built = [_materialize(backend, a, dtype_name, draw) for a in args]
    # Samples name dtype keywords by string (factories: `dtype="int64"`).
    kwargs = {k: getattr(backend, v) if k == "dtype" else v for k, v in kwargs.items()}
    built_kwargs = {k: _materialize(backend, v, dtype_name, draw) for k, v in kwargs.items()}
    leaves = [t for t in _flat_outputs([*built, *built_kwargs.values()])
              if hasattr(t, "requires_grad") and t.requires_grad]
    if inplace or op.kind == optable.INPLACE:
        target = built[0] * 1 if built[0].requires_grad else built[0].clone()
        outs = _flat_outputs(getattr(target, inplace or op.name)(*built[1:], **built_kwargs))
        assert outs[0] is target, "an in-place method returns the tensor it modified"
        outs = [target]
    else:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            outs = _flat_outputs((function or _function(backend, op))(*built, **built_kwargs))
        # NOTE: warnings torch raises once per process (x.T on 3-d...) depend on what ran first;
        # the fuzzer's comparator leaves the same list out.
        warned = [(w.category.__name__, normalize_message(str(w.message))) for w in caught
                  if not str(w.message).startswith(ONCE_PER_PROCESS_WARNINGS)]
    result = {"values": [o.detach().numpy() for o in outs], "dtypes": [str(o.dtype) for o in outs],
              "warnings": warned if not inplace and op.kind != optable.INPLACE else [],
              "requires_grad": [o.requires_grad for o in outs],
              "grad_fn": [o.grad_fn.name() if o.grad_fn is not None else None for o in outs]}
    graded = [o for o in outs if o.requires_grad]
    if not graded or not leaves:
        return result
    total = sum((o * backend.tensor(np.linspace(-1, 1, o.numel()).reshape(tuple(o.shape)).tolist()
                                    if o.ndim else 0.5, dtype=o.dtype)).sum() for o in graded)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Using backward\\(\\) with create_graph=True")
        total.backward(create_graph=True)
    grads = [t.grad for t in leaves]
    result["grads"] = [None if g is None else g.detach().numpy() for g in grads]
    for t in leaves:
        t.grad = None
    second = [g for g in grads if g is not None and g.requires_grad]
    if not second:
        return result
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Using backward\\(\\) with create_graph=True")
        sum(g.sum() for g in second).backward(create_graph=True)
    seconds = [t.grad for t in leaves]
    result["second"] = [None if g is None else _numpy(g) for g in seconds]
    for t in leaves:
        t.grad = None
    third = [g for g in seconds if g is not None and g.requires_grad]
    if third:
        sum(g.sum() for g in third).backward()
        result["third"] = [None if t.grad is None else _numpy(t.grad) for t in leaves]
    return result


def _close(got, want, what):
    if want is None or got is None:
        # A missing gradient on one side is fine only where the other is all zeros.
        present = want if got is None else got
        assert present is None or not np.any(present), f"{what}: None on one side, nonzero on the other"
        return
    torch.testing.assert_close(torch.from_numpy(np.array(got)), torch.from_numpy(np.array(want)),
                               equal_nan=True, msg=lambda m: f"{what}: {m}")


def _fits_in_place(op, args, kwargs, dtype_name):
    """A sample an in-place variant can run: torch's out-of-place result has the first
    argument's shape and a dtype that casts into it."""
    if not args or not isinstance(args[0], T) or (args[0].dtype not in (None, NO_GRAD)):
        return False
    try:
        with torch.no_grad():
            rng = np.random.default_rng(RNG_SEED)
            built = [_materialize(torch, a, dtype_name, lambda arg: _values(arg.shape, arg.domain, rng)) for a in args]
            kw = {k: getattr(torch, v) if k == "dtype" else _materialize(torch, v, dtype_name, None)
                  for k, v in kwargs.items()}
            out = _function(torch, op)(*built, **kw)
    except Exception:   # the sample is an error case: nothing to do in place
        return False
    return isinstance(out, torch.Tensor) and out.shape == built[0].shape and \
        torch.can_cast(out.dtype, built[0].dtype)


INPLACE_CASES = [pytest.param(op, dt, i, id=f"{op.inplace}-{dt}-{i}")
                 for op in optable.OPS if op.inplace for dt in op.dtypes
                 for i, (args, kwargs) in enumerate(samples(op)) if _fits_in_place(op, args, kwargs, dt)]


@pytest.mark.parametrize("op, dtype_name, index", CASES)
def test_op_matches_torch(op, dtype_name, index):
    _compare(op, dtype_name, index, None)


@pytest.mark.parametrize("op, dtype_name, index", INPLACE_CASES)
def test_inplace_variant_matches_torch(op, dtype_name, index):
    _compare(op, dtype_name, index, op.inplace)


def _layer_norm_from_primitives(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    dims = tuple(range(-len(normalized_shape), 0))
    centered = x - x.mean(dims, keepdim=True)
    y = centered * ((centered * centered).mean(dims, keepdim=True) + eps).rsqrt()
    y = y if weight is None else y * weight
    return y if bias is None else y + bias


# NOTE: torch 2.13's fused layer_norm gives wrong third-order gradients: its double
# backward treats the saved mean and invstd as constants (pytorch/pytorch#175754, fixed
# upstream by raising an error). The engine's are right; the mathematics they are held
# to is torch differentiating the same function written with primitive ops.
THIRD_ORDER_REFERENCE = {"nn.functional.layer_norm": _layer_norm_from_primitives}


def _compare(op, dtype_name, index, inplace):
    args, kwargs = samples(op)[index]
    got = _run(engine, op, dtype_name, args, kwargs, inplace)
    want = _run(torch, op, dtype_name, args, kwargs, inplace)
    if op.name in THIRD_ORDER_REFERENCE and not inplace and "third" in want:
        want["third"] = _run(torch, op, dtype_name, args, kwargs, function=THIRD_ORDER_REFERENCE[op.name])["third"]
    assert got["dtypes"] == want["dtypes"], "dtype"
    assert got["warnings"] == want["warnings"], "warnings (category, message) of the call"
    assert got["requires_grad"] == want["requires_grad"], "requires_grad"
    assert got["grad_fn"] == want["grad_fn"], "grad_fn name"
    for name in filter(None, got["grad_fn"] if not inplace else ()):   # in-place: torch's names checked above
        assert name in op.grad_fn, f"{name} is not listed in the op table entry of {op.name}"
    for g, w in zip(got["values"], want["values"]):
        _close(g, w, "forward")
    assert ("grads" in got) == ("grads" in want)
    for g, w in zip(got.get("grads", []), want.get("grads", [])):
        _close(g, w, "gradient")
    for order in ("second", "third"):
        for g, w in zip(got.get(order, []), want.get(order, [])):
            _close(g, w, f"{order}-order gradient")
        if order in want and order not in got:
            assert not any(np.any(w) for w in want[order] if w is not None), f"{order}-order gradient"


def test_torch_layer_norm_third_order_still_differs_from_the_mathematics():
    """Keeps THIRD_ORDER_REFERENCE honest: when torch fixes #175754, this fails and the entry goes."""
    op = optable.BY_NAME["nn.functional.layer_norm"]
    args, kwargs = op.samples[1]     # with weight and bias: torch's third order is visibly wrong there
    native = _run(torch, op, "float64", args, kwargs)["third"][0]
    reference = _run(torch, op, "float64", args, kwargs, function=_layer_norm_from_primitives)["third"][0]
    assert not np.allclose(native, reference, atol=1e-6)
    np.testing.assert_allclose(_run(engine, op, "float64", args, kwargs)["third"][0], reference, atol=1e-9)


# ---- float64 gradients against central finite differences --------------------------------

def _drawn_only(args, kwargs) -> bool:
    """Some argument is a tensor of the dtype under test (so it requires grad), and none of
    those has literal values: such samples sit at kinks and ties on purpose, where finite
    differences say nothing."""
    tensors = [t for t in _flat_outputs([*args, *kwargs.values()]) if isinstance(t, T) and t.dtype is None]
    return bool(tensors) and all(t.values is None for t in tensors)


FD_CASES = [pytest.param(op, i, id=f"{op.name}-{i}") for op in optable.OPS
            if op.differentiable and op.kind != optable.INPLACE and "float64" in op.dtypes
            for i, (args, kwargs) in enumerate(samples(op)) if _drawn_only(args, kwargs)]


@pytest.mark.filterwarnings("ignore:.*degrees of freedom is <= 0")   # compared with torch's above
@pytest.mark.parametrize("op, index", FD_CASES)
def test_float64_gradient_matches_finite_differences(op, index):
    """d(weighted sum of outputs)/d(input) from backward equals the central difference, h = 1e-6."""
    args, kwargs = samples(op)[index]
    rng = np.random.default_rng(RNG_SEED)
    draw = lambda arg: _values(arg.shape, arg.domain, rng)  # noqa: E731
    built = [_materialize(engine, a, "float64", draw) for a in args]
    built_kwargs = {k: getattr(engine, v) if k == "dtype" else _materialize(engine, v, "float64", draw)
                    for k, v in kwargs.items()}
    leaves = [t for t in _flat_outputs([*built, *built_kwargs.values()]) if getattr(t, "requires_grad", False)]
    function = _function(engine, op)

    def loss():
        outs = [o for o in _flat_outputs(function(*built, **built_kwargs)) if o.dtype == engine.float64]
        return sum((o * engine.tensor(np.linspace(-1, 1, o.numel()).reshape(tuple(o.shape)).tolist()
                                      if o.ndim else 0.5, dtype=o.dtype)).sum() for o in outs)

    total = loss()
    # NOTE: runtime skips, each naming what it saw: which samples these are follows from the
    # op's output (e.g. `to(float32)`, `abs` of an int64 sample, `var` with correction >= n).
    if not leaves or not getattr(total, "requires_grad", False):
        outs = _flat_outputs(function(*built, **built_kwargs))
        pytest.skip(f"{op.name} sample {index}: {len(leaves)} float64 inputs requiring grad, outputs "
                    f"{[str(o.dtype) for o in outs]}: no float64 output depends on a float64 input")
    if not np.isfinite(float(total)):
        pytest.skip(f"{op.name} sample {index}: the weighted output sum is {float(total)}, "
                    "not a point where finite differences are defined")
    total.backward()
    step = 1e-6
    with engine.no_grad():
        for leaf in leaves:
            values = leaf.detach().numpy()      # shares the leaf's memory, as in torch
            numeric = np.zeros(values.shape)
            for i in np.ndindex(values.shape):
                kept = values[i]
                values[i] = kept + step
                up = float(loss())
                values[i] = kept - step
                down = float(loss())
                values[i] = kept
                numeric[i] = (up - down) / (2 * step)
            analytic = np.zeros(values.shape) if leaf.grad is None else leaf.grad.numpy()
            np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-6,
                                       err_msg=f"{op.name}: gradient vs central differences")
