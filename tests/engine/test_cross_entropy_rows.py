"""cross_entropy's path for a float32 batch with class targets (`functional._cross_entropy_rows`,
a classifier's training step, W3) against the general composition it replaces (`_log_softmax`
then `_nll_loss`), bit for bit: the loss, the log-probabilities the nodes save, the input's
gradient (plain and create_graph), the graph (node names, edges, saved names) and the errors;
on random shapes around its limits, every reduction, ignored targets, values of all magnitudes
with zeros of both signs, infinities and NaNs of several payloads; and its graph against torch's."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import engine
from engine.nn import functional as F


def _bits(a) -> bytes:
    """dtype, shape, layout and bytes (a gradient's layout decides the orientation, and bits, of later products)."""
    strides = str(np.asarray(a).strides).encode()
    a = np.ascontiguousarray(a)
    return a.dtype.str.encode() + str(a.shape).encode() + strides + a.tobytes()


def _values(rng, shape, hard: bool) -> np.ndarray:
    x = (rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 4)).astype(np.float32)
    if hard:
        pick = rng.random(shape)
        x[pick < 0.04] = 0.0
        x[(pick >= 0.04) & (pick < 0.08)] = -0.0
        x[(pick >= 0.08) & (pick < 0.09)] = np.inf
        x[(pick >= 0.09) & (pick < 0.10)] = -np.inf
        x[(pick >= 0.10) & (pick < 0.11)] = 3e38
        x[(pick >= 0.11) & (pick < 0.12)] = 1e-45
        nan = (pick >= 0.12) & (pick < 0.15)
        payloads = np.array([0x7FC00001, 0xFFC12345, 0x7FC00000, 0xFFC00000], np.uint32).view(np.float32)
        x[nan] = payloads[rng.integers(0, 4, int(nan.sum()))]
        if shape[0] > 1:
            x[0] = -0.0            # a row of zeros
            x[1, : shape[1] // 2] = 0.0
    return x


def _general(x, target, ignore_index, reduction):
    lp = F._log_softmax(x, 1)
    return F._nll_loss(lp, target, None, ignore_index, reduction)


def _run(fn, xs, ts, ignore_index, reduction, create_graph=False):
    x = engine.tensor(xs, requires_grad=True)
    target = engine.tensor(ts)
    loss = fn(x, target, ignore_index, reduction)
    node = loss.grad_fn
    lp_node = node.next_functions[0][0]
    graph = (type(node).__name__, [name for name, _, _ in node._saved], type(lp_node).__name__,
             [name for name, _, _ in lp_node._saved], len(node.next_functions), len(lp_node.next_functions),
             type(lp_node.next_functions[0][0]).__name__, node.next_functions[0][1], sorted(vars(node)),
             sorted(vars(lp_node)))
    lp = lp_node.result if hasattr(lp_node, "result") else None
    seed = np.random.default_rng(1).standard_normal(loss.shape).astype(np.float32)
    out = [_bits(loss.detach().numpy()), _bits(node.self), _bits(lp)]
    if create_graph:
        (g,) = engine.autograd.grad(loss, x, engine.tensor(seed), create_graph=True)
        out.append(_bits(g.detach().numpy()))
        out.append(type(g.grad_fn).__name__)
        (gg,) = engine.autograd.grad(g.sum(), x)
        out.append(_bits(gg.numpy()))
    else:
        loss.backward(engine.tensor(seed))
        out.append(_bits(x.grad.numpy()))
    return graph, out


def _fast(x, target, ignore_index, reduction):
    return F.cross_entropy(x, target, ignore_index=ignore_index, reduction=reduction)


def test_the_fast_path_is_taken():
    calls = []
    original = F._cross_entropy_rows

    def spy(*args):
        calls.append(args)
        return original(*args)
    F._cross_entropy_rows = spy
    try:
        x = engine.tensor(np.zeros((64, 10), np.float32), requires_grad=True)
        engine.nn.functional.cross_entropy(x, engine.tensor(np.arange(64) % 10))
        engine.nn.functional.cross_entropy(x[:, :7], engine.tensor(np.arange(64) % 7))   # C < 8: not taken
        engine.nn.functional.cross_entropy(x.double(), engine.tensor(np.arange(64) % 10))
    finally:
        F._cross_entropy_rows = original
    assert len(calls) == 1


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_rows_is_the_general_path_bit_for_bit(reduction):
    rng = np.random.default_rng({"mean": 1, "sum": 2, "none": 3}[reduction])
    shapes = [(64, 10), (1, 8), (2, 9), (3, 16), (17, 17), (33, 24), (64, 40), (100, 10), (256, 16), (512, 8),
              (5, 63), (4, 1024), (1, 4096), (409, 10), (128, 32)]
    for case in range(160):
        n, c = shapes[case % len(shapes)]
        hard = case % 3 == 0
        xs = _values(rng, (n, c), hard)
        ts = rng.integers(0, c, n)
        ignore_index = -100
        if case % 4 == 1:
            ignore_index = int(rng.integers(0, c))
        with np.errstate(all="ignore"):
            want = _run(_general, xs, ts, ignore_index, reduction, create_graph=case % 8 == 5)
            got = _run(_fast, xs, ts, ignore_index, reduction, create_graph=case % 8 == 5)
        assert got == want, (case, n, c, hard)


def test_errors_and_untracked_inputs_as_the_general_path():
    xs = np.random.default_rng(4).standard_normal((6, 9)).astype(np.float32)
    for ts in ([0, 1, 2, 3, 4, 9], [0, 1, 2, 3, 4, -1]):
        for fn in (_general, _fast):
            with pytest.raises(IndexError, match="out of bounds"):
                fn(engine.tensor(xs, requires_grad=True), engine.tensor(ts), -100, "mean")
    plain = F.cross_entropy(engine.tensor(xs), engine.tensor([0, 1, 2, 3, 4, 5]))
    with engine.no_grad():
        quiet = F.cross_entropy(engine.tensor(xs, requires_grad=True), engine.tensor([0, 1, 2, 3, 4, 5]))
    want = _general(engine.tensor(xs), engine.tensor([0, 1, 2, 3, 4, 5]), -100, "mean")
    for loss in (plain, quiet):
        assert loss.grad_fn is None and not loss.requires_grad and _bits(loss.numpy()) == _bits(want.numpy())


def test_graph_as_torchs():
    xs = np.random.default_rng(5).standard_normal((64, 10)).astype(np.float32)
    ts = np.random.default_rng(6).integers(0, 10, 64)
    names = []
    for backend in (engine, torch):
        x = (engine.tensor(xs, requires_grad=True) if backend is engine
             else torch.from_numpy(xs.copy()).requires_grad_())
        loss = backend.nn.functional.cross_entropy(x, backend.tensor(ts) if backend is engine else torch.from_numpy(ts))
        chain, node = [], loss.grad_fn
        while node is not None:
            chain.append((type(node).__name__, len(node.next_functions)))
            node = node.next_functions[0][0] if node.next_functions else None
        names.append(chain)
        loss.backward()
        names.append(x.grad.numpy().tobytes())
    assert names[0] == names[2]
    assert names[0] == [("NllLossBackward0", 1), ("LogSoftmaxBackward0", 1), ("AccumulateGrad", 0)]


def test_log_softmax_backward_of_a_batch_is_log_softmax_grad_bit_for_bit():
    """The plain backward of a float32 (N, C >= 8) log_softmax over dim 1 (cross_entropy's) against
    `_log_softmax_grad`, the general formula, on gradients of any values (not only nll's)."""
    from types import SimpleNamespace
    rng = np.random.default_rng(9)
    shapes = [(64, 10), (1, 8), (2, 9), (3, 16), (17, 17), (33, 24), (64, 40), (256, 16), (4, 1024), (1, 4096),
              (409, 10)]
    taken = 0
    for case in range(120):
        n, c = shapes[case % len(shapes)]
        hard = case % 2 == 0
        with np.errstate(all="ignore"):
            y = F._log_softmax(engine.tensor(_values(rng, (n, c), hard)), 1).numpy()
            if case % 3 == 0:
                y = _values(rng, (n, c), hard)      # any saved values
            g = _values(rng, (n, c), hard) if case % 4 else np.where(rng.random((n, c)) < 0.1, -1 / 64, 0.0)
            g = g.astype(np.float32)
            for grad in (g, np.asfortranarray(g), g[:, ::-1]):
                (got,) = F._log_softmax_backward(SimpleNamespace(result=y, dim=1), grad)
                want = F._log_softmax_grad(grad, y, 1)
                assert _bits(got) == _bits(want), (case, n, c)
                assert got.strides == want.strides, (case, n, c)     # (the layout decides later products' bits)
            for saved in (np.asfortranarray(y), y[:, ::-1]):
                (got,) = F._log_softmax_backward(SimpleNamespace(result=saved, dim=1), g)
                want = F._log_softmax_grad(g, saved, 1)
                assert _bits(got) == _bits(want) and got.strides == want.strides, (case, n, c)
            taken += 1
    assert taken == 120
