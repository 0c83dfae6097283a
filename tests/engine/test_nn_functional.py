"""engine.nn.functional against torch.nn.functional: what the op table's samples cannot express.

Errors (type and message), warnings, the graphs torch composes (every node name
along every path), dropout's random masks, conventions at domain edges, and
float64 gradients against finite differences.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import engine

BACKENDS = (engine, torch)
INF = float("inf")


def _t(backend, values, dtype="float32", requires_grad=False):
    return backend.tensor(values, dtype=getattr(backend, dtype), requires_grad=requires_grad)


def _graph(t) -> list:
    """Node names along every path from `t`'s grad_fn, children without a node left out."""
    def walk(node):
        children = [walk(child) for child, _ in node.next_functions if child is not None]
        return [node.name(), children] if children else [node.name()]
    return walk(t.grad_fn)


def _outcome(call, backend):
    try:
        return "ok", call(backend)
    except Exception as exc:  # noqa: BLE001  (the exception itself is what is compared)
        return type(exc).__name__, str(exc)


# ---- errors -----------------------------------------------------------------------------

def _x(b, shape=(2, 5)):
    return _t(b, np.linspace(-1, 1, int(np.prod(shape))).reshape(shape).tolist(), requires_grad=True)


ERRORS = {
    "nll target out of bounds": lambda b: b.nn.functional.nll_loss(_x(b), _t(b, [1, 5], "int64")),
    "nll negative target": lambda b: b.nn.functional.nll_loss(_x(b), _t(b, [1, -1], "int64")),
    "nll target out of bounds 3-d": lambda b: b.nn.functional.nll_loss(
        _x(b, (2, 5, 3)), _t(b, [[1, 2, 0], [0, 0, 5]], "int64")),
    "nll batch mismatch": lambda b: b.nn.functional.nll_loss(_x(b), _t(b, [1, 2, 3], "int64")),
    "nll float target": lambda b: b.nn.functional.nll_loss(_x(b), _t(b, [1.0, 2.0])),
    "nll weight size": lambda b: b.nn.functional.nll_loss(_x(b), _t(b, [1, 2], "int64"), _t(b, [1.0] * 4)),
    "nll weight dtype": lambda b: b.nn.functional.nll_loss(
        _x(b).double(), _t(b, [1, 2], "int64"), _t(b, [1.0] * 5)),
    "nll weight requires grad": lambda b: b.nn.functional.nll_loss(
        _x(b), _t(b, [1, 2], "int64"), _t(b, [1.0] * 5, requires_grad=True)),
    "nll reduction": lambda b: b.nn.functional.nll_loss(_x(b), _t(b, [1, 2], "int64"), reduction="foo"),
    "nll 0-d input": lambda b: b.nn.functional.nll_loss(_t(b, 1.0), _t(b, 0, "int64")),
    "nll 3-d target shape": lambda b: b.nn.functional.nll_loss(_x(b, (2, 5, 3)), _t(b, [1, 2], "int64")),
    "cross_entropy label_smoothing": lambda b: b.nn.functional.cross_entropy(
        _x(b), _t(b, [1, 2], "int64"), label_smoothing=1.5),
    "cross_entropy integer probabilities": lambda b: b.nn.functional.cross_entropy(
        _x(b), _t(b, [[0] * 5, [1] * 5], "int64")),
    "cross_entropy ignore_index with probabilities": lambda b: b.nn.functional.cross_entropy(
        _x(b), _t(b, [[0.2] * 5] * 2), ignore_index=1),
    "cross_entropy probability weight size": lambda b: b.nn.functional.cross_entropy(
        _x(b), _t(b, [[0.2] * 5] * 2), _t(b, [1.0] * 4)),
    "cross_entropy label_smoothing printed as C++": lambda b: b.nn.functional.cross_entropy(
        _x(b), _t(b, [1, 2], "int64"), label_smoothing=2.706371784210205),
    "cross_entropy 0-d input": lambda b: b.nn.functional.cross_entropy(_t(b, 0.5), _t(b, [1, 4, 0], "int64")),
    "cross_entropy 0-d input and target": lambda b: b.nn.functional.cross_entropy(_t(b, 0.5), _t(b, 1, "int64")),
    "cross_entropy 0-d input, probabilities": lambda b: b.nn.functional.cross_entropy(_t(b, 0.5), _t(b, 0.5)),
    "nll_loss 1-d input, 1-d target": lambda b: b.nn.functional.nll_loss(_x(b, (4,)), _t(b, [1, 4, 0], "int64")),
    "nll_loss 2-d target": lambda b: b.nn.functional.nll_loss(_x(b), _t(b, [[1, 0], [2, 1]], "int64")),
    "nll_loss 0-d target": lambda b: b.nn.functional.nll_loss(_x(b), _t(b, 1, "int64")),
    "nll_loss 3-d input, 0-d target": lambda b: b.nn.functional.nll_loss(_x(b, (2, 3, 2)), _t(b, 1, "int64")),
    "nll_loss integer input": lambda b: b.nn.functional.nll_loss(_t(b, [[1, 2], [3, 4]], "int64"),
                                                                 _t(b, [1, 5], "int64")),
    "nll_loss integer 4-d input": lambda b: b.nn.functional.nll_loss(
        _t(b, [[[[1]], [[2]]]], "int64"), _t(b, [[[9]]], "int64")),
    "bce input outside [0, 1]": lambda b: b.nn.functional.binary_cross_entropy(
        _t(b, [1.5, 0.5]), _t(b, [1.0, 0.0])),
    "hardtanh of bools": lambda b: b.nn.functional.hardtanh(b.tensor([[0.5, 0.0]]).logical_xor(b.tensor([1, 0]))),
    "bce target outside [0, 1]": lambda b: b.nn.functional.binary_cross_entropy(
        _t(b, [0.5, 0.5]), _t(b, [0.5, 2.0])),
    "bce input and target outside [0, 1]": lambda b: b.nn.functional.binary_cross_entropy(
        _t(b, [0.5, 1.5]), _t(b, [float("nan"), 0.5])),
    "bce size": lambda b: b.nn.functional.binary_cross_entropy(_t(b, [0.5, 0.5]), _t(b, [[1.0, 0.0]])),
    "bce target dtype": lambda b: b.nn.functional.binary_cross_entropy(
        _t(b, [0.5, 0.5], "float64"), _t(b, [1.0, 0.0])),
    "bce weight requires grad": lambda b: b.nn.functional.binary_cross_entropy(
        _t(b, [0.5, 0.5]), _t(b, [1.0, 0.0]), _t(b, [1.0, 2.0], requires_grad=True)),
    "bce with logits size": lambda b: b.nn.functional.binary_cross_entropy_with_logits(
        _t(b, [0.5, 0.5]), _t(b, [[1.0, 0.0]])),
    "bce with logits pos_weight requires grad": lambda b: b.nn.functional.binary_cross_entropy_with_logits(
        _t(b, [0.5, 0.5]), _t(b, [1.0, 0.0]), pos_weight=_t(b, [1.0, 2.0], requires_grad=True)),
    "mse reduction": lambda b: b.nn.functional.mse_loss(_x(b), _x(b), reduction="bad"),
    "mse integer": lambda b: b.nn.functional.mse_loss(_t(b, [1, 2], "int64"), _t(b, [1, 2], "int64")),
    "smooth_l1 negative beta": lambda b: b.nn.functional.smooth_l1_loss(_x(b), _x(b), beta=-1.0),
    "softmax integer last dim": lambda b: b.nn.functional.softmax(_t(b, [[1, 2]], "int64"), 1),
    "softmax integer first dim": lambda b: b.nn.functional.softmax(_t(b, [[1, 2]], "int64"), 0),
    "log_softmax integer": lambda b: b.nn.functional.log_softmax(_t(b, [1, 2], "int64"), 0),
    "softmax dim": lambda b: b.nn.functional.softmax(_x(b), 2),
    "gelu approximate": lambda b: b.nn.functional.gelu(_x(b), approximate="foo"),
    "gelu integer": lambda b: b.nn.functional.gelu(_t(b, [1, 2], "int64")),
    "silu integer": lambda b: b.nn.functional.silu(_t(b, [1, 2], "int64")),
    "elu integer": lambda b: b.nn.functional.elu(_t(b, [1, 2], "int64")),
    "leaky_relu integer": lambda b: b.nn.functional.leaky_relu(_t(b, [1, 2], "int64")),
    "softplus integer": lambda b: b.nn.functional.softplus(_t(b, [1, 2], "int64")),
    "hardtanh bounds": lambda b: b.nn.functional.hardtanh(_x(b), 2.0, 1.0),
    "dropout p": lambda b: b.nn.functional.dropout(_x(b), 1.5),
    "dropout integer": lambda b: b.nn.functional.dropout(_t(b, [1, 2], "int64"), 0.5),
    "linear shapes": lambda b: b.nn.functional.linear(_x(b, (2, 3)), _x(b, (4, 2))),
    "linear bias shape": lambda b: b.nn.functional.linear(_x(b, (2, 3)), _x(b, (4, 3)), _x(b, (3,))),
    "linear 0-d input": lambda b: b.nn.functional.linear(_t(b, 1.0), _x(b, (4, 3))),
    "linear dtypes": lambda b: b.nn.functional.linear(_x(b, (2, 3)).double(), _x(b, (4, 3))),
    "linear bias dtype": lambda b: b.nn.functional.linear(_x(b, (2, 3)), _x(b, (4, 3)), _x(b, (4,)).double()),
    # addmm checks the dtypes (bias, then input) before the shapes, in its own words
    "linear input dtype with a bias": lambda b: b.nn.functional.linear(
        _x(b, (2, 3)), _x(b, (4, 3)).double(), _x(b, (4,)).double()),
    "linear dtypes before shapes": lambda b: b.nn.functional.linear(
        _x(b, (2, 3)), _x(b, (4, 2)).double(), _x(b, (4,)).double()),
    "linear bias dtype before shapes": lambda b: b.nn.functional.linear(_x(b, (2, 3)), _x(b, (4, 2)).double(), _x(b, (4,))),
    "layer_norm shape": lambda b: b.nn.functional.layer_norm(_x(b, (2, 3)), (2,)),
    "layer_norm weight shape": lambda b: b.nn.functional.layer_norm(_x(b, (2, 3)), (3,), _x(b, (2,))),
    "layer_norm bias shape": lambda b: b.nn.functional.layer_norm(_x(b, (2, 3)), (3,), None, _x(b, (2,))),
    "layer_norm int shape matching": lambda b: b.nn.functional.layer_norm(_x(b, (2, 3)), 3),
    "layer_norm float32 input, float64 weight": lambda b: b.nn.functional.layer_norm(
        _x(b, (2, 3)), (3,), _x(b, (3,)).double()),
    "layer_norm mixed dtypes before shapes": lambda b: b.nn.functional.layer_norm(
        _x(b, (2, 3)).double(), (3,), _x(b, (2,))),
    "layer_norm bias dtype": lambda b: b.nn.functional.layer_norm(_x(b, (2, 3)), (3,), _x(b, (3,)),
                                                                   _x(b, (3,)).double()),
    "layer_norm float64 bias alone": lambda b: b.nn.functional.layer_norm(_x(b, (2, 3)), (3,), None,
                                                                           _x(b, (3,)).double()),
    "layer_norm mixed dtypes": lambda b: b.nn.functional.layer_norm(_x(b, (2, 3)).double(), (3,), _x(b, (3,))),
    # fuzzer finding: an integer input has no kernel, in torch's words
    "layer_norm int64 input": lambda b: b.nn.functional.layer_norm(_t(b, [[1, 2, 0], [3, 3, 1]], "int64"), (3,)),
    "layer_norm bool input and weight": lambda b: b.nn.functional.layer_norm(
        _t(b, [[True, False]], "bool"), (2,), _t(b, [True, True], "bool")),
    "normalize integer": lambda b: b.nn.functional.normalize(_t(b, [1, 2], "int64")),
    "normalize dim": lambda b: b.nn.functional.normalize(_x(b), dim=2),
    # arguments, checked as torch's Python function and the native it calls check them
    "leaky_relu None slope": lambda b: b.nn.functional.leaky_relu(_x(b), None),
    "elu str alpha": lambda b: b.nn.functional.elu(_x(b), "a"),
    "gelu positional approximate": lambda b: b.nn.functional.gelu(_x(b), "tanh"),
    "softplus None beta": lambda b: b.nn.functional.softplus(_x(b), None),
    "linear None weight": lambda b: b.nn.functional.linear(_x(b), None),
    "layer_norm int shape": lambda b: b.nn.functional.layer_norm(_x(b), 5),
    "relu inplace None": lambda b: b.nn.functional.relu(None, True),
    "relu inplace leaf": lambda b: b.nn.functional.relu(_x(b), True),
    "softmax str dim": lambda b: b.nn.functional.softmax(_x(b), "a"),
    "softmax None input": lambda b: b.nn.functional.softmax(None, 0),
    "softmax None input, implicit dim": lambda b: b.nn.functional.softmax(None),
    "normalize None input": lambda b: b.nn.functional.normalize(None),
    "mse None target": lambda b: b.nn.functional.mse_loss(_x(b), None),
    "mse weight size": lambda b: b.nn.functional.mse_loss(_x(b), _x(b), weight=_x(b, (5,))),
    "l1 weighted reduction": lambda b: b.nn.functional.l1_loss(_x(b), _x(b), reduction="foo", weight=_x(b)),
    "bce int weight": lambda b: b.nn.functional.binary_cross_entropy(_x(b).sigmoid(), _x(b).sigmoid(), 0),
    "nll float weight": lambda b: b.nn.functional.nll_loss(_x(b), _t(b, [1, 2], "int64"), 1.5),
    "cross_entropy None target": lambda b: b.nn.functional.cross_entropy(_x(b), None),
    "bce_with_logits int pos_weight": lambda b: b.nn.functional.binary_cross_entropy_with_logits(
        _x(b), _x(b), pos_weight=1),
}


@pytest.mark.parametrize("name", ERRORS)
def test_errors_match_torch(name):
    got = _outcome(ERRORS[name], engine)
    want = _outcome(ERRORS[name], torch)
    assert want[0] != "ok", "the case must fail in torch"
    assert got == want


# ---- warnings ---------------------------------------------------------------------------

def _warnings(call, backend):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = call(backend)
    return [(w.category.__name__, str(w.message)) for w in caught], out


@pytest.mark.parametrize("loss", ["mse_loss", "l1_loss", "smooth_l1_loss"])
def test_broadcast_target_warns_and_expands_like_torch(loss):
    def call(b):
        return getattr(b.nn.functional, loss)(_x(b, (2, 3)), _t(b, [0.5, -1.0, 2.0], requires_grad=True))
    (got_warnings, got), (want_warnings, want) = _warnings(call, engine), _warnings(call, torch)
    assert got_warnings == want_warnings and len(want_warnings) == 1
    assert _graph(got) == _graph(want)
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-6)


LEGACY_REDUCTIONS = {
    "mse size_average=False": lambda b: b.nn.functional.mse_loss(_x(b), _x(b).detach() * 2, size_average=False),
    "l1 reduce=False": lambda b: b.nn.functional.l1_loss(_x(b), _x(b).detach() * 2, None, False),
    "smooth_l1 both": lambda b: b.nn.functional.smooth_l1_loss(_x(b), _x(b).detach() * 2, True, True),
    "nll size_average=False": lambda b: b.nn.functional.nll_loss(_x(b), _t(b, [1, 2], "int64"), None, False),
    "cross_entropy reduce=False": lambda b: b.nn.functional.cross_entropy(_x(b), _t(b, [1, 2], "int64"),
                                                                          reduce=False),
    "bce reduce=True": lambda b: b.nn.functional.binary_cross_entropy(_x(b).sigmoid(), _x(b).detach().sigmoid(),
                                                                      reduce=True, size_average=False),
    "mse weighted mean": lambda b: b.nn.functional.mse_loss(_x(b), _x(b).detach() * 2, weight=_x(b).detach() + 2),
    "l1 weighted none": lambda b: b.nn.functional.l1_loss(_x(b), _x(b).detach() * 2, reduction="none",
                                                          weight=_x(b) + 2),
    "mse elementwise_mean": lambda b: b.nn.functional.mse_loss(_x(b), _x(b).detach() * 2, reduction="elementwise_mean"),
}


@pytest.mark.parametrize("name", LEGACY_REDUCTIONS)
def test_legacy_reductions_and_weights_warn_and_compose_like_torch(name):
    (got_warnings, got), (want_warnings, want) = (_warnings(LEGACY_REDUCTIONS[name], b) for b in (engine, torch))
    assert got_warnings == want_warnings
    assert _graph(got) == _graph(want)
    torch.testing.assert_close(torch.from_numpy(got.detach().numpy().copy()), want.detach())


@pytest.mark.parametrize("shape", [(), (4,), (2, 3), (2, 3, 4), (2, 3, 4, 2)])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_implicit_softmax_dim_warns_and_picks_torchs_dim(name, shape):
    values = np.linspace(-2, 2, int(np.prod(shape))).reshape(shape).tolist()

    def call(b):
        return getattr(b.nn.functional, name)(_t(b, values))
    (got_warnings, got), (want_warnings, want) = _warnings(call, engine), _warnings(call, torch)
    assert got_warnings == want_warnings == [("UserWarning", f"Implicit dimension choice for {name} has been "
                                              "deprecated. Change the call to include dim=X as an argument.")]
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6, atol=1e-7)


# ---- composed graphs ----------------------------------------------------------------------

GRAPHS = {
    "linear 1-d": lambda b: b.nn.functional.linear(_x(b, (3,)), _x(b, (4, 3)), _x(b, (4,))),
    "linear 3-d": lambda b: b.nn.functional.linear(_x(b, (2, 2, 3)), _x(b, (4, 3)), _x(b, (4,))),
    "linear 3-d, 0-d bias": lambda b: b.nn.functional.linear(_x(b, (2, 2, 3)), _x(b, (4, 3)), _x(b, ())),
    "linear 3-d, no bias": lambda b: b.nn.functional.linear(_x(b, (2, 2, 3)), _x(b, (4, 3))),
    "cross_entropy": lambda b: b.nn.functional.cross_entropy(_x(b), _t(b, [1, 4], "int64")),
    "cross_entropy 3-d none": lambda b: b.nn.functional.cross_entropy(
        _x(b, (2, 5, 3)), _t(b, [[1, 2, 0], [0, 0, 4]], "int64"), reduction="none"),
    "cross_entropy label smoothing": lambda b: b.nn.functional.cross_entropy(
        _x(b), _t(b, [1, 4], "int64"), label_smoothing=0.1),
    "cross_entropy label smoothing, weight": lambda b: b.nn.functional.cross_entropy(
        _x(b), _t(b, [1, 4], "int64"), _t(b, [1.0, 2.0, 0.5, 1.0, 3.0]), label_smoothing=0.1),
    "cross_entropy probabilities": lambda b: b.nn.functional.cross_entropy(_x(b), _x(b)),
    "cross_entropy probabilities, weight, smoothing": lambda b: b.nn.functional.cross_entropy(
        _x(b), _x(b), _t(b, [1.0, 2.0, 0.5, 1.0, 3.0]), label_smoothing=0.2),
    "nll_loss 4-d": lambda b: b.nn.functional.nll_loss(
        _x(b, (2, 5, 3, 1)), _t(b, [[[1], [2], [0]], [[0], [0], [4]]], "int64")),
    "l1_loss": lambda b: b.nn.functional.l1_loss(_x(b), _x(b), reduction="sum"),
    "smooth_l1_loss beta=0": lambda b: b.nn.functional.smooth_l1_loss(_x(b), _x(b), beta=0.0),
    "normalize": lambda b: b.nn.functional.normalize(_x(b), p=3.0),
    "layer_norm": lambda b: b.nn.functional.layer_norm(_x(b), (5,), _x(b, (5,))),
    "dropout p=1": lambda b: b.nn.functional.dropout(_x(b), 1.0),
    "softmax dtype": lambda b: b.nn.functional.softmax(_x(b), 1, dtype=b.float64),
    "log_softmax dtype": lambda b: b.nn.functional.log_softmax(_x(b), 0, dtype=b.float64),
    "log_softmax integer input, dtype": lambda b: b.nn.functional.log_softmax(
        _t(b, [1, 2, 3], "int64"), 0, dtype=b.float32),
}


@pytest.mark.parametrize("name", GRAPHS)
def test_composed_graphs_match_torch_node_for_node(name):
    got, want = GRAPHS[name](engine), GRAPHS[name](torch)
    assert str(got.dtype) == str(want.dtype)
    assert (got.grad_fn is None) == (want.grad_fn is None)
    if want.grad_fn is not None:
        assert _graph(got) == _graph(want)
    torch.testing.assert_close(torch.from_numpy(got.detach().numpy().copy()), want.detach())


# ---- dropout ------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs", [{"p": 0.0}, {"training": False}, {"p": 0.7, "training": False}])
def test_dropout_without_effect_returns_the_input_itself(kwargs):
    for backend in BACKENDS:
        x = _x(backend)
        assert backend.nn.functional.dropout(x, **kwargs) is x


def test_dropout_keeps_scaled_values_and_its_gradient_is_the_mask():
    p = 0.25
    x = engine.tensor(np.linspace(1, 2, 4000).tolist(), requires_grad=True)
    y = engine.nn.functional.dropout(x, p)
    assert y.grad_fn.name() == "MulBackward0"
    kept = y.detach().numpy() != 0
    np.testing.assert_allclose(y.detach().numpy()[kept], x.detach().numpy()[kept] / (1 - p), rtol=1e-6)
    assert abs(kept.mean() - (1 - p)) < 0.04      # ~6 standard deviations of a binomial(4000, 0.75)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.where(kept, 1 / (1 - p), 0), rtol=1e-6)


# ---- conventions at domain edges ------------------------------------------------------------

def _value_and_grad(backend, fn, values, dtype="float32"):
    x = _t(backend, values, dtype, requires_grad=True)
    y = fn(backend, x)
    (y if y.ndim == 0 else y.sum()).backward()
    return y.detach().numpy(), x.grad.numpy()


EDGES = {
    # log clamped at -100 and the gradient's denominator at 1e-12
    "bce at 0 and 1": (lambda b, x: b.nn.functional.binary_cross_entropy(
        x, _t(b, [1.0, 0.0, 0.0, 1.0]), reduction="none"), [0.0, 1.0, 0.0, 1.0]),
    "normalize zero rows": (lambda b, x: b.nn.functional.normalize(x, dim=0), [0.0, 0.0, 0.0]),
    "softplus far above threshold": (lambda b, x: b.nn.functional.softplus(x), [30.0, 1e4, -1e4]),
    "silu far out": (lambda b, x: b.nn.functional.silu(x), [-1e4, 1e4, 0.0]),
    "log_softmax large logits": (lambda b, x: b.nn.functional.log_softmax(x, 0), [1e4, 0.0, -1e4]),
    "bce with logits large logits": (lambda b, x: b.nn.functional.binary_cross_entropy_with_logits(
        x, _t(b, [1.0, 0.0, 0.5]), reduction="none"), [-1e4, 1e4, 80.0]),
}


@pytest.mark.parametrize("name", EDGES)
def test_values_and_gradients_at_domain_edges_match_torch(name):
    fn, values = EDGES[name]
    got, want = _value_and_grad(engine, fn, values), _value_and_grad(torch, fn, values)
    for g, w in zip(got, want):
        torch.testing.assert_close(torch.from_numpy(np.asarray(g)), torch.from_numpy(np.asarray(w)), equal_nan=True)


def test_nll_loss_with_every_target_ignored_is_nan_with_zero_gradient():
    for backend in BACKENDS:
        x = _x(backend)
        loss = backend.nn.functional.nll_loss(x, _t(backend, [-100, -100], "int64"))
        loss.backward()
        assert np.isnan(loss.item())
        assert not np.any(x.grad.numpy())


ACTIVATIONS = {
    "leaky_relu": {"negative_slope": 0.2},
    "elu": {"alpha": 1.5},
    "gelu": {},
    "gelu-tanh": {"approximate": "tanh"},
    "softplus": {"beta": 2.0, "threshold": 3.0},
    "hardtanh": {"min_val": -0.5, "max_val": 1.0},
    "silu": {},
    "relu": {},
}
ACTIVATION_POINTS = [-np.inf, -30.0, -3.0, -1.0, -0.5, -0.0, 0.0, 0.3, 0.5, 1.0, 1.5, 2.5, np.inf, np.nan]


def _activation_gradients(backend, name, upstream, seed):
    """First and second derivatives of an activation at edge points, with an upstream
    gradient (inf and NaN included), the second from a constant or a squared seed."""
    fn = getattr(backend.nn.functional, name.partition("-")[0])
    x = backend.tensor(ACTIVATION_POINTS, dtype=backend.float64, requires_grad=True)
    y = fn(x, **ACTIVATIONS[name])
    g, = backend.autograd.grad(y, x, backend.tensor([upstream] * len(ACTIVATION_POINTS), dtype=backend.float64),
                               create_graph=True)
    if not g.requires_grad:
        return g.detach().numpy(), "constant first derivative"
    second, = backend.autograd.grad(g.sum() if seed == "constant" else (g * g).sum(), x, allow_unused=True)
    return g.detach().numpy(), None if second is None else second.numpy()


@pytest.mark.parametrize("seed", ["constant", "squared"])
@pytest.mark.parametrize("upstream", [1.0, -2.0, np.inf, np.nan])
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_derivatives_match_torch_to_second_order_at_edges(name, upstream, seed):
    """torch computes these with dedicated backward kernels and double-backward formulas
    (EluBackwardBackward0, ...): NaN inputs, infinite gradients and constant seeds follow them."""
    ours = _activation_gradients(engine, name, upstream, seed)
    theirs = _activation_gradients(torch, name, upstream, seed)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-12, equal_nan=True)
    if isinstance(theirs[1], np.ndarray):
        np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-12, equal_nan=True)
    else:
        np.testing.assert_array_equal(ours[1], theirs[1])


def _nll_program(backend, shape, reduction, weighted, ignore, seed):
    """nll_loss on x * x (so second derivatives reach x), an infinite incoming gradient at
    one target (torch writes the gradient at the targets only), then a double backward."""
    rng = np.random.default_rng(0)
    x = backend.tensor(rng.standard_normal(shape), requires_grad=True)
    target = rng.integers(0, shape[1] if len(shape) > 1 else shape[0], (shape[0],) + shape[2:] if len(shape) > 1
                          else ())
    if ignore:
        target.reshape(-1)[0] = 1
    weight = backend.tensor([1.0, 2.0, 0.5], dtype=backend.float64) if weighted else None
    loss = backend.nn.functional.nll_loss(x * x, backend.tensor(target), weight=weight, reduction=reduction,
                                          ignore_index=1 if ignore else -100)
    seed_grad = np.full(tuple(loss.shape), 2.0)
    if reduction == "none" and seed_grad.size > 1:
        seed_grad.reshape(-1)[-1] = np.inf
    first, = backend.autograd.grad(loss, x, backend.tensor(seed_grad), create_graph=True)
    if seed == "constant":
        second = backend.autograd.grad((first * x).sum(), x)[0]
    else:
        second = backend.autograd.grad((first * first).sum(), x)[0]
    return loss.grad_fn.name(), first.detach().numpy(), second.numpy()


@pytest.mark.parametrize("seed", ["constant", "squared"])
@pytest.mark.parametrize("weighted, ignore", [(False, False), (True, False), (True, True)])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("shape", [(3,), (2, 3), (2, 3, 2), (2, 3, 2, 2)])
def test_nll_loss_gradients_match_torch_to_second_order(shape, reduction, weighted, ignore, seed):
    ours = _nll_program(engine, shape, reduction, weighted, ignore, seed)
    theirs = _nll_program(torch, shape, reduction, weighted, ignore, seed)
    assert ours[0] == theirs[0]
    for got, want in zip(ours[1:], theirs[1:]):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_nll_loss_gradient_from_a_constant_seed_stays_in_the_graph():
    """torch's NllLossBackwardBackward0 is differentiable in the loss input (with zeros), so
    the first gradient of a cross entropy requires grad even from a constant seed."""
    results = []
    for backend in BACKENDS:
        x = backend.tensor([[0.5, -1.0, 2.0], [1.0, 0.0, -3.0]], requires_grad=True)
        y = backend.nn.functional.log_softmax(x, 1)
        loss = backend.nn.functional.nll_loss(y, backend.tensor([2, 0]), reduction="sum")
        g, = backend.autograd.grad(loss, y, create_graph=True)
        g.sum().backward()
        results.append((g.requires_grad, g.grad_fn.name(), x.grad.tolist()))
    assert results[0] == results[1]


def test_saved_tensors_are_freed_after_backward_as_in_torch():
    for name, call in [("softmax", lambda b, x: b.nn.functional.softmax(x, 1)),
                       ("nll_loss", lambda b, x: b.nn.functional.nll_loss(x, _t(b, [1, 4], "int64"))),
                       ("layer_norm", lambda b, x: b.nn.functional.layer_norm(x, (5,)))]:
        outcomes = []
        for backend in BACKENDS:
            y = call(backend, _x(backend)).sum()
            y.backward()
            outcomes.append(_outcome(lambda b: y.backward(), backend))
        assert outcomes[0] == outcomes[1], name
        assert outcomes[0][0] == "RuntimeError", name


# ---- float64 gradients against finite differences (non-kink points) ------------------------

def _finite_difference(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[i] = h
        grad[i] = (f(x + step) - f(x - step)) / (2 * h)
    return grad


FINITE_DIFFERENCE = {
    "gelu": lambda x: engine.nn.functional.gelu(x).sum(),
    "gelu tanh": lambda x: engine.nn.functional.gelu(x, approximate="tanh").sum(),
    "elu": lambda x: engine.nn.functional.elu(x, 1.5).sum(),
    "softplus": lambda x: engine.nn.functional.softplus(x, 2.0, 3.0).sum(),
    "log_softmax": lambda x: (engine.nn.functional.log_softmax(x, 1) * engine.tensor(
        np.arange(6.0).reshape(2, 3).tolist(), dtype=engine.float64)).sum(),
    "layer_norm": lambda x: (engine.nn.functional.layer_norm(x, (3,)) ** 3).sum(),
    "cross_entropy smoothed": lambda x: engine.nn.functional.cross_entropy(
        x, engine.tensor([2, 0]), label_smoothing=0.3),
    "bce with logits": lambda x: engine.nn.functional.binary_cross_entropy_with_logits(
        x, engine.tensor([[0.0, 1.0, 0.3], [0.2, 0.9, 1.0]], dtype=engine.float64),
        pos_weight=engine.tensor([2.0, 0.5, 1.0], dtype=engine.float64)),
    "normalize p=3": lambda x: (engine.nn.functional.normalize(x, p=3.0) ** 2).sum(),
}


@pytest.mark.parametrize("name", FINITE_DIFFERENCE)
def test_float64_gradients_agree_with_finite_differences(name):
    f = FINITE_DIFFERENCE[name]
    point = np.array([[0.3, -1.2, 0.7], [1.9, -0.4, 0.05]])
    x = engine.tensor(point.tolist(), dtype=engine.float64, requires_grad=True)
    f(x).backward()
    numeric = _finite_difference(lambda a: f(engine.tensor(a.tolist(), dtype=engine.float64)).item(), point)
    np.testing.assert_allclose(x.grad.numpy(), numeric, rtol=1e-6, atol=1e-8)


# ---- double backward from a constant seed -------------------------------------------------

SECOND_ORDER = {
    "leaky_relu": lambda b, x: b.nn.functional.leaky_relu(x, 0.2),
    "hardtanh": lambda b, x: b.nn.functional.hardtanh(x, -0.5, 0.5),
    "nll_loss": lambda b, x: b.nn.functional.nll_loss(x, b.tensor([1, 4])),
    "nll_loss none": lambda b, x: b.nn.functional.nll_loss(x, b.tensor([1, 4]), reduction="none"),
    "nll_loss 4-d": lambda b, x: b.nn.functional.nll_loss(x.reshape(2, 5, 1, 1), b.tensor([[[1]], [[4]]])),
    "l1_loss": lambda b, x: b.nn.functional.l1_loss(x, b.zeros(2, 5)),
    # a seed that depends on x: the double backward differentiates in grad_output too
    "nll_loss squared": lambda b, x: b.nn.functional.nll_loss(x, b.tensor([1, 4])) ** 2,
    "nll_loss none squared": lambda b, x: b.nn.functional.nll_loss(x, b.tensor([1, 4]), reduction="none") ** 2,
    "nll_loss 4-d squared": lambda b, x: b.nn.functional.nll_loss(
        x.reshape(2, 5, 1, 1), b.tensor([[[1]], [[4]]]), reduction="none") ** 2,
    "hardtanh squared": lambda b, x: b.nn.functional.hardtanh(x, -0.5, 0.5) ** 2,
    "relu": lambda b, x: b.relu(x),
}


def _second_order(backend, name):
    """torch's backward functions that are linear in the gradient are recorded over the op's
    input too: the first-order gradient requires grad and a double backward runs."""
    x = _x(backend)
    (g,) = backend.autograd.grad(SECOND_ORDER[name](backend, x).sum(), x, create_graph=True)
    node = g.grad_fn
    names = []
    while node is not None:   # the chain of first inputs, e.g. ViewBackward0 -> NllLoss2DBackwardBackward0
        names.append(node.name())
        node = node.next_functions[0][0] if node.next_functions else None
    g.sum().backward()
    # (x.grad + 0: torch gives the zero gradient of sgn as a ZeroTensor, which has no values to list)
    return g.requires_grad, names, None if x.grad is None else (x.grad + 0).tolist()


@pytest.mark.parametrize("name", SECOND_ORDER)
def test_gradients_of_linear_backwards_stay_in_the_graph(name):
    assert _second_order(engine, name) == _second_order(torch, name)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("affine", ["none", "weight", "bias", "both", "negative zeros"])
def test_layer_norm_signs_of_zero_follow_torchs_formula(affine, dtype):
    """torch computes fma((x - mean) * rstd, weight, bias), fma(x - mean, rstd, bias) without a
    weight, bias 0 when absent (fuzzer finding: weight and bias -0.0 give -0.0, float64 too)."""
    outs = []
    for backend in BACKENDS:
        dt = getattr(backend, dtype)
        x = backend.zeros(2, 3, dtype=dt)
        weight = {"none": None, "bias": None, "negative zeros": backend.tensor([-0.0, -0.0, -0.0], dtype=dt)}.get(
            affine, backend.tensor([-1.0, 1.0, 0.5], dtype=dt))
        bias = {"none": None, "weight": None, "negative zeros": weight}.get(
            affine, backend.tensor([0.0, -0.0, 1.0], dtype=dt))
        y = backend.nn.functional.layer_norm(x, (3,), weight, bias).numpy()
        outs.append((y.tolist(), np.signbit(y).tolist()))
    assert outs[0] == outs[1]


@pytest.mark.parametrize("p", [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, -1.0, float("inf")])
def test_normalize_matches_torch_for_every_p_at_zero_vectors(p):
    """normalize is torch.norm (LinalgVectorNormBackward0: norm_backward case by case of p),
    clamp_min(eps), expand and div; a zero vector gets 1 / eps from the division."""
    outs = []
    for backend in BACKENDS:
        x = backend.tensor([[[0.0, 0.0], [0.0, 0.0]], [[1.0, -2.0], [0.0, 3.0]]], dtype=backend.float64,
                           requires_grad=True)
        y = backend.nn.functional.normalize(x, p=p)
        (y * backend.tensor([1.0, 2.0], dtype=backend.float64)).sum().backward()
        outs.append((y.detach().numpy(), x.grad.numpy()))
    for ours, theirs in zip(*outs):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


@pytest.mark.parametrize("alpha", [1.0, -1.0, 2.0])
def test_elu_keeps_signed_zeros(alpha):
    outs = []
    for backend in BACKENDS:
        y = backend.nn.functional.elu(backend.tensor([0.0, -0.0, -1e-30, -1.0, 2.0], dtype=backend.float64), alpha)
        outs.append((y.tolist(), np.signbit(y.numpy()).tolist()))
    assert outs[0] == outs[1]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(36,), (3, 3, 4), (2, 40), (7,)])
@pytest.mark.parametrize("create_graph", [False, True])
def test_elu_gradient_at_nan_is_nan_in_torchs_vector_loop_only(dtype, shape, create_graph):
    """Fuzzer finding: elu(log(x)) of 36 negatives: torch's elu_backward vector loop (the
    first multiples of 2 vectors) gives NaN at a NaN input, its scalar tail the gradient."""
    x = np.full(shape, np.nan)
    x.reshape(-1)[::5] = -1.0
    grads = []
    for backend in BACKENDS:
        t = backend.tensor(x.tolist(), dtype=getattr(backend, dtype), requires_grad=True)
        (g,) = backend.autograd.grad((backend.nn.functional.elu(t, 0.5) * 2).sum(), [t], create_graph=create_graph)
        grads.append(g.detach().numpy())
    np.testing.assert_array_equal(grads[0], grads[1])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(17,), (3, 3, 4), (2, 40), (7,), (5, 4)])
@pytest.mark.parametrize("seed", ["sum", "explicit", "transposed"])
def test_hardtanh_gradient_at_nan_is_zero_in_torchs_vector_loop_only(dtype, shape, seed):
    """Fuzzer finding: torch's hardtanh_backward vector op, (x > min) & (x < max) & grad, zeroes
    the gradient at a NaN input, its scalar op (the tail, and loops over operands that do not
    step one element) passes it. An explicit gradient against a transposed input makes every
    element scalar; sum's stride-0 gradient leaves the input's layout to decide."""
    x = np.full(shape, np.nan)
    x.reshape(-1)[::5] = 0.5
    x.reshape(-1)[1::7] = 3.0
    grads = []
    for backend in BACKENDS:
        t = backend.tensor(x.tolist(), dtype=getattr(backend, dtype), requires_grad=True)
        a = t.mT if seed == "transposed" and t.ndim > 1 else t
        y = backend.nn.functional.hardtanh(a, -1.0, 2.0)
        if seed == "sum":
            (g,) = backend.autograd.grad(y.sum(), [t], create_graph=True)
        else:
            upstream = backend.tensor(np.linspace(1, 2, y.numel()).reshape(y.shape).tolist(), dtype=y.dtype)
            (g,) = backend.autograd.grad(y, [t], upstream)
        grads.append(g.detach().numpy())
    np.testing.assert_array_equal(grads[0], grads[1])


@pytest.mark.parametrize("bounds", [(0.0, 0.0), (-0.0, 1.0), (-1.0, -0.0)])
def test_hardtanh_keeps_signed_zeros_and_nan_at_its_bounds(bounds):
    outs = []
    for backend in BACKENDS:
        x = backend.tensor([0.0, -0.0, 2.0, -2.0, float("nan")], dtype=backend.float64)
        y = backend.nn.functional.hardtanh(x, *bounds).numpy()
        outs.append((np.nan_to_num(y).tolist(), np.signbit(y[:4]).tolist()))
    assert outs[0] == outs[1]


@pytest.mark.parametrize("input_dtype, target_dtype", [("float32", "float64"), ("float64", "float32")])
def test_bce_with_logits_takes_the_targets_dtype(input_dtype, target_dtype):
    """torch computes (1 - target).mul_(input).sub_(log_sigmoid(input)): in place, in the
    target's dtype."""
    outs = []
    for backend in BACKENDS:
        x = backend.tensor([[0.0, 1.5, -2.0]], dtype=getattr(backend, input_dtype), requires_grad=True)
        t = backend.tensor([[0.0, 1.0, 0.25]], dtype=getattr(backend, target_dtype))
        loss = backend.nn.functional.binary_cross_entropy_with_logits(x, t)
        loss.backward()
        outs.append((str(loss.dtype), loss.item(), str(x.grad.dtype), x.grad.tolist()))
    assert outs[0][0] == outs[1][0] and outs[0][2] == outs[1][2]
    np.testing.assert_allclose(outs[0][1], outs[1][1], rtol=1e-6)   # float32 arithmetic somewhere
    np.testing.assert_allclose(outs[0][3], outs[1][3], rtol=1e-6)


def _layer_norm_higher_order(backend, affine, input_grad, seed, dtype):
    """layer_norm's create_graph gradients (value, requires_grad, node and edges), then the
    second-order gradients of their sum (or the error), as the fuzzer's double backward takes them."""
    values = (np.arange(12).reshape(2, 2, 3) ** 1.3 % 5 - 2).tolist()
    x = _t(backend, values, dtype, input_grad)
    w = _t(backend, [[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]], dtype, True) if "weight" in affine else None
    b = _t(backend, [[0.5, 0.0, 0.2], [1.0, 2.0, 3.0]], dtype, True) if "bias" in affine else None
    out = backend.nn.functional.layer_norm(x, (2, 3), w, b)
    leaves = [t for t in (x, w, b) if t is not None and t.requires_grad]
    grads = backend.autograd.grad(out.sum() if seed == "constant" else (out * out).sum(), leaves, create_graph=True)
    first = [(g.detach().numpy(), g.requires_grad, g.grad_fn.name(),
              [None if n is None else n.name() for n, _ in g.grad_fn.next_functions]) for g in grads]
    outcome = _outcome(lambda _: sum(g.sum() for g in grads).backward(), backend)
    return first, outcome, [None if t.grad is None else t.grad.numpy() for t in leaves]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("seed", ["constant", "squared"])
@pytest.mark.parametrize("affine, input_grad", [(affine, input_grad) for affine in ("weight", "bias", "weight+bias")
                                                 for input_grad in (False, True)] + [("none", True)])
def test_layer_norm_double_backward_is_torchs_recorded_node(affine, input_grad, seed, dtype):
    # Fuzzer finding: torch records native_layer_norm_backward as NativeLayerNormBackwardBackward0
    # over (grad_out, input, mean, rstd, weight, bias), so the weight's gradient requires grad even
    # from a constant input and seed; without a weight, its double backward drops the bias's term
    # and raises when the input's term is there too.
    got = _layer_norm_higher_order(engine, affine, input_grad, seed, dtype)
    want = _layer_norm_higher_order(torch, affine, input_grad, seed, dtype)
    tolerance = {"float32": 1e-4, "float64": 1e-9}[dtype]
    assert [f[1:] for f in got[0]] == [f[1:] for f in want[0]]
    for a, b in zip(got[0], want[0]):
        np.testing.assert_allclose(a[0], b[0], rtol=tolerance, atol=tolerance)
    assert got[1] == want[1]
    assert [g is None for g in got[2]] == [g is None for g in want[2]]
    for a, b in zip(got[2], want[2]):
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=tolerance, atol=tolerance)


def test_layer_norm_bias_without_weight_double_backward_is_judged_per_backward_call():
    def program(backend):
        x = _t(backend, [[0.3, 1.0, 3.0], [2.0, -1.0, 0.5]], "float64", True)
        b = _t(backend, [0.5, 0.0, 0.2], "float64", True)
        out = backend.nn.functional.layer_norm(x, (3,), None, b)
        grad_x, grad_b = backend.autograd.grad((out * out).sum(), [x, b], create_graph=True)
        grad_x.sum().backward(retain_graph=True)      # the input's term alone
        first = x.grad.numpy().copy()
        grad_b.sum().backward(retain_graph=True)      # then the bias's alone: adds nothing
        return first, x.grad.numpy(), b.grad.numpy()
    for got, want in zip(program(engine), program(torch)):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def _bce_second_order(backend, dtype, reduction, weight, seed):
    x = _t(backend, [[0.1, 0.5, 0.9], [0.0, 1.0, 1e-13]], dtype, True)
    t = _t(backend, [[0.0, 1.0, 0.5], [1.0, 1.0, 0.25]], dtype, True)
    w = None if weight is None else _t(backend, weight, dtype)
    out = backend.nn.functional.binary_cross_entropy(x, t, w, reduction=reduction)
    grads = backend.autograd.grad(out.sum() if seed == "constant" else (out * out).sum(), [x, t], create_graph=True)
    first = [g.detach().numpy() for g in grads]
    sum(g.sum() for g in grads).backward()
    return first + [x.grad.numpy(), t.grad.numpy()], grads[0].grad_fn.name()


@pytest.mark.parametrize("seed", ["constant", "squared"])
@pytest.mark.parametrize("weight", [None, [float("inf"), 1e30, 3.0], [0.0, -1.0, 1e-30]])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_binary_cross_entropy_second_order_follows_torchs_formulas(dtype, reduction, weight, seed):
    # Fuzzer finding: torch records the input's gradient as BinaryCrossEntropyBackwardBackward0,
    # differentiated by its own formulas (with 1e-12 added, not clamped), and clamps the first
    # derivative at a float EPSILON; with infinite and huge weights the order of the products
    # decides inf and NaN.
    got, got_node = _bce_second_order(engine, dtype, reduction, weight, seed)
    want, want_node = _bce_second_order(torch, dtype, reduction, weight, seed)
    assert got_node == want_node
    tolerance = {"float32": 1e-5, "float64": 1e-12}[dtype]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=tolerance, atol=0, equal_nan=True)
        np.testing.assert_array_equal(np.signbit(g), np.signbit(w))


@pytest.mark.parametrize("batch, features", [(8, 32), (32, 8), (64, 256)])
def test_linear_with_bias_is_row_major_whichever_way_the_product_is_computed(batch, features):
    """addmm computes a product with fewer rows than columns transposed (faster in OpenBLAS);
    its result is still laid out row-major like torch's (contiguous() returns it), with
    torch's values and gradients."""
    rng = np.random.default_rng(0)
    arrays = (rng.standard_normal((batch, 16)), rng.standard_normal((features, 16)), rng.standard_normal(features))
    results = []
    for backend in (engine, torch):
        x, w, b = (backend.tensor(a.astype(np.float32), requires_grad=True) for a in arrays)
        out = backend.nn.functional.linear(x, w, b)
        assert out.contiguous() is out
        (out * out).sum().backward()
        results.append([t.detach().numpy() for t in (out, x.grad, w.grad, b.grad)])
    for got, want in zip(*results):
        # Sums of 16 to 256 float32 products in two BLAS's orders: where terms cancel, an element
        # differs by a few roundings of the largest terms (7.6e-5 of gradients up to 2,400 on an
        # AMD EPYC), beyond assert_close's relative tolerance for that element.
        torch.testing.assert_close(torch.from_numpy(got), torch.from_numpy(want), rtol=1.3e-6,
                                   atol=max(1e-5, 1e-6 * float(np.abs(want).max())))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("with_weight", [False, True])
def test_layer_norm_gradient_with_huge_and_infinite_upstream_is_torchs_kernel(dtype, with_weight):
    # Fuzzer finding: torch's CPU backward kernel sums g x w and g w per row and combines them
    # as a g w + b x + c; where the upstream gradient holds inf and 1e30, its order of operations
    # decides which elements become NaN and which +-inf.
    upstream = [[1e30, -2.3, -3.0, -1e-30], [-2.0, -1.8, 3.1, 3.5], [-0.0, -1.2, 2.0, -1.7],
                [1e-40, -1.9, -0.0, 1.8], [-1e30, 2.6, -3.3, 1e30], [INF, -0.36, -0.5, 1.0]]
    values = [[0.0, -2.3, -3.0, -3.9], [-2.0, -1.8, 3.1, 3.5], [-0.0, -1.2, 2.0, -1.7],
              [2.5, -1.9, -0.0, 1.8], [0.75, 2.6, -3.3, -1.0], [0.0, -0.36, -0.5, 1.0]]
    grads = []
    for backend in BACKENDS:
        x = _t(backend, values, dtype, True)
        w = _t(backend, [1.0, 0.5, -2.0, 1.0], dtype, True) if with_weight else None
        out = backend.nn.functional.layer_norm(x, (4,), w)
        out.backward(_t(backend, upstream, dtype))
        grads.append([t.grad.numpy() for t in (x, w) if t is not None])
    for got, want in zip(*grads):
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == "float32" else 1e-12, atol=1e-5, equal_nan=True)


@pytest.mark.parametrize("bias_dtype", ["float32", "float64"])
@pytest.mark.parametrize("bias_shape", [(2, 4), (2, 2, 4), (3, 4), (2, 1, 4), (1, 2, 4), (2, 2, 2, 4)])
def test_linear_adds_a_bias_of_another_shape_in_place_as_torch(bias_shape, bias_dtype):
    # Fuzzer finding: for a batched input and a bias that is not one value per output feature,
    # torch runs output.add_(bias): a float64 bias leaves a float32 result, and a bias that would
    # broadcast the output larger raises the in-place error.
    def run(backend):
        x = backend.ones(2, 2, 3, requires_grad=True)
        w = backend.ones(4, 3, requires_grad=True)
        b = backend.ones(*bias_shape, dtype=getattr(backend, bias_dtype), requires_grad=True)
        try:
            out = backend.nn.functional.linear(x, w, b)
            out.sum().backward()
        except Exception as exc:  # noqa: BLE001 - the exception is the observation
            return type(exc).__name__, str(exc)
        return (str(out.dtype).rpartition(".")[2], tuple(out.shape), out.grad_fn.name(),
                str(b.grad.dtype).rpartition(".")[2], b.grad.numpy().tolist(), x.grad.numpy().tolist(),
                w.grad.numpy().tolist())
    assert run(engine) == run(torch)


@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss"])
@pytest.mark.parametrize("input_shape, target_shape", [
    ((2, 1, 3, 1), (2, 3)), ((2, 3, 4, 5), (2, 4)), ((2, 3, 4, 5), (2, 4, 5, 1)), ((2, 3, 4, 5), (2, 4, 6)),
    ((2, 3, 4), (2,)), ((2, 3, 4), (2, 5)), ((2, 3, 4, 5, 6), (2, 4, 5)), ((2, 3, 4, 5), (3, 4, 5))])
def test_class_index_targets_of_the_wrong_shape_raise_as_torch(loss, input_shape, target_shape):
    # Fuzzer finding: a 4-d input goes to nll_loss2d unchanged, whose checks word the errors.
    def call(backend):
        getattr(backend.nn.functional, loss)(backend.zeros(*input_shape), backend.zeros(*target_shape, dtype=backend.int64))
    outcomes = []
    for backend in (engine, torch):
        with pytest.raises(Exception) as info:
            call(backend)
        outcomes.append((type(info.value), str(info.value)))
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize("shape", [(0, 0), (0, 3), (3, 0), (2, 0, 3)])
def test_softmax_and_log_softmax_of_an_empty_input_are_empty_as_torch(shape):
    for dim in range(len(shape)):
        for name in ("softmax", "log_softmax"):
            x = engine.zeros(*shape, requires_grad=True)
            out = getattr(engine.nn.functional, name)(x, dim)
            out.sum().backward()
            assert tuple(out.shape) == shape and tuple(x.grad.shape) == shape


def test_cross_entropy_of_an_empty_batch_checks_the_batch_size_as_torch():
    # Fuzzer finding: log_softmax of a (0, 0) input raised numpy's zero-size error first.
    outcomes = []
    for backend in (engine, torch):
        with pytest.raises(ValueError) as info:
            backend.nn.functional.cross_entropy(backend.eye(0), backend.tensor([1, 4, 0]))
        outcomes.append(str(info.value))
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_bce_with_logits_double_backward_with_pos_weight_at_huge_logits_as_torch(dtype):
    # Fuzzer finding: the target's gradient, log_sigmoid(-x) - pos_weight * log_sigmoid(x), was
    # recorded as log(sigmoid(.)), -inf at x = 1e30 and NaN below it in the double backward;
    # torch records LogSigmoidBackward0, whose derivative is sigmoid(-x).
    def program(backend):
        dt = getattr(backend, dtype)
        x = backend.tensor([[1e-40, -2.3, 1e30], [3.9, 2.0, float("inf")]], dtype=dt, requires_grad=True)
        t = backend.tensor([[0.0, 1.0, 0.5], [1.0, 0.0, 0.25]], dtype=dt, requires_grad=True)
        loss = backend.nn.functional.binary_cross_entropy_with_logits(x, t, pos_weight=backend.tensor([1.0, 2.0, 0.5],
                                                                                                       dtype=dt))
        grads = backend.autograd.grad(loss.sum(), [x, t], create_graph=True)
        sum(g.sum() for g in grads).backward()
        return [g.detach().numpy() for g in grads] + [x.grad.numpy(), t.grad.numpy()]
    for got, want in zip(program(engine), program(torch)):
        np.testing.assert_allclose(got, want, rtol=1e-6 if dtype == "float32" else 1e-12)



def _bce_with_logits_saved(b, given):
    return b.nn.functional.binary_cross_entropy_with_logits(given["x"], given["t"], weight=given["w"],
                                                            pos_weight=given["pw"])


def _bce_saved(b, given):
    return b.nn.functional.binary_cross_entropy(given["x"].sigmoid(), given["t"], weight=given["w"])


def _nll_5d_saved(b, given):
    # NOTE: torch views an input of more than 4 dims, and its target, for nll_loss2d.
    return b.nn.functional.nll_loss(given["x"].reshape(2, 3, 1, 1, 1), given["c"].reshape(2, 1, 1, 1),
                                    weight=given["w"][0])


def _nll_double_saved(b, given):
    x = given["x"]
    g, = b.autograd.grad(b.nn.functional.nll_loss(x, given["c"], weight=given["w"][0]), x, create_graph=True)
    return (g * x).sum()


def _bce_double_saved(b, given):
    x = given["x"]
    g, = b.autograd.grad(b.nn.functional.binary_cross_entropy(x.sigmoid(), given["t"], weight=given["w"]), x,
                         create_graph=True)
    return (g * x).sum()


SAVED_CONSTANTS = [(loss, modified) for loss, cases in [
    (_bce_with_logits_saved, [("w",), ("pw",), ("t", "w"), ("w", "pw"), ("t", "w", "pw")]),
    (_bce_saved, [("w",), ("t", "w")]),
    (_nll_5d_saved, [("w",), ("c",), ("c", "w")]),
    (_nll_double_saved, [("w",), ("c",)]),
    (_bce_double_saved, [("w",), ("t",)]),
] for modified in cases]


@pytest.mark.parametrize("loss, modified", SAVED_CONSTANTS)
def test_losses_save_their_weights_and_targets_for_backward_as_torch(loss, modified):
    # Fuzzer finding: a binary_cross_entropy_with_logits weight zeroed in place after the call
    # made torch's backward raise its version error, not the engine's. torch saves a loss's
    # weight, pos_weight and class targets as it saves the input, and checks them in the order
    # of their names (pos_weight first): the error names the first modified one.
    def program(backend):
        given = {"x": _t(backend, [[0.5, -1.0, 2.0], [1.0, 0.0, -3.0]], "float64", requires_grad=True),
                 "t": _t(backend, [[0.0, 1.0, 0.5], [1.0, 0.0, 0.25]], "float64"),
                 "c": _t(backend, [2, 0], "int64"),
                 "w": _t(backend, [[1.0, 2.0, 0.5]], "float64"),
                 "pw": _t(backend, [[3.0], [0.5]], "float64")}
        out = loss(backend, given)
        for name in modified:
            given[name].mul_(2)
        return _outcome(lambda b: out.backward(), backend)
    ours, theirs = program(engine), program(torch)
    assert ours == theirs
    assert ours[0] == "RuntimeError"


@pytest.mark.parametrize("create_graph", [False, True])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("weights", ["none", "weight", "pos_weight", "both"])
@pytest.mark.parametrize("dtypes", [("float32", "float64", "float64"), ("float64", "float32", "float32"),
                                    ("float32", "float32", "float64"), ("float64", "float64", "float32")])
def test_bce_with_logits_gradients_follow_torch_dtypes_and_in_place_steps(dtypes, weights, reduction, create_graph):
    # Fuzzer finding: a float32 logit of 3e38 with a float64 target and a weight of 2: torch's
    # target gradient is (-x * grad).mul_(weight), float32 under a 0-d grad, so -inf; the engine
    # computed it in float64 (-6e38). The input's gradient is computed in place too (without a graph).
    input_dtype, target_dtype, weight_dtype = dtypes

    def program(backend):
        x = _t(backend, [[-2.2, 1.57, 1e-30], [1.15, 3e38, float("nan")], [-3e38, 40.0, -1e30]], input_dtype, True)
        t = _t(backend, [[0.0, 1.0, 0.5], [1.0, 0.0, 0.25], [0.75, 1.0, 0.0]], target_dtype, True)
        weight = _t(backend, [2.0, 3e30, 0.5], weight_dtype) if weights in ("weight", "both") else None
        pos_weight = _t(backend, [1.5, 2.0, 1e20], weight_dtype) if weights in ("pos_weight", "both") else None
        loss = backend.nn.functional.binary_cross_entropy_with_logits(x, t, weight, reduction=reduction,
                                                                       pos_weight=pos_weight)
        return [g.detach().numpy() for g in backend.autograd.grad(loss.sum(), (x, t), create_graph=create_graph)]

    for got, want in zip(program(engine), program(torch)):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
        np.testing.assert_allclose(got, want, rtol=1.3e-6 if want.dtype == np.float32 else 1e-7, atol=1e-5)


@pytest.mark.parametrize("shape, dim", [((2, 3), 1), ((2, 3), 0), ((4,), 0), ((), 0)])
def test_log_softmax_gradient_with_create_graph_is_torchs_recorded_node(shape, dim):
    # Fuzzer finding (cross_entropy double backward): torch records _log_softmax_backward_data
    # as one node, LogSoftmaxBackwardDataBackward0, with derivatives of its own.
    def program(backend):
        values = np.linspace(-2.0, 3.0, int(np.prod(shape))).reshape(shape)
        x = backend.tensor(values.tolist(), dtype=backend.float64, requires_grad=True)
        w = backend.tensor((values * values - 1).tolist(), dtype=backend.float64, requires_grad=True)
        y = backend.nn.functional.log_softmax(x, dim)
        g, = backend.autograd.grad((y * w).sum(), x, create_graph=True)
        ((g * g * w).sum()).backward()
        return g.grad_fn.name(), g.detach().numpy(), x.grad.numpy(), w.grad.numpy()
    ours, theirs = program(engine), program(torch)
    assert ours[0] == theirs[0]
    for got, want in zip(ours[1:], theirs[1:]):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("shape", [(3,), (40, 3), (2, 3, 20), (2, 3, 4, 5), (300, 2), (4500, 2)])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("ignored", [True, False])
def test_nll_loss_sums_in_torchs_cascade_order(shape, reduction, weighted, dtype, ignored):
    # Fuzzer finding: a loss of picked values 2.6, ..., 1e30, ..., -1e30 was 0 in the engine and
    # 2.6 / 12 in torch: torch's kernel adds into cascading partial sums, in which the first
    # term is added last. (Without ignored targets the engine adds the first level's runs at once.)
    rng = np.random.default_rng(sum(shape))
    values = rng.choice([1e30, -1e30, 2.5, -3.25, 1.0, 1e-3, 7.0], size=shape)
    classes = shape[1] if len(shape) > 1 else shape[0]
    target_shape = (shape[0],) + shape[2:] if len(shape) > 1 else ()
    target = rng.integers(-1 if ignored else 0, classes, size=target_shape)   # -1: ignored below

    def program(b):
        dt = getattr(b, dtype)
        weight = b.tensor(rng_weights.tolist(), dtype=dt) if weighted else None
        return b.nn.functional.nll_loss(b.tensor(values.tolist(), dtype=dt), b.tensor(target.tolist()),
                                        weight=weight, ignore_index=-1, reduction=reduction).item()
    rng_weights = np.random.default_rng(7).choice([0.5, 2.0, 1e10, 3.0], size=classes)
    ours, theirs = program(engine), program(torch)
    assert ours == theirs or (np.isnan(ours) and np.isnan(theirs))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_nll_loss_of_a_batch_of_up_to_256_sums_in_torchs_cascade_order(dtype):
    # A batch of 2-256 losses, all targets valid (W3's 64), is summed in a few numpy calls
    # (_cascade_sum_short): torch's order bit for bit, with cancelling huge values, zeros of
    # both signs (an all -0.0 batch sums to +0.0 in torch) and infinities.
    rng = np.random.default_rng(12)
    for n in (2, 3, 15, 16, 17, 18, 31, 32, 33, 48, 49, 64, 100, 240, 241, 255, 256):
        for kind in range(4):
            picked = [rng.choice([1e30, -1e30, 2.5, -3.25, 1.0, 1e-3, -0.0], size=n),
                      rng.choice([0.0, -0.0], size=n), np.full(n, 0.0),
                      rng.choice([np.inf, 1.0, -2.0, 1e30], size=n)][kind]
            values = np.zeros((n, 3))
            values[np.arange(n), np.arange(n) % 3] = -picked   # nll_loss negates what it picks

            def loss(b):
                return b.nn.functional.nll_loss(b.tensor(values, dtype=getattr(b, dtype)),
                                                b.tensor(np.arange(n) % 3), reduction="sum").numpy()
            ours, theirs = loss(engine), loss(torch)
            assert ours.tobytes() == theirs.tobytes(), (n, kind, ours, theirs)


def test_leaky_relu_of_huge_positive_values_warns_nothing_as_torch():
    # Fuzzer finding: x * negative_slope overflowed (numpy's RuntimeWarning) where x > 0 keeps x.
    caught = []
    for backend in (engine, torch):
        with warnings.catch_warnings(record=True) as found:
            warnings.simplefilter("always")
            x = backend.tensor([[-2.2, 3e38], [1e-30, float("nan")]], requires_grad=True)
            backend.nn.functional.leaky_relu(x, negative_slope=2).sum().backward()
        caught.append([str(w.message) for w in found])
    assert caught[0] == caught[1] == []


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("create_graph", [False, True])
def test_log_softmax_gradient_is_torchs_fused_multiply_add(dtype, create_graph):
    # Fuzzer finding (cross_entropy double backward): g - exp(y) * sum(g) with g all 1.2e38 at
    # y = -log(5) is -6.7e21 in torch, whose kernel fuses the product and the difference, and
    # was 0 in the engine, which rounded the product first.
    def program(b):
        dt = getattr(b, dtype)
        x = b.zeros(5, dtype=dt, requires_grad=True)
        y = b.nn.functional.log_softmax(x, 0)
        g, = b.autograd.grad(y, x, b.full((5,), 1.2000000001991024e38 if dtype == "float64" else 1.2e37, dtype=dt),
                             create_graph=create_graph)
        return g.detach().numpy().tolist()
    assert program(engine) == program(torch)


LAYER_NORM_ROWS = {
    # fuzzer findings: a constant row (its input gradient cancels to exactly 0 in torch), and
    # rows with huge values (torch's float32 variance overflows: rstd 0, and NaN gradients)
    "constant row": ([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]], (3,), True, True),
    "huge values": ([[[float("nan"), 1.51, 3.96, 1.85], [float("nan"), float("nan"), -1.15, float("nan")],
                      [1.0, 1e-40, -0.0, -0.95]],
                     [[-1.76, 1e30, 2.18, -0.5], [3.76, 1e-40, 1.53, 0.5], [1e-30, 2.73, 3e38, 1.14]]],
                    (3, 4), True, False),
    "constant row above 1.8e19": ([[1e20, 1e20, 1e20]], (3,), False, False),
    "near-constant rows": ((100 + np.arange(18.0).reshape(2, 9) * 1e-4).tolist(), (9,), True, True),
    "rows of 8 lanes and a tail": ((np.arange(60.0).reshape(2, 30) % 7 * 1.37 - 3).tolist(), (30,), True, True),
    "many chunks": ((np.sin(np.arange(600.0)) * 50 + 100).reshape(2, 300).tolist(), (300,), False, True),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", sorted(LAYER_NORM_ROWS))
def test_layer_norm_is_torchs_kernel_arithmetic(case, dtype):
    # Fuzzer findings: float32 gradients of a constant row (3e-5 where torch's is exactly 0,
    # amplified by rstd = 316) and of huge rows (inf where torch's is NaN). torch's kernel
    # computes the moments by Welford updates on 8 float32 (4 float64) lanes, rstd and the
    # output in the input's dtype (with fused multiply-adds), and its backward sums by lanes.
    values, shape, with_weight, with_bias = LAYER_NORM_ROWS[case]

    def program(backend):
        x = _t(backend, values, dtype, True)
        n = int(np.prod(shape))
        weight = _t(backend, (np.cos(np.arange(n)) + 0.5).reshape(shape).tolist(), dtype, True) if with_weight else None
        bias = _t(backend, np.linspace(-1, 1, n).reshape(shape).tolist(), dtype, True) if with_bias else None
        y = backend.nn.functional.layer_norm(x, shape, weight, bias, 1e-5)
        upstream = _t(backend, np.cos(np.arange(y.numel()) * 0.7).reshape(tuple(y.shape)).tolist(), dtype)
        (y * upstream).sum().backward()
        return [y.detach().numpy(), x.grad.numpy()]

    for got, want in zip(program(engine), program(torch)):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("shape, with_weight", [((0,), False), ((0, 3), False), ((0, 3), True)])
def test_cross_entropy_of_an_empty_input_with_probability_targets_is_torchs_nan(shape, with_weight):
    # Fuzzer finding: the engine refused reduction='mean' of an empty input; torch fills the
    # sum with NaN in place and negates it (NegBackward0 over FillBackward2), and backward works.
    outs = []
    for backend in BACKENDS:
        x = backend.zeros(shape, requires_grad=True)
        target = backend.zeros(shape, requires_grad=True)
        weight = backend.ones(3) if with_weight else None
        loss = backend.nn.functional.cross_entropy(x, target, weight=weight)
        graph = _graph(loss)
        loss.backward()
        outs.append((np.isnan(loss.item()), graph, tuple(x.grad.shape), tuple(target.grad.shape)))
    assert outs[0] == outs[1]


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("target", ["probabilities", "indices"])
@pytest.mark.parametrize("shape", [(2, 0), (0, 0), (2, 0, 3)])
def test_cross_entropy_without_classes_with_label_smoothing_as_torch(shape, target, reduction):
    # Fuzzer finding (seed 25): cross_entropy(narrow(x, -1, 3, 0), itself, label_smoothing=0.25)
    # raised ZeroDivisionError in the engine; torch's label_smoothing / n_classes is a C++ double
    # division (inf): added to no element, or times an empty sum (NaN). A (2, 0, 3) input with
    # class indices is viewed as (2, 0, 0, 0) (torch's empty-batch view) and refused by nll_loss2d.
    def run(m):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            x = m.zeros(*shape, requires_grad=True)
            t = x if target == "probabilities" else m.zeros(*((shape[0],) + shape[2:]), dtype=m.int64)
            try:
                loss = m.nn.functional.cross_entropy(x, t, label_smoothing=0.25, reduction=reduction)
                loss.sum().backward()
                out = (str(loss.tolist()), loss.grad_fn.name(), tuple(x.grad.shape))
            except (RuntimeError, IndexError) as error:
                out = (type(error).__name__, str(error))
        return out, [str(w.message) for w in caught]
    assert run(engine) == run(torch)


# fuzzer programs (seed 4): an input and a weight of zeros, some signed
LAYER_NORM_ZERO_WEIGHTS = {   # (input, weight) of shapes (2, 3, 4) and (3, 4)
    "float32": (np.array([
        2.7721850872039795, -3.9999194145202637, 1.2692936658859253, 1.2656729221343994,
        -3.6830637454986572, 3.2402422428131104, 1.4905296564102173, -0.5096372961997986, -0.5,
        -0.11978225409984589, 0.9639906883239746, -3.6583526134490967, -0.0, 1.7099844217300415,
        3.8600378036499023, -2.0, 2.9683897495269775, -2.919560432434082, -3.5812265872955322,
        -0.37253138422966003, -1.5770809650421143, -1.3081387281417847, 3.4647417068481445,
        2.5571959018707275
    ]).reshape(2, 3, 4).tolist(), np.array([
        0.0, -3.5706710815429688, 0.0, -1.3601138591766357, -0.0, 0.0, -2.3708460330963135, 0.0,
        -0.5060673952102661, -0.0, 3.2255945205688477, -2.5181562900543213
    ]).reshape(3, 4).tolist()),
    "float64": (np.array([
        0.0, -2.3095901438177693, -3.008548853703349, -3.8869107390317144, -2.0,
        -1.8326323340509065, 3.075288128809183, 3.5216598785630393, -0.0, -1.213483870212845, 2.0,
        -1.6761544601837777, 2.461139439591753, -1.8742578399463352, -0.0, 1.8002650601569048,
        0.7514364588893636, 2.616805097384566, -3.279867275410738, -1.0, 0.0, -0.3572447546595759,
        -0.5, 1.0
    ]).reshape(2, 3, 4).tolist(), np.array([
        0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    ]).reshape(3, 4).tolist()),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_layer_norm_double_backward_reads_the_saved_statistics_as_torch(dtype):
    # Fuzzer finding: log2 of a layer_norm with a zero weight has infinite gradients; where the
    # double backward's terms are exactly 0 (inf * 0 = NaN) follows from torch's saved mean and
    # rstd, which the engine's recomputed statistics missed by a rounding.
    def program(backend):
        values, weights = LAYER_NORM_ZERO_WEIGHTS[dtype]
        x, w = _t(backend, values, dtype, True), _t(backend, weights, dtype, True)
        y = backend.nn.functional.layer_norm(x, [3, 4], w, eps=0.001)
        y.log2_()
        grads = backend.autograd.grad(y.sum(), [x, w], create_graph=True)
        sum(g.sum() for g in grads).backward()
        return [g.detach().numpy() for g in grads] + [x.grad.numpy(), w.grad.numpy()]

    for got, want in zip(program(engine), program(torch)):
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_allclose(got, want, rtol=1.3e-6 if dtype == "float32" else 1e-7, atol=1e-5)


@pytest.mark.parametrize("input_dtype", ["int64", "bool", "float32", "float64"])
@pytest.mark.parametrize("target_dtype", ["float32", "int64", "bool"])
@pytest.mark.parametrize("pos_weight", [False, True])
def test_bce_with_logits_of_non_float_operands_raises_as_torch(input_dtype, target_dtype, pos_weight):
    # Fuzzer finding (int64 logits): torch's kernel starts with log_sigmoid(input), which has no
    # integer loop, then computes (1 - target).mul_(input) in the target's dtype.
    def call(b):
        return b.nn.functional.binary_cross_entropy_with_logits(
            b.ones(2, dtype=getattr(b, input_dtype)), b.ones(2, dtype=getattr(b, target_dtype)),
            pos_weight=b.ones(2) if pos_weight else None).dtype.is_floating_point
    assert _outcome(call, engine) == _outcome(call, torch)


@pytest.mark.parametrize("loss", ["mse_loss", "smooth_l1_loss"])
@pytest.mark.parametrize("input_dtype", ["float32", "float64", "bool"])
@pytest.mark.parametrize("target_dtype", ["float32", "float64"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_pointwise_loss_gradients_with_a_graph_are_torchs_backward_nodes(loss, input_dtype, target_dtype, reduction):
    # Fuzzer finding: mse_loss(bool input, float target) differentiated twice. torch's first
    # gradient is one <Loss>BackwardBackward0 node (its kernel takes a bool operand); the second
    # order is that node's own formulas: mse's never subtracts, smooth_l1's does (and raises).
    def program(b):
        x = b.tensor([0.5, 2.0, -1.0], dtype=getattr(b, input_dtype), requires_grad=input_dtype != "bool")
        t = b.tensor([1.0, -1.0, 0.0], dtype=getattr(b, target_dtype), requires_grad=True)
        inputs = [a for a in (x, t) if a.requires_grad]
        out = []
        try:
            grads = b.autograd.grad(getattr(b.nn.functional, loss)(x, t, reduction=reduction).sum(), inputs,
                                    create_graph=True)
            out += [(g.grad_fn.name(), str(g.dtype), g.detach().numpy().tolist()) for g in grads]
            seconds = b.autograd.grad(sum(g.sum() for g in grads), inputs, allow_unused=True, create_graph=True)
            out += [None if g is None else (g.grad_fn and g.grad_fn.name(), g.detach().numpy().tolist())
                    for g in seconds]
        except RuntimeError as error:
            out.append(str(error))
        return out
    ours, theirs = program(engine), program(torch)
    assert len(ours) == len(theirs)
    for mine, reference in zip(ours, theirs):
        if isinstance(reference, tuple):
            assert mine[:-1] == reference[:-1]
            np.testing.assert_allclose(mine[-1], reference[-1], rtol=1e-6)
        else:
            assert mine == reference


LINEAR_INPUTS = {
    "contiguous 3-d": lambda b: b.ones(2, 5, 3, requires_grad=True) * 1,
    "transposed 3-d": lambda b: b.ones(2, 3, 5, requires_grad=True).transpose(1, 2),
    "expanded 3-d": lambda b: b.ones(1, 5, 3, requires_grad=True).expand(2, 5, 3),
    "diagonal": lambda b: b.diagonal(b.ones(3, 3, requires_grad=True)),
    "strided 1-d": lambda b: b.ones(6, requires_grad=True)[::2],
}


@pytest.mark.parametrize("name", sorted(LINEAR_INPUTS))
def test_linear_flattens_only_a_contiguous_input_as_torch(name):
    # Fuzzer finding: linear of a diagonal (1-d, not contiguous) with a bias is matmul then
    # add_ in torch (AddBackward0), not the flattened addmm (ViewBackward0) of contiguous inputs.
    def program(b):
        x = LINEAR_INPUTS[name](b)
        weight = b.tensor([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]], requires_grad=True)
        out = b.nn.functional.linear(x, weight, b.tensor([0.25, -0.5], requires_grad=True))
        out.sum().backward()
        return out.grad_fn.name(), out.detach().numpy().tolist(), weight.grad.numpy().tolist()
    assert program(engine) == program(torch)


LINEAR_BIASES = {
    "contiguous": lambda b: b.tensor([0.25, -0.5], requires_grad=True),
    "strided": lambda b: b.tensor([[0.25, 1.0], [-0.5, 2.0]], requires_grad=True)[:, 0],
    "unbind column": lambda b: b.unbind(b.tensor([[0.25, 1.0], [-0.5, 2.0]], requires_grad=True), 1)[0],
    "expanded": lambda b: b.tensor([0.25], requires_grad=True).expand(2),
    "1 x 2": lambda b: b.tensor([[0.25, -0.5]], requires_grad=True),
    "1 x 2 of a column": lambda b: b.tensor([[0.25], [-0.5]], requires_grad=True).t(),
    "one value": lambda b: b.tensor([0.25], requires_grad=True),
    "strided 1 x 1 x 2": lambda b: b.tensor([[0.25, 1.0], [-0.5, 2.0]], requires_grad=True)[:, 0].reshape(1, 1, 2),
}


@pytest.mark.parametrize("input_shape", [(3,), (2, 2, 3)])
@pytest.mark.parametrize("bias", sorted(LINEAR_BIASES))
def test_linear_flattens_only_with_a_contiguous_bias_as_torch(bias, input_shape):
    """Campaign finding (seed 45): linear(x, w, unbind(b, 1)[0]) with a 1-d x is matmul then
    add_ in torch (AddBackward0): its flattened addmm needs a contiguous bias too."""
    def program(m):
        x = m.ones(*input_shape, requires_grad=True)
        weight = m.tensor([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]], requires_grad=True)
        try:
            out = m.nn.functional.linear(x, weight, LINEAR_BIASES[bias](m))
        except RuntimeError as error:
            return str(error)
        out.sum().backward()
        return out.grad_fn.name(), out.detach().numpy().tolist(), x.grad.numpy().tolist(), weight.grad.numpy().tolist()
    assert program(engine) == program(torch)


@pytest.mark.parametrize("input_shape", [(3,), (2, 3), (2, 2, 3), (2, 1, 2, 3)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_backward_reaches_its_leaves_in_torchs_order(input_shape, with_bias):
    # Fuzzer finding: torch's flattened linear reshapes the input before it transposes the
    # weight, so the weight's gradient is accumulated first; a backward that then raises in the
    # input's branch (floor_divide has no derivative) leaves the weight's gradient set.
    def program(b):
        order = []
        x = b.ones(input_shape, requires_grad=True)
        weight = b.tensor([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]], requires_grad=True)
        bias = b.tensor([0.25, -0.5], requires_grad=True) if with_bias else None
        for name, leaf in (("input", x), ("weight", weight), ("bias", bias)):
            if leaf is not None:
                leaf.register_hook(lambda g, name=name: order.append(name))
        b.nn.functional.linear(x, weight, bias).sum().backward()
        raised = None
        try:
            b.nn.functional.linear(b.floor_divide(x, 2.0), weight, bias).sum().backward()
        except RuntimeError as error:
            raised = str(error)
        return order, raised, weight.grad.numpy().tolist(), None if bias is None else bias.grad.numpy().tolist()
    assert program(engine) == program(torch)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_binary_cross_entropy_is_torchs_scalar_kernel_bit_for_bit(dtype):
    # Fuzzer finding: torch's binary_cross_entropy calls the C library's log1p and log element by
    # element; numpy's float32 log1p was an ulp off (-log(0.9)), which v / v amplified to a
    # second-order gradient of 3e-5 where torch's is 0.
    rng = np.random.default_rng(7)
    x = rng.uniform(0, 1, 600).astype(dtype)
    x[:4] = [0.0, 1.0, 0.1, 0.5]
    t = rng.uniform(0, 1, 600).astype(dtype)
    t[::3], t[1::3] = 0, 1
    def loss(b):
        return b.nn.functional.binary_cross_entropy(b.tensor(x), b.tensor(t), reduction="none").numpy()
    np.testing.assert_array_equal(loss(engine), loss(torch))


@pytest.mark.parametrize("loss", ["nll_loss", "cross_entropy"])
@pytest.mark.parametrize("kwargs", [{}, {"ignore_index": 2}, {"weight": [1.0, 0.0, 0.0]}])
def test_unbatched_class_losses_without_reduction_come_from_torchs_reducing_loop(loss, kwargs):
    # Fuzzer finding: nll_loss of a 1-d input of zeros, reduction 'none', is +0.0 in torch (its
    # loop computes 0 - w x), -0.0 in the engine (-w x).
    def run(b):
        kw = {k: b.tensor(v) if isinstance(v, list) else v for k, v in kwargs.items()}
        x = b.tensor([0.0, -0.0, 0.0], requires_grad=True)
        out = getattr(b.nn.functional, loss)(x * 1, b.tensor(2), reduction="none", **kw)
        out.backward()
        return str(out.detach().numpy()), out.grad_fn.name(), str(x.grad.numpy())
    assert run(engine) == run(torch)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("seed", range(4))
def test_gelu_tanh_scalar_loop_is_torchs_fused_arithmetic_bit_for_bit(dtype, seed):
    """Fuzzer finding: log2(gelu(-3, 'tanh')) had a gradient 5e-6 off torch's. torch's scalar op
    (here the whole loop: 15 elements are fewer than two vectors) is compiled with fused
    multiply-adds (x + kKappa * x^3, and the backward's 1 - t * t and 1 + 3 kKappa x^2) and
    calls the C library's tanh; 1 + tanh(inner) near -1 amplifies any last-bit difference."""
    values = np.random.default_rng(seed).standard_normal(15) * 3
    values[0] = -3.0
    results = []
    for m in (torch, engine):
        x = m.tensor(values.tolist(), dtype=getattr(m, dtype), requires_grad=True)
        y = m.nn.functional.gelu(x, approximate="tanh")
        (g,) = m.autograd.grad(y, [x], m.linspace(-2, 2, 15, dtype=getattr(m, dtype)))
        results.append((y.detach().numpy(), g.numpy()))
    for ours, theirs in zip(results[1], results[0]):
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("loss", ["mse_loss", "smooth_l1_loss", "binary_cross_entropy"])
def test_pointwise_losses_reduce_in_torchs_order_bit_for_bit(loss, reduction):
    """Campaign finding (seed 47): mse_loss of 6 float32 errors was 1 ulp off torch's (numpy's
    sum adds in another order than torch's cascade sum; tan of it then differed by 5e-5)."""
    rng = np.random.default_rng(47)
    for n in (1, 6, 7, 8, 9, 17, 33, 100, 257):
        for dtype in ("float32", "float64"):
            a = rng.standard_normal(n) * 3
            x, y = (1 / (1 + np.exp(-a)), rng.uniform(0, 1, n)) if loss == "binary_cross_entropy" else (
                a, rng.standard_normal(n))
            results = [getattr(m.nn.functional, loss)(m.tensor(x.tolist(), dtype=getattr(m, dtype)),
                                                      m.tensor(y.tolist(), dtype=getattr(m, dtype)),
                                                      reduction=reduction).item() for m in (engine, torch)]
            assert results[0] == results[1], (n, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_layer_norm_weight_gradient_of_constant_rows_is_torchs_fused_residue(dtype):
    """Campaign finding (seed 54): rows of equal values normalize to the rounding residue of
    torch's fma(rstd, x, -rstd * mean), not to 0, so an inf upstream gradient makes the weight's
    gradient inf (and huge values where the gradient is huge), not NaN and 0."""
    def grads(m):
        x = m.tensor([[1.4188497459469684], [-2.3095901438177693], [-3.008548853703349]],
                     dtype=getattr(m, dtype), requires_grad=True)
        w = m.zeros(4, dtype=getattr(m, dtype), requires_grad=True)
        g = m.tensor([[1e30, -2.3, -3.0, -1e-30], [-2.0, -1.8, 3.1, 3.5], [INF, -1.2, 2.0, 1e30]], dtype=getattr(m, dtype))
        m.nn.functional.layer_norm(x.expand(3, 4), (4,), weight=w).backward(gradient=g)
        return w.grad.tolist(), x.grad.tolist()
    ours, theirs = grads(engine), grads(torch)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-6)
    np.testing.assert_array_equal(ours[1], theirs[1])


@pytest.mark.parametrize("layout", ["contiguous", "column", "single", "transposed", "strided", "expanded", "0-d"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gelu_at_infinities_and_near_float32_max_follows_torchs_kernel_choice(layout, dtype):
    """Campaign finding (seed 9): gelu of an outer product reaching 3e38 was inf in torch and finite
    in the engine. torch 2.13 runs float32 gelu of a contiguous input of several elements on
    oneDNN (nan at +-inf, inf from 2**127 on) and everything else on ATen's kernel."""
    inf = float("inf")
    values = [inf, -inf, 2.0 ** 127, 3e38, -3e38, 1e30, 2.5, -0.0, float("nan")]

    def run(m):
        full = m.tensor(values, dtype=getattr(m, dtype))
        x = {"contiguous": lambda: full, "column": lambda: full.reshape(9, 1),
             "single": lambda: full[:1].clone(), "transposed": lambda: full.reshape(3, 3).t(),
             "strided": lambda: full[::2], "expanded": lambda: full[:1].expand(4),
             "0-d": lambda: full[2].clone()}[layout]()
        return m.nn.functional.gelu(x).numpy()
    np.testing.assert_array_equal(run(engine), run(torch))


@pytest.mark.parametrize("layout", ["contiguous", "single", "transposed"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gelu_zero_signs_follow_torchs_kernel_choice(layout, dtype):
    """Campaign finding (seed 13): gelu of -0.0 in a float32 tensor of 6 elements was -0.0 in the
    engine, 0.0 in torch. oneDNN's float32 gelu gives no -0.0 (-0.0 and negatives that underflow
    give 0.0), and its derivative is 0 from x = -6.1513515 down (where x * pdf(x) is under 2**-26),
    so a zero upstream gradient keeps its own sign there; ATen's kernel (one element, not
    contiguous, float64) gives -0.0 and a tiny negative derivative."""
    values = [-0.0, 0.0, -1e-45, -6.151351, -6.1513515, -10.0, -30.0, -1e38, 1.0]

    def run(m):
        full = m.tensor(values * 2, dtype=getattr(m, dtype))
        x = {"contiguous": lambda: full, "single": lambda: full[5:6].clone(),
             "transposed": lambda: full.reshape(2, 9).t()}[layout]().requires_grad_()
        y = m.nn.functional.gelu(x)
        results = [y.detach().numpy()]
        for seed in (0.0, -0.0, 1.0):
            (grad,) = m.autograd.grad(y, x, m.full(tuple(y.shape), seed, dtype=getattr(m, dtype)), retain_graph=True)
            results.append(grad.numpy())
        return results
    for ours, theirs in zip(run(engine), run(torch)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(np.signbit(ours), np.signbit(theirs))


def test_bce_with_logits_float32_rounds_log_sigmoid_in_torchs_steps():
    """Campaign finding (seed 10): bce_with_logits of -0.776 (weighted, summed) was an ulp off
    torch's, and tan after it turned that into a gradient difference. torch's log_sigmoid kernel
    rounds exp(-|x|) and log1p of it to float32 in turn; only SLEEF's last-ulp differences from
    correctly rounded exp and log1p remain (76 of 4,000 losses here; one float64 rounding of the
    whole formula: ~17 % of values)."""
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(4000) * 3).astype(np.float32)
    t = rng.uniform(0, 1, 4000).astype(np.float32)
    x[0], t[0] = -0.7759921550750732, 0.0
    losses = [m.nn.functional.binary_cross_entropy_with_logits(m.tensor(x), m.tensor(t), reduction="none").numpy()
              for m in (torch, engine)]
    assert losses[1][0] == losses[0][0]
    assert (losses[1] != losses[0]).sum() <= 120
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-6, atol=1e-7)   # (within a few ulps)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 2), (3,)])
def test_soft_label_cross_entropy_of_a_zero_target_keeps_torchs_zero_signs(reduction, shape):
    """Left item of session 10: cross_entropy with probabilities as the target, a target of
    zeros: the input's gradient is 0.0 in torch where the class dim is the last (its softmax
    backward kernels sum a row of -0.0 into -0.0 along the last dim: g - exp(y) * -0.0 is 0.0),
    -0.0 along another dim (that kernel's sum starts from 0.0); the engine's sum gave 0.0
    everywhere, so -0.0 - exp(y) * 0.0 was -0.0."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)

    def signs(m):
        inp = m.tensor(x, requires_grad=True)
        loss = m.nn.functional.cross_entropy(inp, m.zeros(shape), reduction=reduction)
        (grad,) = m.autograd.grad(loss.sum(), inp)
        return np.signbit(grad.numpy()).tolist(), grad.tolist()
    assert signs(engine) == signs(torch)


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dim", [0, 1, 2])
def test_softmax_backward_of_negative_zero_gradients_keeps_torchs_zero_signs(fn, dim):
    """softmax and log_softmax backward of a gradient of -0.0 (a product with zeros, negated):
    0.0 along the last dim (torch's lastdim kernels sum -0.0 into -0.0), -0.0 along the others."""
    x = np.random.default_rng(1).standard_normal((2, 3, 2)).astype(np.float32)

    def signs(m):
        inp = m.tensor(x, requires_grad=True)
        out = (getattr(m.nn.functional, fn)(inp, dim=dim) * m.zeros(2, 3, 2)).sum()
        (grad,) = m.autograd.grad(-out, inp)
        return np.signbit(grad.numpy()).tolist()
    assert signs(engine) == signs(torch)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_backward_sums_as_torchs_kernel(dtype):
    """softmax's gradient (g - sum(g * y)) * y from a given result y equals torch's kernel's
    (_softmax_backward_data) bit for bit: the sum in vector lanes along the last dim, with fused
    multiply-adds down another dim (campaign seed 18: numpy's sum, an ulp off, amplified by
    normalize's eps into a 1.7e5 gradient where torch's was 0). (The forward softmax is not
    torch's bit for bit: its exp and sum orders are not emulated; hence a given y.)"""
    from engine.nn.functional import _softmax_rule
    rng = np.random.default_rng(7)
    for _ in range(150):
        ndim = int(rng.integers(1, 4))
        shape = tuple(int(v) for v in rng.integers(1, 40 if ndim == 1 else 12, ndim))
        dim = int(rng.integers(0, ndim))
        y = torch.softmax(torch.tensor(rng.normal(size=shape).astype(dtype)), dim)
        g = torch.tensor(rng.normal(size=shape).astype(dtype))
        want = torch._softmax_backward_data(g, y, dim, y.dtype).numpy()

        class Ctx:
            result = y.numpy()
        Ctx.dim = dim
        got, = _softmax_rule(Ctx, g.numpy())
        np.testing.assert_array_equal(got, want, err_msg=f"{shape} dim {dim}")


def test_softmax_backward_of_a_normalized_zero_row_is_torchs():
    """The campaign's reproducer: torch's gradient of the zero row is exactly 0."""
    rows = [[[0.0, -3.0742225646972656], [0.0, -1.4792834520339966], [-0.0, -3.896240711212158]],
            [[-0.0, -0.0], [1.5921310186386108, -0.0], [3.0, -0.0]]]
    grads = []
    for backend in (engine, torch):
        x0 = backend.tensor(rows, requires_grad=True)
        x1 = backend.tensor(3.6135094165802)
        v1 = backend.nn.functional.softmax(backend.nn.functional.normalize(x0, p=3.0, dim=-1), 0)
        (v1 * backend.stack([x1, x1])).sum().backward()
        grads.append(x0.grad.numpy())
    np.testing.assert_array_equal(grads[0], grads[1])
