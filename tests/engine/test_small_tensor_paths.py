"""The small-tensor fast paths (issue 7, W1) give what the general paths they replace give, bit for bit."""
import warnings

import numpy as np
import pytest

from engine import _ops

_UFUNCS = [np.exp, np.log, np.tanh, np.expm1, np.log2, np.log10, np.log1p, np.sin, np.cos, np.tan, np.arcsin,
           np.arccos, np.arctan, np.sinh, np.cosh]


def _float32_inputs():
    rng = np.random.default_rng(7)
    for scale in (1e-30, 1e-3, 1, 10, 100, 1e30):
        yield (rng.standard_normal(2048) * scale).astype(np.float32)
    yield rng.integers(0, 2**32, 2048, dtype=np.uint64).astype(np.uint32).view(np.float32)   # every bit pattern kind
    yield np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 3.4e38, 88.7, 89.5, -104, 1, -1], np.float32)
    base = rng.standard_normal((5, 7)).astype(np.float32)
    yield from (base.T, base[::2, 1::3], np.broadcast_to(base[:, :1], (5, 6)), base[0, 0].reshape(()))


@pytest.mark.parametrize("fn", _UFUNCS, ids=lambda f: f.__name__)
def test_via_float64_of_a_ufunc_is_the_float64_copy_route_bit_for_bit_and_laid_out_alike(fn):
    with np.errstate(all="ignore"):
        for x in _float32_inputs():
            fast = _ops._via_float64(fn, x)
            reference = fn(_ops._float64_copy(x)).astype(np.float32)
            assert fast.dtype == np.float32 and fast.shape == reference.shape and fast.strides == reference.strides
            np.testing.assert_array_equal(fast.view(np.int32), reference.view(np.int32))


_ONE_ELEMENT = {"0-d": np.array(3, np.float32), "1x1": np.full((1, 1), 2.0), "1": np.ones((1,), np.float32)}
_SHAPES = [(), (3,), (2, 3), (0,), (2, 0, 1)]
_EXPANSIONS = [(name, shape) for name, x in _ONE_ELEMENT.items() for shape in _SHAPES if x.ndim <= len(shape)]


@pytest.mark.parametrize("name, shape", _EXPANSIONS, ids=[f"{name}-to-{shape}" for name, shape in _EXPANSIONS])
def test_expanding_a_one_element_gradient_is_broadcast_to(name, shape):
    x = _ONE_ELEMENT[name]
    fast, reference = _ops.v_expand(x, shape), np.broadcast_to(x, shape)
    assert fast.shape == reference.shape and fast.strides == reference.strides and fast.dtype == reference.dtype
    assert not fast.flags.writeable and np.shares_memory(fast, x) == (fast.size > 0)
    np.testing.assert_array_equal(fast, reference)


def test_one_minus_square_of_a_few_elements_on_python_floats_is_the_float64_route_bit_for_bit():
    for x in _float32_inputs():
        for y in (x.reshape(-1)[i:i + n] for n in (1, 5, _ops._PYTHON_FLOATS_MAX) for i in range(0, 64, n)):
            with warnings.catch_warnings(), _ops._errstate():   # (as in a backward: overflow is silent)
                warnings.simplefilter("error")
                fast = _ops._one_minus_square(y)
            with np.errstate(all="ignore"):
                reference = (1 - np.square(y.astype(np.float64))).astype(np.float32)
            assert fast.dtype == np.float32 and fast.shape == y.shape
            np.testing.assert_array_equal(fast.view(np.int32), reference.view(np.int32))


# The backward of a chain of single-consumer nodes runs without the general loop's counting
# (`_autograd._run_chain`) and hands what is below a branch, a hook, a retained gradient, an
# undefined gradient or a failed saved-tensor check to the general loop: each against torch.

def _chain_program(lib, case: str, log: list):
    x = lib.tensor([0.25, -0.5, 1.5, 2.0], requires_grad=True)
    w = lib.tensor([1.5], requires_grad=True)
    y = (x * 0.9 + 0.1).tanh()
    if case == "hook":
        y.register_hook(lambda g: log.append(("y", g.tolist())) or g * 2)
    if case == "retain":
        y.retain_grad()
    if case == "branch":          # a diamond below the chain: y reaches z twice
        y = y.exp() * y.sin()
    if case == "broadcast":       # the gradient is summed to w's shape on the way
        y = y * w
    if case == "modified":
        z = y.exp()
        z.add_(1)                 # ExpBackward0 saved its result: backward must refuse
        y = z
    if case == "leaf-hook":
        x.register_hook(lambda g: log.append(("x", g.tolist())))
    out = (y.exp().sin() * 2).sum()
    out.backward()
    return x.grad, w.grad, (y.grad if case == "retain" else None)


@pytest.mark.parametrize("case", ["plain", "hook", "retain", "branch", "broadcast", "modified", "leaf-hook"])
def test_chain_backward_matches_torch(case):
    import torch

    import engine
    outcomes = []
    for lib in (torch, engine):
        log = []
        try:
            grads = _chain_program(lib, case, log)
        except RuntimeError as error:
            outcomes.append(("error", str(error)))
            continue
        outcomes.append([None if g is None else g.tolist() for g in grads] + [repr(log)])
    assert outcomes[0] == outcomes[1]
    assert (outcomes[0][0] == "error") == (case == "modified")


def test_a_second_backward_through_a_freed_chain_raises_as_torch():
    import torch

    import engine
    messages = []
    for lib in (torch, engine):
        x = lib.tensor([0.5, 1.0], requires_grad=True)
        out = x.exp().sin().sum()
        out.backward()
        with pytest.raises(RuntimeError) as error:
            out.backward()
        messages.append(str(error.value))
    assert messages[0] == messages[1]


def test_a_backward_from_a_leaf_accumulates_its_gradient_as_torch():
    import torch

    import engine
    grads = []
    for lib in (torch, engine):
        x = lib.tensor([0.5, 1.0], requires_grad=True)
        x.backward(lib.tensor([2.0, 3.0]))
        x.backward(lib.tensor([1.0, 1.0]))
        grads.append(x.grad.tolist())
    assert grads[0] == grads[1] == [3.0, 4.0]
