"""torch's ZeroTensor (at::_efficientzerotensor), the gradient of sgn for real tensors, against
torch: its arithmetic (an exact zero for mul and div, the other operand for add and sub,
plain zeros for every other op), where it appears (abs' and the 1-norm's double backward,
l1_loss), what hooks and `.grad` see, and its refusal to be written."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

import engine

INF, NAN = math.inf, math.nan


def _zero_gradient(m, values, dtype="float32"):
    """A ZeroTensor: the double backward of abs (its inner derivative is sgn's)."""
    x = m.tensor(values, dtype=getattr(m, dtype), requires_grad=True)
    (g,) = m.autograd.grad(x.abs().sum(), x, create_graph=True)
    (z,) = m.autograd.grad(g.sum(), x)
    return z


def _outcome(fn, m):
    """(is a ZeroTensor, dtype, shape, values with the sign of zero) or the error raised."""
    try:
        t = fn(m)
    except RuntimeError as error:
        return str(error)
    values = np.zeros(tuple(t.shape)) if t._is_zerotensor() else t.detach().clone().numpy().astype(np.float64)
    return (t._is_zerotensor(), str(t.dtype).rpartition(".")[2], tuple(t.shape), values.tolist(),
            np.signbit(values).tolist())


def _same(fn):
    ours, theirs = _outcome(fn, engine), _outcome(fn, torch)
    assert str(ours) == str(theirs)   # (str: NaN == NaN)
    return theirs


OTHER = [INF, NAN, -2.0, -0.0]
ARITHMETIC = {
    "zero * x": lambda m: _zero_gradient(m, [1.0] * 4) * m.tensor(OTHER),
    "x * zero": lambda m: m.tensor(OTHER) * _zero_gradient(m, [1.0] * 4),
    "zero / x": lambda m: _zero_gradient(m, [1.0] * 4) / m.tensor(OTHER),
    "x / zero": lambda m: m.tensor(OTHER) / _zero_gradient(m, [1.0] * 4),
    "zero / zero": lambda m: _zero_gradient(m, [1.0] * 4) / _zero_gradient(m, [2.0] * 4),
    "zero * zero": lambda m: _zero_gradient(m, [1.0] * 4) * _zero_gradient(m, [2.0] * 4),
    "zero + x": lambda m: _zero_gradient(m, [1.0] * 4) + m.tensor(OTHER),
    "x - zero": lambda m: m.tensor(OTHER) - _zero_gradient(m, [1.0] * 4),
    "zero - x": lambda m: _zero_gradient(m, [1.0] * 4) - m.tensor(OTHER),
    "zero + zero": lambda m: _zero_gradient(m, [1.0] * 4) + _zero_gradient(m, [2.0] * 4),
    "zero * float64 x": lambda m: _zero_gradient(m, [1.0] * 4) * m.tensor(OTHER, dtype=m.float64),
    "zero * 2.0": lambda m: _zero_gradient(m, [1.0] * 4) * 2.0,
    "0-d zero * 2.0 (float64)": lambda m: _zero_gradient(m, 1.0) * 2.0,
    "0-d float64 zero * 2.0": lambda m: _zero_gradient(m, 1.0, "float64") * 2.0,
    "0-d zero * 2": lambda m: _zero_gradient(m, 1.0) * 2,
    "-zero (plain -0.0)": lambda m: -_zero_gradient(m, [1.0] * 4),
    "exp(zero)": lambda m: _zero_gradient(m, [1.0] * 4).exp(),
    "zero.sum()": lambda m: _zero_gradient(m, [1.0] * 4).sum(),
    "zero.reshape": lambda m: _zero_gradient(m, [1.0] * 4).reshape(2, 2),
    "zero.detach": lambda m: _zero_gradient(m, [1.0] * 4).detach(),
    "zero.clone": lambda m: _zero_gradient(m, [1.0] * 4).clone(),
    "zero.add_(x)": lambda m: _zero_gradient(m, [1.0] * 4).add_(m.tensor(OTHER)),
    "x.add_(zero)": lambda m: m.tensor(OTHER).add_(_zero_gradient(m, [1.0] * 4)),
}


@pytest.mark.parametrize("case", sorted(ARITHMETIC))
def test_zerotensor_arithmetic_matches_torch(case):
    _same(ARITHMETIC[case])


def test_zerotensor_refuses_numpy_as_torch():
    messages = []
    for m in (torch, engine):
        with pytest.raises(RuntimeError) as info:
            _zero_gradient(m, [1.0]).numpy()
        messages.append(str(info.value))
    assert messages[1] == messages[0]


def _accumulated_twice(m):
    x = m.tensor([0.0, -2.0], requires_grad=True)
    (g,) = m.autograd.grad(x.abs().sum(), x, create_graph=True)
    g.sum().backward()              # .grad: a ZeroTensor, stolen by AccumulateGrad
    (x * 3).sum().backward()        # torch adds in place into it: refused
    return x.grad


def _sgn_and_negative_zero(m):
    """Two gradients meet: -0.0 from x * -0.0 and sgn's ZeroTensor. torch adds the ZeroTensor
    in place into the other (plain zeros): -0.0 + 0.0 = 0.0."""
    x = m.tensor([-0.0, -2.0, 1.0], requires_grad=True)
    (g,) = m.autograd.grad(x.abs().sum(), x, create_graph=True)
    return m.autograd.grad((g + x * -0.0).sum(), x)[0]


GRAPHS = {
    ".grad of abs' double backward": lambda m: (lambda x: (m.autograd.grad(x.abs().sum(), x, create_graph=True)[0]
                                                           .sum().backward(), x.grad)[1])(
        m.tensor([0.0, -2.0, 3.0], requires_grad=True)),
    "second backward into a ZeroTensor .grad": _accumulated_twice,
    "ZeroTensor added to -0.0": _sgn_and_negative_zero,
    "autograd.grad of sgn (through norm 1)": lambda m: (lambda x: m.autograd.grad(
        m.autograd.grad(x.norm(1), x, create_graph=True)[0].sum(), x)[0])(m.tensor([1.0, -2.0], requires_grad=True)),
}


@pytest.mark.parametrize("case", sorted(GRAPHS))
def test_zerotensor_gradients_in_the_engine_match_torch(case):
    _same(GRAPHS[case])


def _hooked(m, scale, shape):
    """10-minute campaign finding: a hook `grad * 2.0` on a 0-d float32 leaf under abs' double
    backward turns torch's ZeroTensor gradient float64, which torch refuses."""
    seen = []
    x = m.tensor(0.0 if shape == () else [0.0, 1.0], requires_grad=True)
    x.register_hook(lambda grad: (seen.append(grad._is_zerotensor()), grad * scale)[1])
    (g,) = m.autograd.grad((-x.abs()).sum(), [x], create_graph=True)
    try:
        g.sum().backward()
    except RuntimeError as error:
        return seen, str(error)
    return seen, x.grad._is_zerotensor(), x.grad.dtype is m.float32


@pytest.mark.parametrize("scale", [2.0, 2])
@pytest.mark.parametrize("shape", [(), (2,)])
def test_hooks_see_the_zerotensor_and_its_dtype_quirk_as_torch(scale, shape):
    assert _hooked(engine, scale, shape) == _hooked(torch, scale, shape)


def _hook_changing(m, change):
    x = m.ones(2, requires_grad=True)
    x.register_hook(change)
    try:
        (x * 2).sum().backward()
    except RuntimeError as error:
        return str(error)
    return x.grad.tolist()


def _halve(grad):
    return grad[:1]


class _ToDouble:
    def __call__(self, grad):
        return grad.double()


@pytest.mark.parametrize("change", [_halve, _ToDouble(), lambda grad: grad.double()], ids=["size", "type", "lambda"])
def test_a_hook_changing_the_gradients_type_or_size_is_refused_as_in_torch(change):
    assert _hook_changing(engine, change) == _hook_changing(torch, change)


def _program(m, fn, values, others, dtype):
    """First and second derivative of a scalar program, as the fuzzer computes them."""
    x = m.tensor(values, dtype=getattr(m, dtype), requires_grad=True)
    y = m.tensor(others, dtype=getattr(m, dtype), requires_grad=True)
    grads = m.autograd.grad(fn(m, x, y).sum(), [x, y], create_graph=True)
    sum(g.sum() for g in grads).backward()
    return [[g.grad_fn.name() if g.grad_fn else None for g in grads],
            [g.detach().tolist() for g in grads], x.grad.tolist(), y.grad.tolist()]


FINDINGS = {   # 10-minute campaign findings at NaN and inf (the ZeroTensor's 0 * inf)
    "abs_ of log(0)": (lambda m, x, y: x.log().abs_() * y, 0.0, 1.0),
    "l1_loss of x * inf": (lambda m, x, y: m.nn.functional.l1_loss(m.tensor([[-2.0, NAN, INF, 0.5]],
                                                                             dtype=x.dtype) * x, y), 0.0, [[0.0] * 4]),
    "smooth_l1_loss beta 0": (lambda m, x, y: m.nn.functional.smooth_l1_loss(x * x, y, beta=0.0),
                              [[1e-30, 3.9], [NAN, 3.0], [1e30, -0.0]], [[-1.0, 1.0], [1.0, 0.0], [-1.0, -1.0]]),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", sorted(FINDINGS))
def test_double_backward_through_sgn_at_nan_and_inf_matches_torch(case, dtype):
    fn, values, others = FINDINGS[case]
    assert str(_program(engine, fn, values, others, dtype)) == str(_program(torch, fn, values, others, dtype))


def _through(fn, dtype="float32"):
    """The gradient reaching x when fn's node receives a ZeroTensor: the double backward of
    abs(fn(x)) taken at fn's output, so only sgn's ZeroTensor flows back into fn's node."""
    def run(m):
        x = m.tensor([[INF, -1.5, 0.0, 2.0], [NAN, 0.5, -0.0, 3.0], [1.0, -2.0, 0.25, 1e38]],
                     dtype=getattr(m, dtype), requires_grad=True)
        v = fn(m, x)
        (g,) = m.autograd.grad(v.abs().sum(), v, create_graph=True)
        g.sum().backward()
        return x.grad
    return run


# Ops whose torch derivative is one native kernel of the gradient (tanh_backward, threshold_backward,
# native_layer_norm_backward, mse_loss_backward, ...): torch's ZeroTensor fallback hands the kernel
# plain zeros, so 0 * inf is NaN there and the result is a plain tensor.
_NATIVE_BACKWARDS = {
    "tanh": lambda m, x: x.tanh(),
    "sigmoid": lambda m, x: x.sigmoid(),
    "relu": lambda m, x: m.nn.functional.relu(x),
    "gelu": lambda m, x: m.nn.functional.gelu(x),
    "gelu tanh": lambda m, x: m.nn.functional.gelu(x, approximate="tanh"),
    "silu": lambda m, x: m.nn.functional.silu(x),
    "softplus": lambda m, x: m.nn.functional.softplus(x),
    "elu": lambda m, x: m.nn.functional.elu(x),
    "leaky_relu": lambda m, x: m.nn.functional.leaky_relu(x),
    "hardtanh": lambda m, x: m.nn.functional.hardtanh(x),
    "softmax": lambda m, x: m.nn.functional.softmax(x, 1),
    "log_softmax": lambda m, x: m.nn.functional.log_softmax(x, 1),
    "layer_norm": lambda m, x: m.nn.functional.layer_norm(x, (4,)),
    "mse_loss": lambda m, x: m.nn.functional.mse_loss(x, m.ones(3, 4), reduction="none"),
    "smooth_l1_loss": lambda m, x: m.nn.functional.smooth_l1_loss(x, m.ones(3, 4), reduction="none"),
    "binary_cross_entropy": lambda m, x: m.nn.functional.binary_cross_entropy(
        x.nan_to_num().sigmoid(), m.full((3, 4), 0.5, dtype=x.dtype), reduction="none"),
    "nll_loss": lambda m, x: m.nn.functional.nll_loss(x, m.tensor([0, 1, 3]), reduction="none"),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("op", sorted(_NATIVE_BACKWARDS))
def test_native_backward_kernels_see_a_zerotensor_as_plain_zeros(op, dtype):
    # Campaign seed 11 (mse_loss and smooth_l1_loss in a probe of every op): the engine computed
    # with the ZeroTensor (0 * inf = 0, a ZeroTensor result) where torch's kernel gave NaN / -0.0.
    # (The sign of a NaN is not compared: the fuzzer does not either.)
    def outcome(m):
        t = _through(_NATIVE_BACKWARDS[op], dtype)(m)
        values = t.detach().clone().numpy().astype(np.float64)
        return t._is_zerotensor(), str(values.tolist()), np.signbit(values)[values == 0].tolist()
    assert outcome(engine) == outcome(torch)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_layer_norm_weight_gradient_through_abs_double_backward_is_nan_as_torch(dtype):
    # Campaign seed 11: layer_norm of rows holding inf and 3e38 (normalized values NaN), abs_, then
    # the weight's gradient of the summed first gradient: 0 in the engine, NaN in torch (its
    # NativeLayerNormBackward0 computes the weight's gradient from plain zeros times NaN).
    def run(m):
        x = m.tensor([[[-3.05, -0.2, 3e38, 3.2]], [[0.3, INF, 1.28, -1.0]]], dtype=getattr(m, dtype))
        w = m.tensor([2.0, 3e38, -3.7, 0.4], dtype=getattr(m, dtype), requires_grad=True)
        v = m.nn.functional.layer_norm(x, (4,), weight=w)
        v.abs_()
        (g,) = m.autograd.grad(v.sum(), w, create_graph=True)
        g.sum().backward()
        return w.grad
    _same(run)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_gathered_zero_tensor_is_plain_zeros(dtype):
    """Campaign seed 18: scatter's src gradient is grad.gather(dim, index); gather is no ZeroTensor
    kernel, so abs's ZeroTensor second derivative comes out of it as real zeros, and var's
    gradient at no degrees of freedom (inf or NaN) times those zeros is NaN in torch (the
    engine's gather kept the ZeroTensor and gave 0)."""
    outcomes = []
    for m in (engine, torch):
        x0 = m.tensor([[0.0, 0.0, 0.0]], dtype=getattr(m, dtype), requires_grad=True)
        x1 = m.tensor(0.0, dtype=getattr(m, dtype), requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # (var's degrees-of-freedom warning)
            v0 = m.var(x0, correction=3)
        v2 = m.scatter(x1, 0, m.tensor(0), v0)
        v2.abs_()
        grads = m.autograd.grad(v2.sum(), [x0, x1], create_graph=True)
        sum(g.sum() for g in grads).backward()
        outcomes.append((grads[0].grad_fn.name(), grads[0].dtype, x0.grad.numpy().tolist()))
    assert outcomes[0][0] == outcomes[1][0] == ("ToCopyBackward0" if dtype == "float64" else "MulBackward0")
    assert str(outcomes[0][1]) == str(outcomes[1][1])
    np.testing.assert_array_equal(outcomes[0][2], outcomes[1][2])
    assert np.isnan(outcomes[0][2]).all()


def test_views_of_a_zero_tensor_stay_zero_tensors_and_gathers_do_not():
    z = engine._zerotensor.zeros((3, 4), np.float32)
    assert all(type(v) is engine._zerotensor.ZeroArray for v in (z[1], z[:, 1:], z.T, z[None]))
    assert all(type(v) is np.ndarray for v in (z[[0, 2]], z[z.view(np.ndarray) == 0], np.take(z, [0, 1]),
                                                np.take_along_axis(z, np.zeros((3, 1), int), axis=1)))
