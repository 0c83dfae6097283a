"""Shape, join and split ops: what the op table's samples cannot express.

Error types and messages, node names that depend on memory layout, identity
results, multiple outputs, second-order graphs through the rules' tensor
paths, and gradients against finite differences. Every check compares with
torch 2.13 or with mathematics.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import engine
from engine import _ops_shape


def _x(backend, shape=(2, 3), dtype="float64", grad=True):
    data = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape) / 7 - 0.3
    return backend.tensor(data.tolist(), dtype=getattr(backend, dtype), requires_grad=grad)


def _raised(fn, backend):
    with pytest.raises(Exception) as info:
        fn(backend)
    return type(info.value), str(info.value)


MISUSE = {
    "reshape-size": lambda b: _x(b).reshape(4, 5),
    "reshape-two-inferred": lambda b: _x(b).reshape(-1, -1),
    "reshape-negative": lambda b: _x(b).reshape(-2, 3),
    "reshape-bad-inferred": lambda b: _x(b).reshape(-1, 4),
    "reshape-empty-ambiguous": lambda b: _x(b, (0,)).reshape(-1, 0),
    "reshape-float": lambda b: _x(b).reshape((2.0, 3)),
    "view-non-viewable": lambda b: _x(b).t().view(6),
    "flatten-order": lambda b: _x(b, (2, 3, 4)).flatten(2, 1),
    "flatten-dim": lambda b: _x(b).flatten(0, 2),
    "unflatten-product": lambda b: _x(b).unflatten(1, (2, 2)),
    "unflatten-empty": lambda b: _x(b).unflatten(1, ()),
    "unflatten-negative-dim": lambda b: _x(b).unflatten(-1, (2, 2)),
    "squeeze-dim": lambda b: _x(b).squeeze(2),
    "squeeze-twice": lambda b: _x(b, (1, 2, 1)).squeeze((0, 0)),
    "unsqueeze-dim": lambda b: _x(b).unsqueeze(3),
    "transpose-dim": lambda b: _x(b).transpose(0, 2),
    "permute-length": lambda b: _x(b).permute(0),
    "permute-duplicate": lambda b: _x(b).permute(0, 0),
    "t-3d": lambda b: _x(b, (2, 3, 4)).t(),
    "mT-1d": lambda b: _x(b, (3,)).mT,
    "mH-1d": lambda b: _x(b, (3,)).mH,
    "H-3d": lambda b: _x(b, (2, 3, 4)).H,
    "H-1d": lambda b: _x(b, (3,)).H,
    "adjoint-1d": lambda b: _x(b, (3,)).adjoint(),
    "expand-size": lambda b: _x(b).expand(3, 3),
    "expand-fewer": lambda b: _x(b).expand(3),
    "expand-last-dim-first": lambda b: _x(b).expand(1, -2),
    "expand-leading-minus-one": lambda b: _x(b).expand(-1, 2, 3),
    "expand-leading-negative": lambda b: _x(b).expand(-3, 2, 3),
    "expand-negative-over-one": lambda b: _x(b, (2, 1)).expand(2, -2),
    "expand-0d-minus-one": lambda b: _x(b, ()).expand(-1),
    "broadcast_to-0d-minus-one": lambda b: b.broadcast_to(_x(b, ()), (2, -1)),
    "broadcast_to-leading-minus-one": lambda b: b.broadcast_to(_x(b), (-1, 2, 3)),
    "broadcast_to-size": lambda b: b.broadcast_to(_x(b), (3, 3)),
    "repeat-fewer": lambda b: _x(b).repeat(2),
    "repeat-negative": lambda b: _x(b).repeat(-1, 1),
    "flip-duplicate": lambda b: b.flip(_x(b), (1, -1)),
    "flip-dim": lambda b: b.flip(_x(b), (2,)),
    "roll-misaligned": lambda b: b.roll(_x(b), (1, 2), (0,)),
    "roll-no-dims": lambda b: b.roll(_x(b), (1, 2)),
    "roll-0d-dim": lambda b: b.roll(_x(b, ()), 1, 0),
    "roll-0d-negative-dim": lambda b: b.roll(_x(b, ()), 1, -1),
    "roll-0d-dims": lambda b: b.roll(_x(b, ()), (1, 1), (5, 0)),
    "narrow-0d": lambda b: _x(b, ()).narrow(0, 0, 1),
    "narrow-length": lambda b: _x(b).narrow(1, 0, -1),
    "narrow-start": lambda b: _x(b).narrow(1, -4, 1),
    "narrow-end": lambda b: _x(b).narrow(1, 2, 2),
    "tril-1d": lambda b: b.tril(_x(b, (3,))),
    "triu-1d": lambda b: b.triu(_x(b, (3,))),
    "diagonal-same-dims": lambda b: _x(b, (2, 3, 4)).diagonal(0, 1, -2),
    "diagonal-1d": lambda b: _x(b, (3,)).diagonal(),
    "cat-empty-list": lambda b: b.cat([]),
    "cat-tensor": lambda b: b.cat(_x(b)),
    "cat-not-tensor": lambda b: b.cat([_x(b), 1]),
    "cat-0d": lambda b: b.cat((_x(b), _x(b, ()))),
    "cat-ndim": lambda b: b.cat((_x(b, (3,)), _x(b))),
    "cat-sizes": lambda b: b.cat((_x(b), _x(b, (2, 4)))),
    "cat-dim": lambda b: b.cat((_x(b), _x(b)), 2),
    "cat-dim-type": lambda b: b.cat((_x(b), _x(b)), "a"),
    "stack-empty": lambda b: b.stack([]),
    "stack-tensor": lambda b: b.stack(_x(b)),
    "stack-sizes": lambda b: b.stack((_x(b), _x(b, (3, 2)))),
    "stack-dim": lambda b: b.stack((_x(b), _x(b)), 3),
    "split-0d": lambda b: _x(b, ()).split(1),
    "split-negative": lambda b: _x(b).split(-1, 1),
    "split-zero": lambda b: _x(b).split(0, 1),
    "split-sum": lambda b: _x(b).split([1, 1], 1),
    "split-negative-size": lambda b: _x(b).split([-1, 4], 1),
    "split-sum-negative-dim": lambda b: _x(b).split([2, 2], -1),
    "split_with_sizes-negative-dim": lambda b: b.split_with_sizes(_x(b), (2, 2), -1),
    "chunk-zero": lambda b: _x(b).chunk(0),
    "chunk-0d": lambda b: _x(b, ()).chunk(1),
    "unbind-0d": lambda b: _x(b, ()).unbind(),
    "unbind-dim": lambda b: _x(b).unbind(2),
}


@pytest.mark.parametrize("name", sorted(MISUSE))
def test_misuse_raises_torchs_error(name):
    assert _raised(MISUSE[name], engine) == _raised(MISUSE[name], torch)


def _names(t):
    """The node names of `t`'s graph down to the leaves, depth first."""
    out, stack = [], [t.grad_fn]
    while stack:
        node = stack.pop()
        if node is None:
            continue
        out.append(node.name())
        stack.extend(n for n, _ in reversed(node.next_functions))
    return out


LAYOUT_CHAINS = {
    "reshape-contiguous": lambda x: x.reshape(3, 2),
    "reshape-transposed-copy": lambda x: x.t().reshape(6),
    "reshape-transposed-alias": lambda x: x.t().reshape(3, 1, 2),
    "reshape-transposed-same-shape": lambda x: x.t().reshape(3, 2),
    "flatten-transposed": lambda x: x.t().flatten(),
    "reshape-narrowed": lambda x: x.narrow(1, 0, 2).reshape(4),
    "reshape-expanded": lambda x: x.narrow(0, 0, 1).expand(2, 3).reshape(6),
    "reshape-flipped": lambda x: x.flip((0,)).reshape(6),
    "reshape-diagonal": lambda x: x.diagonal().reshape(2),
    "reshape-unsqueezed-transpose": lambda x: x.t().unsqueeze(0).reshape(3, 2),
    "view-transposed": lambda x: x.t().view(3, 1, 2),
    "contiguous-transposed": lambda x: x.t().contiguous(),
    "clone-transposed-keeps-layout": lambda x: x.t().clone().reshape(6),
    "T-matrix": lambda x: x.T,
    "split-then-reshape": lambda x: x.split(2, 1)[0].reshape(-1),
}


@pytest.mark.parametrize("name", sorted(LAYOUT_CHAINS))
def test_node_names_follow_memory_layout_as_in_torch(name):
    chain = LAYOUT_CHAINS[name]
    assert _names(chain(_x(engine))) == _names(chain(_x(torch)))


def test_no_op_results_are_the_input_itself():
    for backend in (engine, torch):
        x, v = _x(backend), _x(backend, (3,))
        assert x.contiguous() is x
        assert x.flatten(1) is x and v.flatten() is v
        assert x.t().contiguous() is not x


SPLITS = {
    "split": lambda b, x: x.split(2, 1),
    "split-sizes": lambda b, x: x.split([1, 2], 1),
    "split-function": lambda b, x: b.split(x, 1),
    "chunk": lambda b, x: x.chunk(2, 1),
    "unbind": lambda b, x: x.unbind(1),
}


@pytest.mark.parametrize("name", sorted(SPLITS))
def test_multiple_outputs_are_tuples_with_torchs_nodes_and_partial_gradients(name):
    op = SPLITS[name]
    results = []
    for backend in (engine, torch):
        x = _x(backend)
        pieces = op(backend, x)
        (pieces[-1] * 3).sum().backward()   # only the last piece carries a gradient
        results.append((type(pieces), [p.grad_fn.name() for p in pieces], x.grad.numpy()))
    (got_type, got_names, got_grad), (want_type, want_names, want_grad) = results
    assert got_type is want_type is tuple and got_names == want_names
    np.testing.assert_array_equal(got_grad, want_grad)


def test_empty_pieces_and_repeats_match_torch():
    cases = [lambda b, x: x.repeat(0, 2), lambda b, x: x.narrow(1, 3, 0),
             lambda b, x: _x(b, (0,)).chunk(3), lambda b, x: x.diagonal(5)]
    for case in cases:
        got, want = case(engine, _x(engine)), case(torch, _x(torch))
        got, want = (got, want) if isinstance(got, tuple) else ((got,), (want,))
        assert [tuple(o.shape) for o in got] == [tuple(o.shape) for o in want]
        assert [o.grad_fn.name() for o in got] == [o.grad_fn.name() for o in want]


def test_cat_skips_legacy_empty_tensors_and_promotes():
    results = {}
    for backend in (engine, torch):
        x = _x(backend, dtype="float32")
        empty = backend.tensor([], dtype=backend.float64, requires_grad=True)
        index = backend.tensor([[1, 2, 3]])
        out = backend.cat((x, empty, index))
        (out * out).sum().backward()
        results[backend.__name__] = (tuple(out.shape), str(out.dtype), x.grad.numpy(), tuple(empty.grad.shape))
    got, want = results["engine"], results["torch"]
    assert got[:2] == want[:2] and got[3] == want[3]
    np.testing.assert_allclose(got[2], want[2])



def test_cat_gives_a_legacy_empty_input_a_constant_gradient_like_torch():
    # Fuzzer finding: torch's cat backward gives a skipped 1-d empty input a fresh zeros({0})
    # outside the graph, so differentiating that gradient again raises.
    results = {}
    for backend in (engine, torch):
        x = _x(backend, grad=False)
        empty = backend.tensor([], dtype=backend.float64, requires_grad=True)
        out = backend.cat([x, empty], dim=1)
        grad, = backend.autograd.grad((out * out).sum(), [empty], create_graph=True)
        results[backend.__name__] = (tuple(grad.shape), str(grad.dtype), grad.requires_grad,
                                     _raised(lambda b: grad.sum().backward(), backend))
    assert results["engine"] == results["torch"]


SECOND_ORDER = {
    "reshape": lambda b, x: x.reshape(3, 2),
    "flatten": lambda b, x: x.flatten(),
    "squeeze": lambda b, x: x.unsqueeze(1).squeeze(),
    "permute": lambda b, x: x.permute(1, 0),
    "T": lambda b, x: x.T,
    "t": lambda b, x: x.t(),
    "t-1d": lambda b, x: x.unbind()[0].t(),
    "transpose": lambda b, x: x.transpose(0, 1),
    "expand": lambda b, x: x.unsqueeze(0).expand(2, 2, 3),
    "repeat": lambda b, x: x.repeat(2, 1, 2),
    "flip": lambda b, x: b.flip(x, (0, 1)),
    "roll": lambda b, x: b.roll(x, (1, -1), (0, 1)),
    "roll-flat": lambda b, x: b.roll(x, 2),
    "tril": lambda b, x: b.tril(x, 0),
    "triu": lambda b, x: b.triu(x, 1),
    "diagonal": lambda b, x: b.diagonal(x, 1),
    "narrow": lambda b, x: x.narrow(1, 1, 2),
    "clone": lambda b, x: x.clone(),
    "cat": lambda b, x: b.cat((x, x * 2), 1),
    "stack": lambda b, x: b.stack((x, x * 2), 1),
    "split": lambda b, x: x.split([1, 2], 1)[1],
    "chunk": lambda b, x: x.chunk(2, 1)[0],
    "unbind": lambda b, x: x.unbind(1)[2],
}


@pytest.mark.parametrize("name", sorted(SECOND_ORDER))
def test_second_order_gradients_through_the_rules_tensor_paths(name):
    """(op(x)**3).sum(): the first gradient records the op's backward, the second runs it."""
    op = SECOND_ORDER[name]
    results = []
    for backend in (engine, torch):
        x = _x(backend)
        y = op(backend, x)
        weights = backend.tensor(np.linspace(-1, 1, y.numel()).reshape(tuple(y.shape)).tolist(),
                                 dtype=backend.float64)
        (grad,) = _grad(backend, ((y * y * y) * weights).sum(), x, create_graph=True)
        (second,) = _grad(backend, (grad * grad).sum(), x)
        results.append((grad.detach().numpy(), second.numpy()))
    for got, want in zip(*results):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def _grad(backend, output, input, create_graph=False):
    """d output / d input with create_graph, through backward() on both backends."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Using backward\\(\\) with create_graph=True")
        output.backward(create_graph=create_graph)
    grad = input.grad
    input.grad = None
    return (grad,)


FD_CASES = {
    "repeat-roll-diagonal": lambda b, x: b.diagonal(b.roll(x.repeat(2, 1), 1, 0), 1).exp().sum(),
    "cat-split": lambda b, x: sum((p * p).sum() * (i + 1) for i, p in enumerate(b.cat((x, x.t().reshape(2, 3)), 1)
                                                                                .split([2, 4], 1))),
    "stack-unbind-tril": lambda b, x: (b.tril(b.stack(x.unbind(1), 0), -1).tanh() * x.sum()).sum(),
}


@pytest.mark.parametrize("name", sorted(FD_CASES))
def test_float64_gradients_match_finite_differences(name):
    f = FD_CASES[name]
    x = _x(engine)
    f(engine, x).backward()
    base = x.detach().numpy().copy()
    numeric = np.zeros_like(base)
    h = 1e-6
    for i in np.ndindex(base.shape):
        values = []
        for step in (h, -h):
            shifted = base.copy()
            shifted[i] += step
            values.append(f(engine, engine.tensor(shifted.tolist(), dtype=engine.float64)).item())
        numeric[i] = (values[0] - values[1]) / (2 * h)
    np.testing.assert_allclose(x.grad.numpy(), numeric, rtol=1e-6, atol=1e-8)


def test_graphs_stay_usable_after_backward_since_nothing_is_saved():
    for backend in (engine, torch):
        x = _x(backend)
        y = backend.cat((x.t().reshape(-1), x.diagonal(), x.repeat(2, 1).flatten()))
        y.sum().backward()
        y.sum().backward()   # no saved tensors: torch allows a second pass without retain_graph
        np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 3), 2.0 * 3) + 2 * np.eye(2, 3))


def test_deprecated_T_warns_once_with_torchs_message():
    _ops_shape._warned.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _x(engine, (3,)).T
        _x(engine, (3,)).T
        _x(engine, ()).T
        _x(engine, ()).T
    assert [str(w.message) for w in caught] == [
        "The use of `x.T` on tensors of dimension other than 2 to reverse their shape is deprecated and it "
        "will throw an error in a future release. Consider `x.mT` to transpose batches of matrices or "
        "`x.permute(*torch.arange(x.ndim - 1, -1, -1))` to reverse the dimensions of a tensor.",
        "Tensor.T is deprecated on 0-D tensors. This function is the identity in these cases."]


@pytest.mark.parametrize("dim", [0, -1])
def test_unflatten_of_a_0d_tensor_raises_torch_wrapped_error(dim):
    """torch re-raises the inner error as RuntimeError, its message followed by a C++
    backtrace (addresses vary): the engine's message is torch's up to that backtrace."""
    messages = []
    for backend in (torch, engine):
        with pytest.raises(RuntimeError) as info:
            backend.unflatten(backend.tensor(1.0), dim, (1,))
        messages.append(str(info.value))
    assert messages[0].startswith(messages[1] + "\n")


@pytest.mark.parametrize("name, message", [
    ("mT", "Tensor.mT is deprecated on 0-D tensors. This function is the identity in these cases."),
    ("mH", "Tensor.mH is deprecated on 0-D tensors. Consider using x.conj().")])
def test_matrix_transposes_of_a_0d_tensor_are_the_tensor_itself_like_torch(name, message):
    seen = []
    for backend in (torch, engine):
        x = backend.tensor(0.5, requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            y = getattr(x, name)
        y.sum().backward()
        seen.append((y is x, y.grad_fn, x.grad.item()))
    assert seen[0] == seen[1]
    # torch's warning (once per process, so not observable here after another test) is this one
    _ops_shape._warned.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        getattr(engine.tensor(0.5), name)
        getattr(engine.tensor(0.5), name)
    assert [str(w.message) for w in caught] == [message]


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "bool"])
def test_expand_to_fewer_dims_names_the_type_as_torch(dtype):
    # Fuzzer finding: torch names a bool tensor CPUBoolType there, the others torch.XxxTensor.
    def expand(backend):
        backend.zeros(1, 1, 1, dtype=getattr(backend, dtype)).expand(2, 2)
    assert _raised(expand, engine) == _raised(expand, torch)


@pytest.mark.parametrize("shape", [(1, 3, 1), (1, 1, 3, 1), (2, 1, 3), (3, 1, 1)])
def test_a_masked_assignment_of_a_wrong_shape_names_the_value_without_leading_ones(shape):
    # Fuzzer finding: index_put_ drops the value's leading 1-sized dims, in its message too.
    def assign(backend):
        x = backend.zeros(2, 2)
        x[backend.tensor([[True, False], [False, True]])] = backend.zeros(*shape)
    assert _raised(assign, engine) == _raised(assign, torch)


RESULT_LAYOUTS = {
    "softmax": lambda b, x: b.nn.functional.softmax(x, 1),
    "log_softmax": lambda b, x: b.nn.functional.log_softmax(x, 0),
    "layer_norm": lambda b, x: b.nn.functional.layer_norm(x, (2,)),
    "cat": lambda b, x: b.cat([x, x], 1),
    "stack": lambda b, x: b.stack([x, x], 2),
    "repeat": lambda b, x: x.repeat(1, 1),
    "roll": lambda b, x: x.roll(1, 0),
    "flip": lambda b, x: x.flip((0,)),
    "masked_fill": lambda b, x: x.masked_fill(x > 0, 1.0),
    "cumsum": lambda b, x: x.cumsum(1),
    "clone": lambda b, x: x.clone(),
}


@pytest.mark.parametrize("name", sorted(RESULT_LAYOUTS))
def test_results_of_a_transposed_input_have_torchs_layout(name):
    # Fuzzer finding: torch's softmax writes a new contiguous tensor whatever the input's layout,
    # so reshaping the softmax of a transposed input records ViewBackward0; numpy's result kept
    # the transposed order (ReshapeAliasBackward0). Other kernels keep the input's dim order.
    def program(b):
        y = RESULT_LAYOUTS[name](b, _x(b).t())
        return [_names(y.reshape(y.shape)), _names(y.reshape(-1)), _names(y.contiguous())]
    assert program(engine) == program(torch)


@pytest.mark.parametrize("shape, repeats", [((2, 3), (2, 1)), ((2, 3), (3, 2, 2)), ((3,), (2, 0)), ((0,), (-1,)),
                                            ((0,), (-2,)), ((), (3,)), ((0, 2), (-1, 3))])
@pytest.mark.parametrize("create_graph", [False, True])
def test_repeat_backward_is_torchs_reshape_and_sum(shape, repeats, create_graph):
    # Fuzzer finding: repeat(-1) of an empty tensor is allowed, and its backward fails in torch's
    # reshape of the gradient to (-1, 0) (the -1 inferred): a RuntimeError, not numpy's ValueError.
    def program(b):
        x = b.zeros(*shape, requires_grad=True) if 0 in shape else \
            b.tensor(np.arange(float(np.prod(shape))).reshape(shape).tolist(), requires_grad=True)
        y = x.repeat(*repeats)
        weights = b.tensor(np.arange(float(np.prod(tuple(y.shape)))).reshape(tuple(y.shape)).tolist())
        try:
            g, = b.autograd.grad((y * weights).sum(), x, create_graph=create_graph)
        except RuntimeError as exc:
            return str(exc)
        return g.detach().numpy().tolist()
    assert program(engine) == program(torch)


PRESERVED_LAYOUTS = {
    "transposed": lambda x: x.mT,
    "sliced": lambda x: x[:, ::2],
    "transposed then sliced": lambda x: x.mT[:, ::2],
    "expanded": lambda x: x.expand(2, 4, 6),
    "expanded, transposed": lambda x: x.unsqueeze(0).expand(2, 4, 6).transpose(0, 2),
    "expanded, sliced": lambda x: x.unsqueeze(1).expand(4, 3, 6)[..., ::3],
}


def _node_chain(t) -> list:
    names, node = [], t.grad_fn
    while node is not None:
        names.append(node.name())
        node = next((child for child, _ in node.next_functions if child is not None), None)
    return names


@pytest.mark.parametrize("layout", sorted(PRESERVED_LAYOUTS))
@pytest.mark.parametrize("op", ["flip", "clone"])
def test_flip_and_clone_lay_out_their_result_as_torchs_empty_like(layout, op):
    """Fuzzer finding: flip of an expanded tensor, then flatten: torch's result of flip (and
    clone) is empty_like(input, preserve_format), dense in the input's order of dims with a
    broadcast dim left where it stands, so flatten is a view (ViewBackward0); the engine's copy
    in numpy's order "K" made flatten copy (UnsafeViewBackward0)."""
    results = []
    for m in (torch, engine):
        x = m.tensor(np.arange(24.0).reshape(4, 6).tolist(), requires_grad=True)
        y = PRESERVED_LAYOUTS[layout](x)
        out = y.flip(0) if op == "flip" else y.clone()
        flat = out.flatten()
        try:
            viewed = out.view(-1).tolist()
        except RuntimeError as error:
            viewed = str(error)
        results.append((_node_chain(flat), _node_chain(out.flatten(1)), viewed, flat.tolist()))
    assert results[1] == results[0]


@pytest.mark.parametrize("op", ["tril", "triu"])
@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 4)])
def test_tril_and_triu_of_a_transposed_tensor_are_row_major_as_torchs(op, shape):
    # Fuzzer finding (10-min campaign, session 7): tril(x.T) kept numpy's column-major layout, so
    # flatten copied (UnsafeViewBackward0) where torch views (ViewBackward0).
    results = []
    for lib in (torch, engine):
        x = lib.zeros(shape, requires_grad=True)
        y = getattr(lib, op)(x.permute(*reversed(range(len(shape)))), diagonal=-1)
        flat = y.flatten()
        row_major = y.is_contiguous() if lib is torch else y._data.flags.c_contiguous   # (the engine has no strides API)
        results.append((row_major, type(flat.grad_fn).__name__))
    assert results[0] == results[1] == (True, "ViewBackward0")


@pytest.mark.parametrize("repeats", [(2, 1), (1, 3), (2, 2, 1)])
def test_a_repeat_of_an_empty_view_is_a_new_tensor_as_torch(repeats):
    # Campaign seed 12: np.tile of an empty array returned a view of it, so neg_ of a repeat of an
    # empty narrow of a leaf was refused as an in-place op on a view of the leaf; torch's repeat
    # always makes a new tensor.
    outcomes = []
    for backend in (engine, torch):
        x = backend.zeros(2, 5, requires_grad=True)
        y = x.narrow(1, 1, 0).repeat(*repeats)
        y.register_hook(lambda grad: grad * 2.0)
        y.neg_()
        y.sum().backward()
        outcomes.append((tuple(y.shape), y._base is None, x.grad.tolist()))
    assert outcomes[0] == outcomes[1]
