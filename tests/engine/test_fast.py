"""The fast Tensor methods of engine/_fast.py (issue 7, W1) make what the general paths they replace make:
the same values bit for bit and layout, the same node (class, edges, metadata, saved tensors, versions), the
same gradients and warnings, and the general path's behaviour for every call outside their common case."""
import warnings

import numpy as np
import pytest

import engine as torch
from engine._tensor import Tensor

_UNARY = ["exp", "log", "tanh", "neg", "sin", "cos", "tan", "expm1", "log2", "log10", "log1p", "sqrt", "asin",
          "acos", "atan", "sigmoid"]
_OPERATORS = ["__mul__", "__rmul__", "__add__", "__radd__"]
_VALUES = np.array([0.3, -0.7, 0.0, -0.0, 2.5, 100.0, -100.0, np.inf, -np.inf, np.nan, 1e-42, 0.999], np.float64)


def _inputs(dtype):
    """(label, function making a fresh tensor) per kind of `self`: fast and general cases."""
    if not dtype.is_floating_point:   # (integral tensors cannot require grad: the general path, plain results)
        yield "integral", lambda: torch.tensor([3, -2, 0, 7], dtype=dtype)
        yield "integral 0-d", lambda: torch.tensor(5, dtype=dtype)
        return
    flat = _VALUES.astype(dtype.np)
    yield "leaf", lambda: torch.tensor(flat, dtype=dtype, requires_grad=True)
    yield "0-d leaf", lambda: torch.tensor(flat[0], dtype=dtype, requires_grad=True)
    yield "non-leaf 2-d", lambda: torch.tensor(flat.reshape(3, 4), dtype=dtype, requires_grad=True) * 1.0
    yield "transposed", lambda: (torch.tensor(flat.reshape(3, 4), dtype=dtype, requires_grad=True) * 1.0).t()
    yield "view", lambda: torch.tensor(flat, dtype=dtype, requires_grad=True)[2:]
    yield "no grad", lambda: torch.tensor(flat, dtype=dtype)
    yield "large", lambda: torch.tensor(np.resize(flat, 5000), dtype=dtype, requires_grad=True)
    # From _ops._LARGE elements on, results go to recycled memory in torch's layout (and threads).
    many = np.resize(flat, (256, 257))
    many[:, 1:] = np.random.default_rng(0).uniform(-3, 3, (256, 256))
    yield "split", lambda: torch.tensor(many[:, 1:], dtype=dtype, requires_grad=True)
    yield "split non-leaf", lambda: torch.tensor(many, dtype=dtype, requires_grad=True) * 1.0
    yield "split transposed", lambda: (torch.tensor(many, dtype=dtype, requires_grad=True) * 1.0).t()
    yield "split view", lambda: torch.tensor(many, dtype=dtype, requires_grad=True)[:, 1:]


def _node_state(node):
    if node is None:
        return None
    return (type(node).__name__, node.next_functions, node._input_meta, node.needs, node._pre_hooks, node._retained,
            sorted((k, np.asarray(v).tobytes(), np.asarray(v).dtype) for k, v in node.__dict__.items()),
            None if node._saved is None else [(name, type(t), v) for name, t, v in node._saved])


def _array_state(a):
    return (a.dtype, a.shape, a.strides, a.tobytes())


def _run(fn, make_input):
    x = make_input()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out = fn(x)
        except Exception as error:  # noqa: BLE001  (both paths must raise alike)
            return ("raised", type(error), str(error), [str(w.message) for w in caught])
    state = (type(out), out.dtype, _array_state(out._data), out.requires_grad, out.is_leaf, out._base is None,
             _node_state(out._grad_fn), [str(w.message) for w in caught])
    grad = None
    if out.grad_fn is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            leaf = x if x.is_leaf else x._base if x._base is not None else None
            out.sum().backward()
            grads = [t.grad for t in (x, leaf) if t is not None and t.is_leaf and t.grad is not None]
            grad = [_array_state(g._data) for g in grads]
    return state, grad


def _strip_edges(result):
    """Nodes of two runs differ by identity: compare the edges by their class names."""
    if result[0] == "raised":
        return result
    state, grad = result
    node = state[6]
    if node is not None:
        edges = tuple((None if n is None else type(n).__name__, k) for n, k in node[1])
        node = (node[0], edges) + node[2:]
    return state[:6] + (node,) + state[7:], grad


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64], ids=str)
@pytest.mark.parametrize("name", _UNARY)
def test_unary_method_is_the_general_path(name, dtype):
    fast, general = vars(Tensor)[name], vars(Tensor)[name].__wrapped__
    for label, make_input in _inputs(dtype):
        assert _strip_edges(_run(fast, make_input)) == _strip_edges(_run(general, make_input)), label


@pytest.mark.parametrize("other", [0.9, 2, 0.0, -0.0, 1e300, -1e-50, float("nan"), 2**70, True,
                                   np.float64(0.5), np.float32(0.5)], ids=repr)
@pytest.mark.parametrize("name", _OPERATORS)
def test_scalar_operator_is_the_general_path(name, other):
    fast, general = vars(Tensor)[name], vars(Tensor)[name].__wrapped__
    for dtype in (torch.float32, torch.float64, torch.int64):
        for label, make_input in _inputs(dtype):
            assert (_strip_edges(_run(lambda x: fast(x, other), make_input))
                    == _strip_edges(_run(lambda x: general(x, other), make_input))), (label, dtype)


def test_fast_methods_are_installed_and_fall_back_for_arguments_and_tensor_operands():
    x = torch.tensor([0.5, 1.5], requires_grad=True)
    for name in _UNARY + _OPERATORS:
        assert vars(Tensor)[name].__wrapped__ is not None
    with pytest.raises(TypeError, match=r"Tensor.tanh\(\) takes no arguments \(1 given\)"):
        x.tanh(1)
    with pytest.raises(TypeError, match="takes no keyword arguments"):
        x.exp(out=None)
    y = x * x + x
    assert type(y.grad_fn).__name__ == "AddBackward0"
    assert [type(n).__name__ for n, _ in y.grad_fn.next_functions] == ["MulBackward0", "AccumulateGrad"]


def test_chain_under_grad_modes_and_inference_tensors_as_general_path():
    x = torch.tensor([0.25, -1.0, 3.0], requires_grad=True)
    with torch.no_grad():
        y = (x * 0.9 + 0.1).tanh()
    assert not y.requires_grad and y.grad_fn is None
    with torch.inference_mode():
        z = torch.tensor([0.5, 0.25])
        w = z.exp() * 2.0
    assert w.is_inference() and z.is_inference()
    assert not z.sin().requires_grad and not z.sin().is_inference()
    leaf = torch.tensor([0.5, 0.25], requires_grad=True)
    with pytest.raises(RuntimeError, match="Inference tensors cannot be saved for backward"):
        leaf * z
    del z, w   # (no inference tensor alive: the fast path again)
    v = (x * 2 + 1).sin()
    v.sum().backward()
    np.testing.assert_array_equal(x.grad._data, (np.cos((x._data * np.float32(2) + np.float32(1)).astype(np.float64))
                                                 .astype(np.float32) * np.float32(2)))


def test_saved_tensor_modified_in_place_and_freed_graph_raise_as_torch():
    # (messages as torch 2.13 gives them for these lines)
    x = torch.tensor([0.25, -1.0, 3.0], requires_grad=True)
    y = x * 1.0
    z = y.sin()                 # saves y
    y.mul_(2)
    with pytest.raises(RuntimeError, match=r"\[torch.FloatTensor \[3\]\], which is output 0 of Mul, is at version 1; expected version 0"):
        z.sum().backward()
    w = (x * 1.0).exp()         # saves its result
    w.add_(1)
    with pytest.raises(RuntimeError, match=r"\[torch.FloatTensor \[3\]\], which is output 0 of Exp, is at version 1; expected version 0"):
        w.sum().backward()
    u = (x * 3.0).tanh()
    u.sum().backward()
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        u.sum().backward()


@pytest.mark.parametrize("create_graph", [False, True])
def test_backward_of_fast_nodes_is_the_rules_with_and_without_create_graph(create_graph):
    """The fast nodes' own backwards (plain arrays) and their rules' (tensors, create_graph) give the
    general path's gradients, and second derivatives, bit for bit."""
    def chain(methods, x):
        y = x
        for _ in range(3):
            y = methods["__add__"](methods["__mul__"](y, 0.9), 0.1)
            y = methods["sin"](methods["exp"](methods["tanh"](y)))
        return y
    results = []
    for fast in (True, False):
        methods = {name: vars(Tensor)[name] if fast else vars(Tensor)[name].__wrapped__
                   for name in ("__add__", "__mul__", "sin", "exp", "tanh")}
        x = torch.tensor([0.3, -0.7, 1.5, 0.0], requires_grad=True)
        (g,) = torch.autograd.grad(chain(methods, x).sum(), x, create_graph=create_graph)
        second = torch.autograd.grad(g.sum(), x)[0]._data.tobytes() if create_graph else None
        results.append((g._data.tobytes(), second, type(g.grad_fn).__name__ if create_graph else None))
    assert results[0] == results[1]
