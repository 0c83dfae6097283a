"""Engine autograd mechanics: scheduler, broadcasting reduction, graph lifetime."""
from __future__ import annotations

import gc
import warnings

import numpy as np
import pytest
import torch

import engine
from engine._autograd import sum_to_shape


def test_a_chain_of_100000_ops_backwards_without_recursion():
    x = engine.tensor([1.0, 2.0], dtype=engine.float64, requires_grad=True)
    y = x
    for i in range(100_000):
        y = y * 1.00001 if i % 2 else y + 0.5
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.00001 ** 50_000] * 2, rtol=1e-12)
    del y          # freeing the chain must not overflow the C stack either
    gc.collect()


def test_diamond_graph_accumulates_every_path_once():
    x = engine.tensor([3.0], requires_grad=True)
    a = x * 2
    b = a * a          # da/dx twice through one node
    c = a + b + x
    c.sum().backward()
    assert x.grad.tolist() == [1 + 2 + 2 * 2 * 6.0]


def test_branch_without_gradient_does_not_block_the_rest():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    frozen = engine.tensor([5.0, 6.0])
    y = (x * frozen).sum() + (frozen * 3).sum()
    y.backward()
    assert x.grad.tolist() == [5.0, 6.0]
    assert frozen.grad is None


@pytest.mark.parametrize("grad_shape, shape", [((2, 3), (3,)), ((2, 3), (1, 3)), ((4, 2, 3), (2, 1)),
                                                ((2, 3), ()), ((3,), (3,))])
def test_sum_to_shape_undoes_broadcasting(grad_shape, shape):
    g = np.arange(np.prod(grad_shape), dtype=np.float64).reshape(grad_shape)
    got = sum_to_shape(engine.tensor(g), shape)
    want = torch.tensor(g).sum_to_size(shape) if shape else torch.tensor(g).sum()
    assert tuple(got.shape) == shape
    np.testing.assert_allclose(got.numpy(), want.numpy())


def test_graph_with_saved_tensors_is_freed_after_backward():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()
    y.sum().backward()
    assert y.grad_fn._saved is None
    assert not hasattr(y.grad_fn, "result")
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.sum().backward()


def test_retain_graph_keeps_saved_tensors_for_a_second_backward():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.tolist() == [4.0, 8.0]


def test_accumulated_grad_is_updated_in_place_like_torch():
    for backend in (engine, torch):
        x = backend.tensor([1.0, 2.0], requires_grad=True)
        (x * 2).sum().backward()
        first = x.grad
        (x * 3).sum().backward()
        assert x.grad is first and first.tolist() == [5.0, 5.0]


def test_a_first_gradient_nothing_else_holds_is_adopted_without_a_copy(monkeypatch):
    # torch's AccumulateGrad steals such a gradient; the engine's copy was 3 x 4 MB in W4.
    rng = np.random.default_rng(0)
    x, w = (engine.tensor(rng.standard_normal((6, 6)).astype(np.float32), requires_grad=True) for _ in range(2))
    copies = []
    empty_like = np.empty_like
    monkeypatch.setattr(np, "empty_like", lambda *a, **k: copies.append(a) or empty_like(*a, **k))
    (x @ w).sum().backward()
    assert not copies
    np.testing.assert_allclose(x.grad.numpy(), np.ones((6, 6), np.float32) @ w.detach().numpy().T, rtol=1e-6)


def test_a_linear_layers_weight_gradient_is_adopted_without_a_copy(monkeypatch):
    # The weight is used as weight.t(): its gradient is computed transposed and TBackward0
    # transposes it back; that transpose of a transposed array is the array itself, which
    # AccumulateGrad then adopts (the copy was 800 KB per W3 round).
    rng = np.random.default_rng(0)
    x = engine.tensor(rng.standard_normal((4, 20)).astype(np.float32))
    w = engine.tensor(rng.standard_normal((30, 20)).astype(np.float32), requires_grad=True)
    b = engine.tensor(np.zeros(30, np.float32), requires_grad=True)
    copied = []
    empty_like = np.empty_like
    monkeypatch.setattr(np, "empty_like", lambda a, *r, **k: copied.append(np.shape(a)) or empty_like(a, *r, **k))
    engine.nn.functional.linear(x, w, b).sum().backward()
    assert (30, 20) not in copied
    want = torch.ones(4, 30).t() @ torch.from_numpy(x.numpy())
    assert w.grad.numpy().tobytes() == want.numpy().tobytes()


def test_a_first_gradient_held_elsewhere_is_copied_as_torch_does():
    # A gradient the user passed, one a hook kept, one two leaves received and a retained one:
    # modifying a .grad in place afterwards leaves the others as they were, in both backends.
    got = {}
    for backend in (engine, torch):
        x = backend.tensor([1.0, 2.0], requires_grad=True)
        y = backend.tensor([3.0, 4.0], requires_grad=True)
        z = backend.tensor([5.0, 6.0], requires_grad=True)
        given = backend.tensor([1.0, 1.0])
        x.backward(given)
        kept = []
        y.register_hook(lambda g: kept.append(g))
        s = y * 2
        s.retain_grad()
        (s + z).backward(backend.tensor([1.0, 1.0]))
        for t in (x, y, z):
            t.grad.add_(10)
        got[backend] = [given.tolist(), kept[0].tolist(), s.grad.tolist(), x.grad.tolist(), y.grad.tolist(),
                        z.grad.tolist()]
    assert got[engine] == got[torch]


def test_create_graph_first_gradient_is_a_differentiable_copy():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        (x * x).sum().backward(create_graph=True)
    assert x.grad.grad_fn.name() == "torch::autograd::CopyBackwards"
    assert repr(x.grad).endswith("grad_fn=<CopyBackwards>)")
    assert x.grad.requires_grad


def test_gradient_argument_keeps_the_output_dtype():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    (x * 2).backward(engine.tensor([1.0, 1.0], dtype=engine.float64))
    assert x.grad.dtype is engine.float32


def test_no_grad_records_nothing_and_restores_the_mode():
    x = engine.tensor([1.0], requires_grad=True)
    with engine.no_grad():
        assert not engine.is_grad_enabled()
        y = x * 2
        with engine.enable_grad():
            z = x * 2
    assert engine.is_grad_enabled()
    assert y.grad_fn is None and not y.requires_grad
    assert z.grad_fn.name() == "MulBackward0"


def test_unsupported_dtype_is_named():
    with pytest.raises(NotImplementedError, match="int32"):
        engine.tensor(np.array([1, 2], dtype=np.int32))


def test_tensor_from_python_floats_keeps_float64_precision():
    value = 0.1 + 1e-12
    assert engine.tensor([value], dtype=engine.float64).item() == value
    assert engine.tensor(value, dtype=engine.float64).item() == torch.tensor(value, dtype=torch.float64).item()


def test_a_weight_used_transposed_gets_a_gradient_laid_out_like_the_weight():
    # torch's layout contract (and mm_mat2_backward): the gradient of w in x @ w.t() is
    # computed row-major like w, so SGD's update walks both arrays in memory order.
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((8, 5), (3, 5), (3,)))
    got = {}
    for backend in (engine, torch):
        wt = backend.tensor(w, requires_grad=True)
        bt = backend.tensor(b, requires_grad=True)
        backend.nn.functional.linear(backend.tensor(x), wt, bt).square().sum().backward()
        got[backend] = wt.grad
        assert wt.grad.shape == wt.shape
    assert got[engine].numpy().flags.c_contiguous and got[torch].is_contiguous()
    np.testing.assert_allclose(got[engine].numpy(), got[torch].numpy(), rtol=1e-5)


def test_zeroing_by_bit_mask_is_np_where_bit_for_bit():
    from engine._ops import _zero_where
    for dtype, ints in ((np.float32, np.int32), (np.float64, np.int64)):
        x = np.array([-1.0, -0.0, 0.0, np.nan, -np.nan, -np.inf, np.inf, 2.5, 1e-45], dtype)
        for mask in (x < 0, ~(x < 0), np.isnan(x)):
            want = np.where(mask, np.zeros((), dtype), x)
            got = _zero_where(mask, x)
            assert got.dtype == want.dtype and (got.view(ints) == want.view(ints)).all()
        # A broadcast mask, an integer array: the np.where path.
        assert (_zero_where(np.array(True), x) == 0).all()
        assert _zero_where(x[:3] < 0, np.arange(3)).tolist() == [0, 1, 2]


def test_relu_keeps_negative_zero_and_nan_like_torch():
    values = [-2.0, -0.0, 0.0, float("nan"), float("-inf"), 3.0]
    got = engine.relu(engine.tensor(values)).numpy()
    want = torch.relu(torch.tensor(values)).numpy()
    assert (got.view(np.int32) == want.view(np.int32)).all()


def test_tensor_hooks_run_on_tensor_gradients_with_create_graph():
    results = []
    for backend in (engine, torch):
        x = backend.tensor([1.0, -2.0], dtype=backend.float64, requires_grad=True)
        y = x * x
        y.register_hook(lambda grad: grad * 3.0)
        g, = backend.autograd.grad(y.sum(), x, create_graph=True)
        g.sum().backward()
        results.append((g.detach().tolist(), x.grad.tolist()))
    assert results[0] == results[1]


def _transcript(backend, program) -> list:
    """What `program(backend, log)` logs, ending with the exception it raises (type and message)."""
    log = []
    try:
        program(backend, log.append)
    except Exception as exc:   # noqa: BLE001 - the exception is the observation
        log.append(f"{type(exc).__name__}: {exc}")
    return log


def _shape_or_none(g):
    return None if g is None else tuple(g.shape)


UNDEFINED_GRADIENT = {
    # Fuzzer finding: torch's norm with p=0 gives an undefined gradient; torch still runs the nodes
    # below it, calling tensor hooks (of leaves and non-leaves) with None.
    "hooks see None": lambda b, log: (
        [x := b.tensor([1.0, 0.0, 2.0], requires_grad=True), x.register_hook(lambda g: log(("leaf", g))),
         c := x.cos(), c.retain_grad(), c.register_hook(lambda g: log(("cos", g))),
         b.norm(c, p=0).backward(), log((x.grad, c.grad))]),
    "hook using the gradient raises": lambda b, log: (
        [x := b.tensor(0.5, requires_grad=True), x.register_hook(lambda g: g * 3.0),
         b.norm(x.cos(), p=0).backward()]),
    "hook replacing None": lambda b, log: (
        [x := b.tensor([1.0, 2.0], requires_grad=True), c := x.exp(),
         c.register_hook(lambda g: b.ones(2)), b.norm(c, p=0).backward()]),
    "a defined path wins": lambda b, log: (
        [x := b.tensor([1.0, 0.0], requires_grad=True), x.register_hook(lambda g: log(_shape_or_none(g))),
         (b.norm(x, p=0) + x.sum()).backward(), log(x.grad.tolist())]),
    "grad not allowed unused": lambda b, log: b.autograd.grad(b.norm(b.tensor([1.0, 2.0], requires_grad=True).cos(), p=0),
                                                              [b.tensor(0.0, requires_grad=True)]),
    "grad of an undefined input": lambda b, log: (
        [x := b.tensor([1.0, 0.0], requires_grad=True),
         log(b.autograd.grad(b.norm(x.cos(), p=0), [x], allow_unused=True)),
         log(b.autograd.grad(b.norm(x.cos(), p=0), [x], create_graph=True, materialize_grads=True)[0].tolist()),
         b.autograd.grad(b.norm(x.cos(), p=0, dim=0), [x], create_graph=True)]),
    "saved tensors are still unpacked": lambda b, log: (
        [x := b.tensor([1.0, 0.0], requires_grad=True), a := x.exp(),
         b.norm(a, p=0).backward(), log("first"), b.norm(a, p=0).backward()]),
    "saved versions are still checked": lambda b, log: _modify_then_backward(b),
}


def _modify_then_backward(b):
    x = b.tensor([1.0, 0.0], requires_grad=True)
    a = x.exp()                       # ExpBackward0 saves its result
    n = b.norm(a * 1, p=0)
    with b.no_grad():
        a.mul_(2)
    n.backward()


@pytest.mark.parametrize("name", UNDEFINED_GRADIENT)
def test_undefined_gradients_flow_through_the_graph_like_torch(name):
    program = UNDEFINED_GRADIENT[name]
    got, want = _transcript(engine, program), _transcript(torch, program)
    assert got == want, f"\nengine: {got}\ntorch:  {want}"


def test_ops_in_threads_compute_quietly_and_concurrently():
    """The engine computes without numpy's floating-point warnings in any thread, and threads
    may run ops at the same time (large arrays: numpy releases the GIL inside the loop)."""
    import threading
    import warnings

    errors = []

    def work():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                for _ in range(20):
                    # (No backward: the engine's grad mode is global, torch's is per thread.)
                    x = engine.tensor(np.full(200_000, 3e38, np.float32))
                    y = (x * 10.0 + 1.0) / 0.0
                    assert np.isinf(y.numpy()).all()
        except Exception as e:   # noqa: BLE001 - reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    work()
    for t in threads:
        t.join()
    assert errors == []


def test_a_version_error_names_the_first_modified_saved_input_in_the_order_of_their_names():
    # Fuzzer finding: addcdiv_ of a detached alias of v by (itself, v): both saved inputs were
    # modified; torch checks tensor1 (now output 0 of Addcdiv) before tensor2 (output of Mm).
    def program(b):
        product = b.tensor([[-0.7, 0.5, -1.75]]).mm(b.tensor([[-1.0], [0.0], [0.0]], requires_grad=True))
        alias = product.detach()
        alias.addcdiv_(alias, product)
        with pytest.raises(RuntimeError) as info:
            alias.sum().backward()
        return str(info.value)
    assert program(engine) == program(torch)


@pytest.mark.parametrize("make_view", ["split", "narrow"])
def test_retain_grad_on_a_view_of_a_no_grad_view_keeps_its_gradient_as_torch(make_view):
    # Fuzzer finding: a view made under no_grad is a leaf (retain_grad does nothing), but a view
    # of it made with grad mode on has its own node (TBackward0) and retains its gradient.
    def run(b):
        x = b.tensor([[0.5, 1.0]], requires_grad=True)
        with b.no_grad():
            view = b.split(x, 2)[0] if make_view == "split" else x.narrow(1, 0, 2)
        view.retain_grad()
        t = view.t()
        t.retain_grad()
        (t * 3).sum().backward()
        return view.retains_grad, t.retains_grad, t.grad.numpy().tolist(), view.grad, x.grad
    assert run(engine) == run(torch)


@pytest.fixture
def no_cycle_collector():
    """What only reference counting frees (the cycle collector paused)."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.mark.parametrize("lib", [engine, torch], ids=["engine", "torch"])
def test_a_dead_leaf_frees_its_grad_without_the_cycle_collector(lib, no_cycle_collector):
    import weakref
    x = lib.tensor([1.0, 2.0], requires_grad=True)
    (x * 2).sum().backward()
    leaf, grad = weakref.ref(x), weakref.ref(x.grad)
    del x
    assert leaf() is None and grad() is None


@pytest.mark.parametrize("lib", [engine, torch], ids=["engine", "torch"])
@pytest.mark.parametrize("op", ["tanh", "exp", "sigmoid", "relu", "sqrt", "tanh_"])
def test_an_output_its_node_saved_is_freed_without_the_cycle_collector(lib, op, no_cycle_collector):
    # torch saves an output without its grad_fn: the output and its node form no cycle, so a graph
    # that never runs backward is freed by reference counting (the engine's saved output held the
    # tensor: `y = x.tanh(); del y` kept y until the cycle collector ran).
    import weakref
    x = lib.tensor([0.5, 2.0], requires_grad=True)
    y = getattr(x * 1, op)()
    out = weakref.ref(y)
    node = weakref.ref(y.grad_fn) if lib is engine else lambda: None   # (torch's nodes take no weak references)
    del y
    assert out() is None and node() is None


@pytest.mark.parametrize("retained", [True, False], ids=["output alive", "output dead"])
def test_a_saved_output_unpacks_for_a_double_backward_as_torchs(retained):
    # The engine rebuilds a dead saved output around its array as its node's output, as torch's unpacking.
    results = []
    for lib in (torch, engine):
        x = lib.tensor([0.3, -0.2, 1.5], requires_grad=True)
        y = x.tanh()
        loss = (y * y).sum()
        keep = y if retained else None
        del y
        g, = lib.autograd.grad(loss, x, create_graph=True)
        g.sum().backward()
        results.append((g.tolist(), x.grad.tolist(), type(g.grad_fn).__name__, keep is None))
    assert results[0] == results[1]


@pytest.mark.parametrize("lib", [engine, torch], ids=["engine", "torch"])
def test_a_leaf_keeps_its_hooks_and_live_graphs_share_its_accumulator(lib, no_cycle_collector):
    x = lib.tensor([1.0, 2.0], requires_grad=True)
    x.register_hook(lambda g: g * 10)      # no graph holds x's accumulator after this line
    (x * 2).sum().backward()
    assert x.grad.tolist() == [20.0, 20.0]
    y = lib.tensor([1.0], requires_grad=True)
    first = (y * 2).grad_fn.next_functions[0][0]
    assert (y * 3).grad_fn.next_functions[0][0] is first


@pytest.mark.parametrize("make", ["reshape", "slice", "transpose", "unsqueeze then expand"])
def test_a_view_of_a_tensor_without_grad_made_to_require_grad_is_a_leaf_that_accumulates(make):
    """arange(24.0).reshape(4, 6).requires_grad_(): the view is a leaf of its own in torch (its base
    does not require grad), with an AccumulateGrad; the engine gave it none (gradient None)."""
    views = {"reshape": lambda t: t.reshape(4, 6), "slice": lambda t: t[2:], "transpose": lambda t: t.reshape(4, 6).mT,
             "unsqueeze then expand": lambda t: t.unsqueeze(0).expand(2, 24)}
    results = []
    for m in (torch, engine):
        x = views[make](m.arange(24.0)).requires_grad_()
        y = (x * m.arange(float(x.numel())).reshape(x.shape)).sum()
        nodes = [type(child).__name__ for child, _ in y.grad_fn.next_functions[0][0].next_functions]
        y.backward()
        results.append((x.is_leaf, nodes, x.grad.tolist()))
    assert results[1] == results[0]


_NO_EDGE_OPERAND_OPS = {
    "mul": lambda m, v: v * v,
    "exp": lambda m, v: v.exp(),
    "gather": lambda m, v: v.gather(1, m.tensor([[0, 0]])),
    "index_select": lambda m, v: v.index_select(1, m.tensor([1, 1])),
    "scatter_add": lambda m, v: m.scatter_add(v, 1, m.tensor([[1, 1]]), v),
    "masked_fill": lambda m, v: v.masked_fill(m.tensor([[True, False]]), v[0, 0]),
}


@pytest.mark.parametrize("op", sorted(_NO_EDGE_OPERAND_OPS))
def test_a_second_backward_through_a_node_of_edgeless_operands_raises_when_torch_does(op):
    """Campaign finding (seed 9): scatter_add(v, dim, index, v) of a view of a leaf made under
    no_grad (it requires grad but has no edge) saved its index in the engine, so a second
    backward raised; torch saves what only src's gradient uses when src's gradient is to be
    computed (its edge), and what every gradient uses whenever the node exists."""
    def run(m):
        x = m.ones(2, 2, requires_grad=True)
        with m.no_grad():
            v = x[:1]
        loss = _NO_EDGE_OPERAND_OPS[op](m, v).sum()
        loss.backward()
        try:
            loss.backward()
        except RuntimeError as error:
            return str(error)[:60]
        return "second backward ran"
    assert run(engine) == run(torch)


def _implicit_backward_cases(lib):
    """(output, leaf) pairs: `output.backward()` is called without arguments, `leaf.grad` read."""
    x = lib.tensor([1.0, -2.0], requires_grad=True)
    with lib.no_grad():
        no_grad_view = x[:1]
    leaf = lib.tensor(2.5, requires_grad=True)
    return {
        "scalar": ((x * 3.0).sum(), x),
        "one element, 1-d": (x[:1] * 3.0, x),
        "one element, 2-d": ((x * 3.0).reshape(2, 1)[1:], x),
        "0-d leaf": (leaf, leaf),
        "float64": ((x.double() * 3.0).sum(), x),
        "not scalar": (x * 3.0, x),
        "integral": (lib.tensor(3).sum(), x),
        "no grad": (lib.tensor(1.0), x),
        "no-grad view of a leaf": (no_grad_view, x),
    }


@pytest.mark.parametrize("case", list(_implicit_backward_cases(torch)))
def test_backward_without_arguments_as_torch(case):
    """Tensor.backward() without arguments takes a shorter path (engine.autograd.backward_implicit):
    its gradients, and its errors in their order, are torch's."""
    results = []
    for lib in (engine, torch):
        out, leaf = _implicit_backward_cases(lib)[case]
        try:
            out.backward()
        except RuntimeError as error:
            results.append(("error", str(error)))
        else:
            results.append(("ok", None if leaf.grad is None else leaf.grad.tolist()))
    assert results[0] == results[1]
