"""Indexing ops against torch: what the per-op table cannot express.

Errors (type and exact message), warnings, empty results, the graph structure
(next_functions, saved indices freed after backward, create_graph node names),
gradient accumulation over repeated indices, and torch's placement of indexed
dims where it differs from NumPy's.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import engine

X = np.arange(12, dtype=np.float32).reshape(3, 4) / 7 - 0.5
X3 = np.arange(60, dtype=np.float32).reshape(3, 4, 5) / 30 - 1


def _outcome(backend, fn):
    """`fn(backend)` as comparable data: the result's array, or the exception's type name and message."""
    try:
        out = fn(backend)
    except Exception as exc:  # noqa: BLE001  (any exception is part of the observable behaviour)
        return type(exc).__name__, str(exc)
    return np.asarray(out.detach().numpy())


def _same(fn):
    got, want = _outcome(engine, fn), _outcome(torch, fn)
    if isinstance(want, tuple):
        assert got == want
    else:
        assert not isinstance(got, tuple), got
        np.testing.assert_array_equal(got, want)


def _x(backend, data=X, requires_grad=True):
    return backend.tensor(data.tolist(), requires_grad=requires_grad)


def _i(backend, values):
    return backend.tensor(values, dtype=backend.int64)


def _b(backend, values):
    return backend.tensor(values, dtype=backend.bool)


GETITEM_ERRORS = {
    "int out of range": lambda m: _x(m)[5],
    "negative int out of range": lambda m: _x(m)[-4],
    # torch names the dim by the position in the index tuple, not by the tensor's dim
    "int after None": lambda m: _x(m)[None, 5],
    "int after Ellipsis": lambda m: _x(m)[..., 9],
    "negative step": lambda m: _x(m)[::-1],
    "zero step": lambda m: _x(m)[:, ::0],
    "too many indices": lambda m: _x(m)[0, 0, 0],
    "0-d int": lambda m: _x(m)[0, 0][0],
    "0-d int 1": lambda m: _x(m)[0, 0][1],
    "0-d slice": lambda m: _x(m)[0, 0][:],
    "0-d list": lambda m: _x(m)[0, 0][[0]],
    "float": lambda m: _x(m)[1.5],
    "float in tuple": lambda m: _x(m)[0, 1.5],
    "dict": lambda m: _x(m)[{}],
    "str": lambda m: _x(m)["a"],
    "int overflow": lambda m: _x(m)[2**70],
    "float index tensor": lambda m: _x(m)[m.tensor([0.0, 1.0])],
    "float 0-d index tensor": lambda m: _x(m)[m.tensor(1.0)],
    "index tensor out of range": lambda m: _x(m)[_i(m, [0, 5])],
    # advanced indices report their position among the index tensors; the first bad element wins
    "second index out of range": lambda m: _x(m)[[0, 5], [9, 1]],
    "index after slice out of range": lambda m: _x(m)[:, [1, 7]],
    "indices do not broadcast": lambda m: _x(m)[[0, 1], [0, 1, 2]],
    "mask shape": lambda m: _x(m)[_b(m, [True, False])],
    "mask after slice": lambda m: _x(m, X3)[_b(m, [True, False, True]), :, _b(m, [True, False, True, False])],
    "list of bools too short": lambda m: _x(m)[[True]],
}


@pytest.mark.filterwarnings("ignore:Using a non-tuple sequence")   # torch reads "a" as a sequence
@pytest.mark.parametrize("name", GETITEM_ERRORS)
def test_getitem_errors_match_torch(name):
    fn = GETITEM_ERRORS[name]
    assert isinstance(_outcome(torch, fn), tuple), "torch raises here"
    _same(fn)


def _setitem(backend, index, value_shape, shape=(2, 3)):
    x = backend.ones(*shape)
    x[index] = backend.ones(*value_shape)
    return x


def _setitem_value(backend, index, value):
    x = backend.ones(2, 3)
    x[index] = value
    return x


OP_ERRORS = {
    # x[index] = v: a basic index expands v to the view (expand's errors, leading 1s of v
    # dropped first); an index with tensors broadcasts (index_put_'s error)
    "setitem whole, wrong size": lambda m: _setitem(m, slice(None), (2,)),
    "setitem row, too many dims": lambda m: _setitem(m, 0, (3, 1)),
    "setitem row, wrong size": lambda m: _setitem(m, 0, (2,)),
    "setitem column, wrong size": lambda m: _setitem(m, (slice(None), 0), (3,)),
    "setitem slice, wrong inner size": lambda m: _setitem(m, slice(0, 1), (2, 2)),
    "setitem 1-d, wrong size": lambda m: _setitem(m, slice(None), (2,), shape=(4,)),
    "setitem index tensor, wrong size": lambda m: _setitem(m, _i(m, [0, 1]), (3, 3)),
    "setitem mask, wrong size": lambda m: _setitem(m, _b(m, [True, False]), (2, 3)),
    # index_put_ refuses a bad index in the words of indexing
    "setitem index out of bounds": lambda m: _setitem(m, _i(m, [5]), (3,)),
    "setitem second index out of bounds": lambda m: _setitem(m, (_i(m, [0]), _i(m, [4])), (1,)),
    "setitem list out of bounds after a slice": lambda m: _setitem(m, (slice(None), [3]), (1,)),
    "setitem int then list out of bounds": lambda m: _setitem(m, (0, [1, 5]), (1,)),
    "setitem mask of the wrong shape": lambda m: _setitem(m, _b(m, [True, False, True]), (1,)),
    "setitem too many indices": lambda m: _setitem(m, (_i(m, [0]), 1, _i(m, [0])), (1,)),
    # index_put_ requires the value's dtype, except a one-element value through one mask (masked_fill_)
    "setitem float64 value by index tensor": lambda m: _setitem_value(m, _i(m, [0, 0]), m.tensor(0.5, dtype=m.float64)),
    "setitem int64 value by list": lambda m: _setitem_value(m, [0], m.tensor([1, 2, 3])),
    "setitem float64 value by mask and index": lambda m: _setitem_value(
        m, (_b(m, [True, False]), _i(m, [0])), m.tensor([0.5], dtype=m.float64)),
    "setitem two float64 values by mask": lambda m: _setitem_value(
        m, _b(m, [True, False]), m.tensor([0.5, 1.5, 2.5], dtype=m.float64)),
    "setitem 1-d mask, 2-d value": lambda m: _setitem(m, _b(m, [True]), (2, 3), shape=(1,)),
    "setitem 1-d mask, value with a leading 2": lambda m: _setitem(m, _b(m, [True]), (2, 1), shape=(1,)),
    "index_select dim": lambda m: m.index_select(_x(m), 2, _i(m, [0])),
    "index_select matrix index": lambda m: m.index_select(_x(m), 0, _i(m, [[0]])),
    "index_select float index": lambda m: m.index_select(_x(m), 0, m.tensor([0.0])),
    "index_select negative": lambda m: m.index_select(_x(m), 0, _i(m, [-1])),
    "index_select out of range": lambda m: m.index_select(_x(m, X3), 2, _i(m, [5])),
    # torch's CPU kernel for dim 1 raises another error type and message
    "index_select dim 1 out of range": lambda m: m.index_select(_x(m), 1, _i(m, [0, 4, -1])),
    "index_select scalar": lambda m: m.index_select(_x(m)[0, 0], 0, _i(m, [0, 0])),
    "index_select list": lambda m: m.index_select(_x(m), 0, [0]),
    "gather ndim": lambda m: m.gather(_x(m), 1, _i(m, [0, 1])),
    "gather float index": lambda m: m.gather(_x(m), 1, m.tensor([[0.0]])),
    "gather size": lambda m: m.gather(_x(m), 1, _i(m, [[0]] * 4)),
    "gather out of range": lambda m: m.gather(_x(m), 1, _i(m, [[0, 4]])),
    "gather negative": lambda m: m.gather(_x(m), 0, _i(m, [[-1]])),
    "scatter src dtype": lambda m: m.scatter(_x(m), 1, _i(m, [[0]]), m.tensor([[1.0]], dtype=m.float64)),
    "scatter index ndim": lambda m: m.scatter(_x(m), 1, _i(m, [0, 0]), 2.0),
    "scatter src ndim": lambda m: m.scatter(_x(m), 1, _i(m, [[0]]), m.tensor(3.0)),
    "scatter src too small": lambda m: m.scatter(_x(m), 1, _i(m, [[0, 1], [0, 0], [1, 1]]), m.tensor([[1.0]] * 3)),
    "scatter index too large": lambda m: m.scatter(_x(m), 0, _i(m, [[0, 1, 2, 0, 0]]), 1.0),
    "scatter out of range": lambda m: m.scatter(_x(m), 1, _i(m, [[0, 4]]), 1.0),
    "scatter reduce name": lambda m: m.scatter(_x(m), 1, _i(m, [[0]]), 1.0, reduce="mean"),
    "scatter int overflow": lambda m: m.scatter(_i(m, [[1, 2]]), 1, _i(m, [[0]]), float("nan")),
    "scatter float overflow": lambda m: m.scatter(_x(m), 1, _i(m, [[0]]), 1e300),
    "scatter_add number": lambda m: m.scatter_add(_x(m), 1, _i(m, [[0]]), 2.0),
    "scatter_add src dtype": lambda m: m.scatter_add(_x(m), 1, _i(m, [[0]]), m.tensor([[1.0]], dtype=m.float64)),
    "masked_fill int mask": lambda m: m.masked_fill(_x(m), _i(m, [1, 0, 1, 0]), 1.0),
    "masked_fill float mask": lambda m: m.masked_fill(_x(m), _x(m, requires_grad=False), 1.0),
    "masked_fill 1-d value": lambda m: m.masked_fill(_x(m), _b(m, [True] * 4), m.tensor([1.0])),
    "masked_fill broadcast": lambda m: m.masked_fill(_x(m), _b(m, [[True], [False]]), 1.0),
    "masked_fill nan into int": lambda m: m.masked_fill(_i(m, [1, 2]), _b(m, [True, False]), float("nan")),
    "masked_fill big into float": lambda m: m.masked_fill(_x(m), _b(m, [True] * 4), 1e300),
    "masked_fill int too big": lambda m: m.masked_fill(_x(m), _b(m, [True] * 4), 2**70),
    "masked_fill int with grad value": lambda m: m.masked_fill(
        _i(m, [1, 2]), _b(m, [True, False]), m.tensor(2.5, requires_grad=True)),
    "take float index": lambda m: m.take(_x(m), m.tensor([0.0])),
    "take bool index": lambda m: m.take(_x(m), _b(m, [True])),
    "take out of range": lambda m: m.take(_x(m), _i(m, [0, 12])),
    "take negative out of range": lambda m: m.take(_x(m), _i(m, [-13])),
    "take from empty": lambda m: m.take(_x(m)[:, 4:], _i(m, [0])),
    "index_select empty axis": lambda m: m.index_select(_x(m)[:, 4:], 1, _i(m, [0])),
    "index_select empty 1-d": lambda m: m.index_select(_x(m)[0, 4:], 0, _i(m, [0])),
    # torch checks src's ndim first only when a size check fails
    "scatter src ndim before sizes": lambda m: m.scatter_add(_x(m), 1, _i(m, [[0] * 5]), m.tensor([1.0])),
    "scatter src dim out of range": lambda m: m.scatter_add(_x(m), 1, _i(m, [[0]]), m.tensor([1.0])),
    "masked_fill broadcast before value and mask": lambda m: m.masked_fill(
        _x(m), _i(m, [[1], [0]]), m.tensor([1.0])),
    "masked_fill value before mask dtype": lambda m: m.masked_fill(_x(m), _i(m, [1, 0, 1, 0]), m.tensor([1.0])),
}


@pytest.mark.parametrize("name", OP_ERRORS)
def test_op_errors_match_torch(name):
    fn = OP_ERRORS[name]
    assert isinstance(_outcome(torch, fn), tuple), "torch raises here"
    _same(fn)


VALUES = {
    "setitem leading ones dropped": lambda m: _setitem(m, 0, (1, 1, 3)),
    "setitem float64 value by mask is masked_fill_": lambda m: _setitem_value(
        m, _b(m, [True, False]), m.tensor([0.5], dtype=m.float64)),
    "setitem bool value by mask after a slice": lambda m: _setitem_value(
        m, (slice(None), _b(m, [True, False, True])), m.tensor(True)),
    "setitem index_put_ drops leading ones": lambda m: _setitem(m, _b(m, [True]), (1, 1, 1), shape=(1,)),
    "setitem mask drops leading ones": lambda m: _setitem(m, _b(m, [True, False]), (1, 1, 3)),
    "setitem index tensors drop leading ones": lambda m: _setitem(m, (_i(m, [0, 1, 1]), _i(m, [2, 0, 1])), (1, 3)),
    # torch applies ints first (as selects), then places the advanced dims: x[0, :, [1, 2]]
    # has shape (4, 2) in torch and (2, 4) in NumPy.
    "int with list": lambda m: _x(m, X3)[0, :, [1, 2]],
    "mask then int": lambda m: _x(m, X3)[_b(m, [[True, False, True, False]] * 3), 1],
    "two ellipses": lambda m: _x(m, X3)[0, ..., 0, ...],
    "False": lambda m: _x(m)[False],
    "False in tuple": lambda m: _x(m)[0, False],
    "empty list": lambda m: _x(m)[[]],
    "0-d int tensor then list": lambda m: _x(m, X3)[_i(m, [0, 1]), _i(m, 1)],
    "floats in a list truncate": lambda m: _x(m)[[0.5, 2.7]],
    "range": lambda m: _x(m)[range(2)],
    "index_select empty": lambda m: m.index_select(_x(m), 1, _i(m, [])),
    "index_select 0-d index": lambda m: m.index_select(_x(m)[0, 0], 0, _i(m, 0)),
    "gather empty": lambda m: m.gather(_x(m), 1, _i(m, [[], [], []])),
    "masked_fill truncates into int": lambda m: m.masked_fill(_i(m, [1, 2, 3]), _b(m, [True, False, True]), -1.7),
    "masked_fill into bool": lambda m: m.masked_fill(_b(m, [True, False]), _b(m, [False, True]), 0.5),
    "masked_fill float64 value into float32": lambda m: m.masked_fill(
        _x(m), _b(m, [True, False, True, False]), m.tensor(0.1, dtype=m.float64)),
    "scatter truncates into int": lambda m: m.scatter(_i(m, [[1, 2]]), 1, _i(m, [[1]]), -2.7),
    "take empty": lambda m: m.take(_x(m), _i(m, [[], []])),
    # torch checks index bounds while copying: an empty result never fails
    "empty result skips bounds": lambda m: _x(m)[[7, 9], 1:1],
    "empty index skips scatter checks": lambda m: m.scatter(_x(m), 1, _i(m, [[[]]]), 2.0),
    "empty index skips gather checks": lambda m: m.gather(_x(m), 0, _i(m, [[[], []]])),
}


@pytest.mark.parametrize("name", VALUES)
def test_values_match_torch(name):
    fn = VALUES[name]
    want = _outcome(torch, fn)
    assert not isinstance(want, tuple), want
    got = _outcome(engine, fn)
    assert not isinstance(got, tuple), got
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_non_tuple_sequence_warns_like_torch():
    def messages(m):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = _x(m, X3)[[[0, 1], [1, 2]]]
        return out.shape, [str(w.message).split(" (Triggered internally")[0] for w in caught]
    assert messages(engine) == messages(torch)
    assert messages(engine)[1], "a warning is raised"


GRADIENTS = {
    "repeated list index": lambda m, x: x[[0, 2, 0, 0]],
    "repeated pairs": lambda m, x: x[[1, 1, 1], [3, 3, 0]],
    "mask": lambda m, x: x[_b(m, (X > 0).tolist())],
    "slices, ints and None": lambda m, x: x[None, 1:, ::2][:, -1],
    "index_select repeated": lambda m, x: m.index_select(x, 1, _i(m, [3, 3, 3, 0])),
    "gather repeated": lambda m, x: m.gather(x, 0, _i(m, [[2, 2, 2, 2], [2, 0, 2, 0]])),
    "take repeated": lambda m, x: m.take(x, _i(m, [[-1, 11], [0, 11]])),
    "scatter_add repeated": lambda m, x: m.scatter_add(x, 1, _i(m, [[0, 0], [1, 1], [3, 3]]), x[:, :2] * 2),
    "scatter overwrites": lambda m, x: m.scatter(x, 1, _i(m, [[0], [1], [3]]), x[:, 1:2] * 3),
    "masked_fill tensor value": lambda m, x: m.masked_fill(x, _b(m, (X > 0).tolist()), x[0, 0]),
    "empty": lambda m, x: x[False],
}


@pytest.mark.parametrize("name", GRADIENTS)
def test_gradients_accumulate_like_torch(name):
    def grad(m):
        x = _x(m)
        out = GRADIENTS[name](m, x)
        weights = m.tensor(np.linspace(-1, 2, out.numel()).reshape(tuple(out.shape)).tolist()
                           if out.numel() else np.zeros(tuple(out.shape)), dtype=m.float32)
        (out * weights).sum().backward()
        return x.grad.numpy()
    np.testing.assert_allclose(grad(engine), grad(torch), rtol=1e-6, atol=1e-6)


def test_scatter_add_src_broadcasting_to_an_empty_index_gets_a_zero_gradient_like_torch():
    def run(m):
        src = m.tensor(1.5, requires_grad=True)
        m.scatter_add(_x(m), 1, _i(m, [[]]), src).sum().backward()
        return src.grad.item()
    assert run(engine) == run(torch) == 0.0


def test_repeated_indices_sum_their_gradients():
    x = engine.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[[0, 0, 2, 0]].sum().backward()
    assert x.grad.tolist() == [3.0, 0.0, 1.0]


NODES = {
    "index": lambda m, x: x[[0, 0]],
    "int then list": lambda m, x: x[1, [0, 0]],
    "bool": lambda m, x: x[True],
    "index_select": lambda m, x: m.index_select(x, 0, _i(m, [0, 0])),
    "gather": lambda m, x: m.gather(x, 1, _i(m, [[0, 0]])),
    "scatter src": lambda m, x: m.scatter(x, 1, _i(m, [[0]]), m.tensor([[1.0]])),
    "scatter value": lambda m, x: m.scatter(x, 1, _i(m, [[0]]), 1.0),
    "scatter_add": lambda m, x: m.scatter_add(x, 1, _i(m, [[0]]), m.tensor([[1.0]])),
    "scatter_add src grad": lambda m, x: m.scatter_add(x.detach(), 1, _i(m, [[0, 1]]), x[:1, :2]),
    "masked_fill number": lambda m, x: m.masked_fill(x, _b(m, (X > 0).tolist()), 1.0),
    "masked_fill tensor": lambda m, x: m.masked_fill(x, _b(m, (X > 0).tolist()), m.tensor(1.0)),
    "take": lambda m, x: m.take(x, _i(m, [0, 0])),
    "slice": lambda m, x: x[1:],
    "select": lambda m, x: x[1],
    "alias": lambda m, x: x[..., :],
    "slices then list": lambda m, x: x[1:, [0, 0]],
}


def _grad_node(grad):
    """The node that computed a create_graph gradient (behind the copy AccumulateGrad makes)."""
    fn = grad.grad_fn
    while fn is not None and fn.name().endswith("CopyBackwards"):
        fn = [n for n, _ in fn.next_functions if n is not None][-1]
    return None if fn is None else fn.name()


def _graph(m, name):
    """Node names, edges, whether a second backward without retain_graph raises, and the
    node that create_graph records for the gradient."""
    x = _x(m)
    out = NODES[name](m, x)
    fn = out.grad_fn
    edges = [None if n is None else n.name() for n, _ in fn.next_functions]
    (out * out).sum().backward(create_graph=True)
    grad_node = _grad_node(x.grad)
    x.grad = None
    loss = out.sum()    # SumBackward0 saves nothing: whether this raises is up to the op's node
    loss.backward()
    try:
        loss.backward()
        second = "ok"
    except RuntimeError as exc:
        second = str(exc)[:40]
    return fn.name(), edges, grad_node, second


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True")
@pytest.mark.parametrize("name", NODES)
def test_graph_structure_matches_torch(name):
    assert _graph(engine, name) == _graph(torch, name)


def test_scatter_src_larger_than_index_refuses_its_gradient_like_torch():
    def run(m):
        src = m.tensor([[1.0, 2.0]] * 3, requires_grad=True)
        out = m.scatter_add(_x(m, requires_grad=False), 1, _i(m, [[0, 0]]), src)
        try:
            out.sum().backward()
        except RuntimeError as exc:
            return str(exc)
        return None
    assert run(engine) == run(torch) is not None


def test_getitem_basic_results_are_views_like_torch():
    for m in (engine, torch):
        x = _x(m, requires_grad=False)
        x[1].zero_()
        x[:, 2:3].zero_()
        assert x.numpy()[1].tolist() == [0.0] * 4 and not x.numpy()[:, 2].any()


def test_gather_sparse_grad_is_not_supported():
    with pytest.raises(NotImplementedError, match="sparse_grad"):
        engine.gather(_x(engine), 1, _i(engine, [[0]]), sparse_grad=True)


def test_scatter_reduce_is_not_supported():
    with pytest.raises(NotImplementedError, match="reduce"):
        engine.scatter(_x(engine), 1, _i(engine, [[0]]), 1.0, reduce="add")


def _random_index(rng):
    """An index expression mixing every kind of item torch accepts (and some it refuses)."""
    def item():
        kind = rng.integers(9)
        if kind == 0:
            return int(rng.integers(-6, 6))
        if kind == 1:
            pick = lambda *c: c[rng.integers(len(c))]  # noqa: E731
            return slice(pick(None, -7, -2, 0, 1, 3, 9), pick(None, -8, -1, 0, 2, 4, 10), pick(None, 1, 2, 3, -1))
        if kind == 2:
            return None
        if kind == 3:
            return Ellipsis
        if kind == 4:
            return bool(rng.integers(2))
        if kind == 5:
            return rng.integers(-5, 5, size=rng.integers(0, 4)).tolist()
        if kind == 6:
            return ("int64", rng.integers(-4, 4, size=[(), (2,), (2, 1), (1, 3)][rng.integers(4)]).tolist())
        if kind == 7:
            return ("bool", (rng.random([(3,), (4,), (5,), (3, 4), (4, 5), ()][rng.integers(6)]) < 0.5).tolist())
        return int(rng.integers(0, 3))
    index = tuple(item() for _ in range(rng.integers(1, 5)))
    return index[0] if rng.random() < 0.3 else index


def _build_index(m, index):
    if isinstance(index, tuple) and len(index) == 2 and index[0] in ("int64", "bool"):
        return m.tensor(index[1], dtype=getattr(m, index[0]))
    return tuple(_build_index(m, i) for i in index) if isinstance(index, tuple) else index


def _getitem_outcome(m, index):
    x = _x(m, X3)
    try:
        y = x[_build_index(m, index)]
    except NotImplementedError:
        return "not implemented"
    except Exception as exc:  # noqa: BLE001
        return type(exc).__name__, str(exc)
    weights = np.linspace(-1, 1, y.numel()).reshape(tuple(y.shape))
    if y.numel():
        (y * m.tensor(weights.tolist())).sum().backward()
    grad = None if x.grad is None else x.grad.numpy().tolist()
    return tuple(y.shape), y.grad_fn.name(), y.detach().numpy().tolist(), grad


@pytest.mark.filterwarnings("ignore:Using a non-tuple sequence")
def test_random_index_expressions_match_torch():
    """A seeded differential run over mixed index expressions: results, errors, nodes, gradients."""
    rng = np.random.default_rng(7)
    implemented = 0
    for _ in range(400):
        index = _random_index(rng)
        got = _getitem_outcome(engine, index)
        if got == "not implemented":     # only past-the-end dims after several Ellipsis
            continue
        implemented += 1
        want = _getitem_outcome(torch, index)
        if len(want) == 2:       # an error: type and message
            assert got == want, repr(index)
            continue
        assert got[:2] == want[:2], repr(index)
        np.testing.assert_array_equal(got[2], want[2], err_msg=repr(index))
        if want[3] is not None:
            np.testing.assert_allclose(got[3], want[3], rtol=1e-6, atol=1e-6, err_msg=repr(index))
    assert implemented > 390


SECOND_ORDER = {
    "list index": lambda m, x, s: x[[0, 2, 0], 1:],
    "mask and int": lambda m, x, s: x[_b(m, [True, False, True]), -1],
    "None and slices": lambda m, x, s: x[None, ::2, 1],
    "index_select": lambda m, x, s: m.index_select(x, 1, _i(m, [3, 3, 0])),
    "gather": lambda m, x, s: m.gather(x, 1, _i(m, [[0, 0], [1, 3], [2, 2]])),
    "scatter": lambda m, x, s: m.scatter(x, 1, _i(m, [[0, 1], [3, 2], [1, 0]]), s),
    "scatter value": lambda m, x, s: m.scatter(x, 0, _i(m, [[0, 1, 2, 0]]), -1.0),
    "scatter_add": lambda m, x, s: m.scatter_add(x, 1, _i(m, [[0, 0], [3, 3], [1, 0]]), s),
    "masked_fill": lambda m, x, s: m.masked_fill(x, _b(m, [True, False, False, True]), s[0, 0]),
    "take": lambda m, x, s: m.take(x, _i(m, [[0, 11], [11, -1]])),
}


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True")
@pytest.mark.parametrize("name", SECOND_ORDER)
def test_second_order_gradients_through_the_recorded_backward_match_torch(name):
    """The gradients of a cubic through the op, then the gradient of those gradients: this
    runs every rule on tensors (create_graph) and the rules of the backward graph's nodes."""
    def run(m):
        x = m.tensor(X.astype(np.float64).tolist(), dtype=m.float64, requires_grad=True)
        src = m.tensor([[0.3, -1.2], [0.7, 2.0], [-0.4, 1.1]], dtype=m.float64, requires_grad=True)
        out = SECOND_ORDER[name](m, x, src)
        weights = m.tensor(np.linspace(-1, 2, out.numel()).reshape(tuple(out.shape)).tolist(), dtype=m.float64)
        (out * out * out * weights).sum().backward(create_graph=True)
        first = [x.grad, src.grad]
        x.grad = src.grad = None
        sum((g * g).sum() for g in first if g is not None).backward()
        return [None if g is None else g.detach().numpy() for g in first + [x.grad, src.grad]]
    for got, want in zip(run(engine), run(torch)):
        assert (got is None) == (want is None)
        if want is not None:
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_scatter_add_overflowing_to_inf_does_not_warn_as_torch_does_not():
    import warnings as _warnings
    for backend in (engine, torch):
        x = backend.zeros(1, 2)
        src = backend.tensor([[3e38, 3e38]])
        with _warnings.catch_warnings():
            _warnings.simplefilter("error")
            out = backend.scatter_add(x, 1, backend.tensor([[0, 0]]), src)
        assert out.tolist() == [[float("inf"), 0.0]]


@pytest.mark.parametrize("shape", [(0,), (2, 0), (0, 2), (2, 0, 3), (3,)])
@pytest.mark.parametrize("index", [[0], [5], [-1], [], [1, 0]])
def test_index_select_bounds_errors_on_empty_inputs_are_torchs(shape, index):
    # Fuzzer finding: an empty input's out-of-range index is torch's RuntimeError "INDICES
    # element is out of DATA bounds" along any dim, and an empty indexed dim its own message.
    def call(b):
        return tuple(b.index_select(b.zeros(shape), dim, b.tensor(index, dtype=b.int64)).shape)
    for dim in range(len(shape)):
        outcomes = []
        for backend in (engine, torch):
            try:
                outcomes.append(call(backend))
            except (IndexError, RuntimeError) as error:
                outcomes.append(f"{type(error).__name__}: {error}")
        assert outcomes[0] == outcomes[1], dim


@pytest.mark.parametrize("shape, key", [
    ((2, 0), ([0, 1],)), ((2, 0), ([0, 5],)), ((2, 0), (1, [0])), ((2, 0), (slice(None), [0])),
    ((2, 0), (slice(None), [])), ((0, 3), ([0],)), ((0, 0), ([0, 3, 0],)), ((2, 0), ([5], [0])),
    ((2, 0), ([1], [0])), ((2, 3), ([5],)), ((2, 3), (slice(None), [5])), ((2, 0), ([[True, False]],)),
])
def test_advanced_indexing_of_size_0_dims_raises_as_torch(shape, key):
    # Fuzzer finding (eye(0)[tensor([0, 3, 0])] was a (3, 0) tensor): no index fits a dim of size
    # 0, which torch checks before any element unless the index itself is empty; out-of-range
    # indices into other dims go unnoticed while the result is empty.
    def call(b):
        parts = tuple(b.tensor(part) if isinstance(part, list) else part for part in key)
        return tuple(b.zeros(shape)[parts].shape)
    outcomes = []
    for backend in (engine, torch):
        try:
            outcomes.append(call(backend))
        except IndexError as error:
            outcomes.append(str(error))
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize("key", ["[1:3, [3, 3], :2]", "[:, [0, 1]]", "[[0, 2], :, [1, 1]]", "[..., [1, 0]]", "[[1], 1:]",
                                 "[:, :, [4, 0, 1]]", "[x > -1]"])
def test_advanced_indexing_of_a_contiguous_tensor_is_contiguous_as_torch(key):
    # Fuzzer finding: x[1:3, [3, 3], :2].contiguous() is the same tensor in torch (grad_fn
    # IndexBackward0); numpy lays out slices mixed with index arrays otherwise, so it copied.
    # (For a transposed input torch's result follows the input's strides; not modelled.)
    seen = []
    for b in (torch, engine):
        x = b.zeros((3, 4, 5), requires_grad=True)
        out = eval(f"x{key}", {"x": x})
        seen.append(out.contiguous().grad_fn.name())
    assert seen[1] == seen[0] == "IndexBackward0"


@pytest.mark.parametrize("key", ["mask", "lists"])
@pytest.mark.parametrize("value_shape", [(1, 1), (1, 1, 1), (1, 2), (1,), ()])
def test_index_put_views_the_value_without_its_leading_ones_as_torch(key, value_shape):
    # Fuzzer finding: x[mask] = value of shape (1, 1) has torch's ViewBackward0 between the
    # value and IndexPutBackward0 (set_item strips the value's leading 1-sized dims), so the
    # value's gradient, one per written element, sums to it; the engine failed in backward.
    def program(b):
        x = b.zeros(3, 4, requires_grad=True) * 1
        value = b.ones(value_shape, requires_grad=True)
        index = (b.tensor([[True, True, True, False], [True, True, False, True], [True, False, False, True]])
                 if key == "mask" else (b.tensor([0, 1]), b.tensor([[1], [2]])))
        try:
            x[index] = value * 2
        except RuntimeError as error:
            return str(error)
        (x * b.arange(12.0).reshape(3, 4)).sum().backward()
        return x.grad_fn.next_functions[1][0].name(), value.grad.numpy().tolist()
    assert program(engine) == program(torch)


@pytest.mark.parametrize("key", ["[1:3, [3, 3], :2]", "[[5], 0:0]", "[:, [7, 9], 0:0]", "[0:0, [4]]"])
def test_double_backward_of_an_empty_advanced_index_ignores_its_bounds_as_torch(key):
    """Fuzzer finding (seed 32): x[1:3, [3, 3], :2] of a (1, 3, 1) tensor is empty, so torch never
    checks the out-of-range 3, neither forward nor in the double backward (IndexPutImplBackward0
    indexes the gradient again); the engine's double backward indexed numpy out of bounds."""
    results = []
    for m in (torch, engine):
        x = m.tensor(np.arange(6.0).reshape(1, 3, 2).tolist(), requires_grad=True)
        y = eval("x" + key)
        (g,) = m.autograd.grad((y * y).sum(), [x], create_graph=True)
        g.sum().backward()
        results.append((tuple(y.shape), g.tolist(), x.grad.tolist()))
    assert results[1] == results[0]
