"""engine.nn.functional: the `nn.functional.*` ops of the op table, as torch.nn.functional.

Each public function is one op of the table's `engine/nn/functional.py` section.
Where torch records one node (`GeluBackward0`, `NllLossBackward0`, ...) the op
records one node with a rule next to it; where torch composes (cross_entropy,
l1_loss, normalize, linear, label smoothing), the op composes the same nodes.
Rules follow the conventions of `engine/_ops.py`: they run on numpy arrays in a
plain backward and on tensors with create_graph, through the `v_*` helpers.
"""
from __future__ import annotations

import itertools
import math
import warnings

import numpy as np

from .. import _args, _blas, _cpu, _dtype, _ops, _ops_index, _ops_inplace, _ops_pointwise, _ops_reduce, _random, optable
from .._ops import (Rule, _as, _fma, _broadcast_shape, _check_tensor, _errstate, _expand, _is_transposed, _reshape,
                    _rounded, _transpose, _T, record, v_data, v_exp, v_expand, v_masked_zero,
                    v_zeros_like, v_mm, v_reshape, v_t, v_where)
from .._autograd import BackwardRun
from .._ops_pointwise import _not_implemented_for, v_cosh
from .._ops_shape import _contiguous_array
from .._tensor import Tensor, _wrap_dim



# ---------------------------------------------------------------------------------
# Value helpers for rules (numpy arrays in a plain backward, tensors with create_graph)
# ---------------------------------------------------------------------------------


def v_tanh(x):
    return _ops.tanh(x) if isinstance(x, Tensor) else _rounded(np.tanh, x)


def v_sigmoid(x):
    return _ops.sigmoid(x) if isinstance(x, Tensor) else _ops._sigmoid(x)


def v_erf(x):
    return _erf(x) if isinstance(x, Tensor) else _np_erf(x)


def v_sum(x, dim, keepdim=False):
    return _ops.sum(x, dim, keepdim) if isinstance(x, Tensor) else np.sum(x, axis=dim, keepdims=keepdim)


def v_mean(x, dim, keepdim=False):
    return _ops.mean(x, dim, keepdim) if isinstance(x, Tensor) else np.mean(x, axis=dim, keepdims=keepdim)


def v_const(array: np.ndarray, like):
    """A constant array taking part in a rule: a tensor (outside the graph) when `like` is one."""
    if isinstance(like, Tensor):
        return Tensor._make(np.asarray(array, like.dtype.np), like.dtype)
    return np.asarray(array, like.dtype)


def _log_sigmoid_values(x: np.ndarray) -> np.ndarray:
    """min(x, 0) - log1p(exp(-|x|)), as torch's log_sigmoid kernel computes it.

    NOTE: torch's kernel stores buffer = exp(-|x|) and computes min(x, 0) - log1p(buffer) with
    vector ops in x's dtype: in float32, three roundings (each op rounded correctly here; SLEEF's
    are within an ulp). The float64 formula rounded once differed from torch at 3,326 of 20,000
    normal float32 values, this at 1,138 (campaign seed 10: bce_with_logits of -0.776, then tan).
    """
    x = np.asarray(x)
    if x.dtype == np.float32:
        buffer = _ops._rounded(lambda z: np.exp(-np.abs(z)), x)
        return np.minimum(x, np.float32(0)) - _ops._rounded(np.log1p, buffer)
    return np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))


def v_log_sigmoid(x):
    if isinstance(x, Tensor):
        return record(_LOG_SIGMOID, (x,), _log_sigmoid_values(x._data), x.dtype)
    return _log_sigmoid_values(x)


def _log_sigmoid_backward(ctx, g):
    # NOTE: torch's log_sigmoid_backward is g * sigmoid(-x) (in the form max_deriv - sign * z / (1 + z),
    # z = exp(-|x|)), finite for every x; its derivative, log_sigmoid_double_backward, is
    # -sigmoid(x) * (1 - sigmoid(x)), which the sigmoid node gives. log(sigmoid(x)) instead is -inf
    # below about -745 and its gradient NaN (fuzzer finding: bce_with_logits double backward at 1e30).
    return (g * v_sigmoid(-ctx.self),)


_LOG_SIGMOID = Rule("LogSigmoidBackward0", _log_sigmoid_backward, saves={"self": None}, native=True)


# ---------------------------------------------------------------------------------
# Internal differentiable helpers (torch's node names, for composites and rules)
# ---------------------------------------------------------------------------------

_np_erf_vectorized = np.vectorize(math.erf, otypes=[np.float64])


def _np_erf(x: np.ndarray) -> np.ndarray:
    return _np_erf_vectorized(x).astype(np.asarray(x).dtype)


_ERF = Rule("ErfBackward0", lambda ctx, g: (g * (2 / math.sqrt(math.pi)) * v_exp(-(ctx.self * ctx.self)),),
            saves={"self": None})


def _erf(x: Tensor) -> Tensor:
    return record(_ERF, (x,), _np_erf(x._data), x.dtype)


# Tensor-with-Scalar arithmetic as torch's C++ composites record it (MulBackward1, ...).
_MUL_SCALAR = Rule("MulBackward1", lambda ctx, g: (g * ctx.other,))
_DIV_SCALAR = Rule("DivBackward1", lambda ctx, g: (g / ctx.other,))
_ADD_SCALAR = Rule("AddBackward1", lambda ctx, g: (g,))


def _mul_scalar(t: Tensor, other: float) -> Tensor:
    return record(_MUL_SCALAR, (t,), t._data * np.asarray(other, t.dtype.np), t.dtype, other=other)


def _div_scalar(t: Tensor, other: float) -> Tensor:
    with _errstate():
        data = t._data / np.asarray(other, t.dtype.np)
    return record(_DIV_SCALAR, (t,), data, t.dtype, other=other)


def _add_scalar(t: Tensor, other: float) -> Tensor:
    return record(_ADD_SCALAR, (t,), t._data + np.asarray(other, t.dtype.np), t.dtype)


_MASKED_FILL = Rule("MaskedFillBackward0", lambda ctx, g: (v_masked_zero(g, ctx.mask),))


def _masked_fill_zero(t: Tensor, mask: np.ndarray) -> Tensor:
    return record(_MASKED_FILL, (t,), np.where(mask, np.zeros((), t.dtype.np), t._data), t.dtype, mask=mask)


def _addmm_backward(ctx, g):
    if not isinstance(g, Tensor) and ctx.needs[1] and ctx.needs[2]:
        g = _ops._blas_operand(g)     # (once for both products)
    return (g,
            v_mm(g, v_t(ctx.mat2), ctx.mat1_transposed) if ctx.needs[1] else None,
            v_mm(v_t(ctx.mat1), g, ctx.mat2_transposed) if ctx.needs[2] else None)


_ADDMM = Rule("AddmmBackward0", _addmm_backward, ("self", "mat1", "mat2"), saves={"mat1": 2, "mat2": 1})


def _addmm(bias: Tensor, mat1: Tensor, mat2: Tensor) -> Tensor:
    # NOTE: torch's addmm checks the dtypes (bias, then mat1) before the shapes, in its own words.
    if bias.dtype is not mat2.dtype:
        raise RuntimeError(f"self and mat2 must have the same dtype, but got "
                           f"{bias.dtype.scalar_name} and {mat2.dtype.scalar_name}")
    if mat1.dtype is not mat2.dtype:
        raise RuntimeError(f"mat1 and mat2 must have the same dtype, but got "
                           f"{mat1.dtype.scalar_name} and {mat2.dtype.scalar_name}")
    (n, k), (k2, m) = mat1._data.shape, mat2._data.shape
    if k != k2:
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({n}x{k} and {k2}x{m})")
    _check_expand(bias, (n, m))
    if mat1.dtype is _dtype.bool_:
        raise _not_implemented_for("addmm_impl_cpu_", mat1.dtype)
    a, b = mat1._data, mat2._data
    with _errstate():
        if k == 1:
            # (exact products: a zero keeps its sign, as torch's mm.) NOTE: torch's float32 addmm
            # keeps them exact for a single row or column too (MKL's sgemm), and so does its float64
            # addmm on a CPU without AVX512; MKL's AVX512 dgemm sums into +0.0 there, as mm: a bias of
            # -0.0 plus a product of -0.0 stays -0.0 or becomes +0.0 (seen on both kinds of CPU).
            exact = a.dtype == np.float32 or not _cpu.AVX512
            data = np.multiply(a, b) if exact else _ops._mm_array(a, b)
            np.add(bias._data, data, out=data)
        elif (data := _blas.mm(a, b, bias._data)) is not None:
            pass     # (a small product, summed in torch's BLAS's order)
        elif n < m and _is_transposed(b) and a.flags.c_contiguous:
            # A linear layer's product (a batch of inputs times a weight used transposed) with
            # fewer rows than columns: OpenBLAS computes it as the transposed product
            # weight @ input.T 1.2-2x faster. Adding the bias lays the result out row-major,
            # as torch's addmm result.
            data = np.add(bias._data, (b.T @ a.T).T, order="C")
        else:
            data = a @ b
            np.add(bias._data, data, out=data)
    return record(_ADDMM, (bias, mat1, mat2), data, mat1.dtype,
                  mat1_transposed=_is_transposed(mat1._data), mat2_transposed=_is_transposed(mat2._data))


def _check_expand(t: Tensor, shape: tuple):
    """torch's expand errors, for an operand broadcast to `shape`."""
    sizes = t._data.shape
    if sizes == shape[len(shape) - len(sizes):]:
        return      # (the trailing sizes: a linear layer's bias)
    name = f"torch.{t.dtype.scalar_name}Tensor"
    if len(sizes) > len(shape):
        raise RuntimeError(f"expand({name}{{{list(sizes)}}}, size={list(shape)}): the number of sizes provided "
                           f"({len(shape)}) must be greater or equal to the number of dimensions in the tensor "
                           f"({len(sizes)})")
    for i, (have, want) in enumerate(zip(sizes[::-1], shape[::-1])):
        if have != want and have != 1:
            dim = len(shape) - 1 - i
            raise RuntimeError(
                f"The expanded size of the tensor ({want}) must match the existing size ({have}) at "
                f"non-singleton dimension {dim}.  Target sizes: {list(shape)}.  Tensor sizes: {list(sizes)}")


# ---------------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------------

def _float_input(op: str, kernel: str, input) -> None:
    _check_tensor(input, op)
    if not input.dtype.is_floating_point:
        raise _not_implemented_for(kernel, input.dtype)


# The natives torch's Python functions call with their arguments, checked as torch's parser does.
_NATIVES = {name: _args.Parser.from_text(texts) for name, texts in optable.NATIVE_SIGNATURES.items()}


_NATIVE_METHODS = {"softmax": _NATIVES["softmax"].method(), "log_softmax": _NATIVES["log_softmax"].method()}


def _native_args(name: str, *args) -> None:
    _NATIVES[name].check(args, {})


def _no_inplace(op: str, inplace: bool):
    if inplace:
        raise NotImplementedError(f"engine.nn.functional.{op}: inplace=True is not supported")


class _BackwardOp:
    """A torch backward function (leaky_relu_backward, elu_backward, ...) applied as one op.

    `kernel(g, x, **attrs)` computes it on arrays, as torch's CPU kernel does (which decides
    where NaN and inf go). With create_graph it records one node, `name`, with inputs
    (grad_output, self) and torch's derivatives (derivatives.yaml): in grad_output the same
    backward function, in self `self_derivative(gg, grad_output, self, **attrs)`, or zeros
    when that is None. So the gradient stays in the graph even from a constant seed, as in torch.
    """

    def __init__(self, name: str, kernel, self_derivative=None):
        self.kernel = kernel
        self.self_derivative = self_derivative
        self.rule = Rule(name, self._backward, ("grad_output", "self"), saves={"self": None, "grad_output": 1})

    def __call__(self, g, x, **attrs):
        if isinstance(g, Tensor):
            with _errstate():
                data = self.kernel(g._data, x._data, **attrs)
            return record(self.rule, (g, x), data, g.dtype, attrs=attrs)
        return self.kernel(g, x, **attrs)

    def _backward(self, ctx, gg):
        grad_output = self(gg, ctx.self, **ctx.attrs) if ctx.needs[0] else None
        grad_self = None
        if ctx.needs[1]:
            grad_self = (v_zeros_like(gg) if self.self_derivative is None
                         else self.self_derivative(gg, ctx.grad_output, ctx.self, **ctx.attrs))
        return grad_output, grad_self


def v_mask(condition: np.ndarray, like):
    """A 0/1 mask in `like`'s dtype (torch's `condition.type_as(grad)`), outside the graph."""
    return v_const(condition, like)


def relu(input, inplace: bool = False) -> Tensor:
    if inplace:   # torch.relu_(input)
        _native_args("relu_", input)
        return input.relu_()
    return _ops.relu(input)


# NOTE: torch's leaky_relu_backward passes g where self > 0 and g * negative_slope elsewhere
# (NaN included), so the gradient at 0 is negative_slope.
_leaky_relu_backward = _BackwardOp(
    "LeakyReluBackwardBackward0",
    lambda g, x, negative_slope: np.where(x > 0, g, g * np.asarray(negative_slope, g.dtype)))
_LEAKY_RELU = Rule("LeakyReluBackward0",
                   lambda ctx, g: (_leaky_relu_backward(g, ctx.self, negative_slope=ctx.negative_slope),),
                   saves={"self": None}, native=True)


def _leaky_relu_map(positive: np.ndarray, negative_slope: float):
    return lambda a: np.where(positive, a, a * np.asarray(negative_slope, a.dtype))


def leaky_relu(input, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    _no_inplace("leaky_relu", inplace)
    _native_args("leaky_relu", input, negative_slope)
    _float_input("leaky_relu", "leaky_relu_cpu", input)
    x = input._data
    with _errstate():   # (x * slope overflows where x > 0 picks x: no warning, as torch)
        data = np.where(x > 0, x, x * np.asarray(negative_slope, x.dtype))
    return record(_LEAKY_RELU, (input,), data, input.dtype, negative_slope=negative_slope)


def _elu_kernel(g, x, alpha):
    # NOTE: torch's elu_backward takes the exponential branch at x <= 0 (gradient alpha at 0)
    # and passes g elsewhere; its vector loop passes g at x > 0 only, so a NaN x there takes
    # the exponential branch, NaN (fuzzer finding: elu(log(negatives)) of 36 elements, NaN
    # gradients in the first 32, g in the scalar tail).
    negative = x <= 0
    nan = np.isnan(x)
    if nan.any():
        negative = negative | (nan & _cpu.vector_loop_mask(g, x))
    return np.where(negative, g * np.asarray(alpha, g.dtype) * _ops._np_exp(x), g)


# NOTE: torch's elu_double_backward is elu_backward(gg * g, x) * (x < 0), a product with the
# mask (so an infinite gradient gives NaN at x >= 0, and the second derivative at 0 is 0).
_elu_backward = _BackwardOp("EluBackwardBackward0", _elu_kernel,
                            lambda gg, g, x, alpha: _elu_backward(gg * g, x, alpha=alpha) * v_mask(v_data(x) < 0, gg))
_ELU = Rule("EluBackward0", lambda ctx, g: (_elu_backward(g, ctx.self, alpha=ctx.alpha),), saves={"self": None},
            native=True)


def elu(input, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    _no_inplace("elu", inplace)
    _native_args("elu", input, alpha)
    _float_input("elu", "elu_cpu", input)
    x = input._data
    with _errstate():
        # NOTE: torch's elu returns x itself at +-0 (whatever alpha's sign).
        data = np.where(x >= 0, x, _ops._rounded(np.expm1, x) * np.asarray(alpha, x.dtype))
    return record(_ELU, (input,), data, input.dtype, alpha=alpha)


_SQRT1_2 = math.sqrt(0.5)
_GELU_BETA = math.sqrt(2) * (2 / math.sqrt(math.pi)) * 0.5     # sqrt(2 / pi)
_GELU_KAPPA = 0.044715


def _gelu_inner(x: np.ndarray) -> np.ndarray:
    """kBeta * (x + kKappa * x^3), gelu's tanh argument. NOTE: torch's scalar op is compiled with
    contraction into fused multiply-adds (GCC's default with FMA enabled): x + kKappa * x_cube is
    one fma, rounded once (and so are its backward's 1 - t * t and 1 + 3 kKappa x^2)."""
    return _GELU_BETA * _fma(x.dtype.type(_GELU_KAPPA), x * x * x, x)


def _gelu_tanh(inner: np.ndarray) -> np.ndarray:
    """tanh in gelu's tanh approximation. NOTE: torch's scalar op (the loop's tail, and small
    tensors) is the C library's tanh / tanhf, which 1 + tanh(inner) amplifies where tanh is near
    -1 (fuzzer finding: log2 of gelu(-3, 'tanh') had a gradient 5e-6 off: gelu 384 ulp off with
    numpy's tanhf). Its vector op (SLEEF's tanh) is not followed: about 1 in 10 of those elements
    still differ, by an ulp of tanh."""
    return _cpu.libm("tanh", np.tanh, inner)


def _gelu_kernel(g, x, approximate):
    """torch's gelu_backward kernel."""
    if approximate == "tanh":
        tanh_inner = _gelu_tanh(_gelu_inner(x))
        left_derivative = 0.5 * (1 + tanh_inner)
        # NOTE: fused as in torch's compiled scalar op: 1 - t * t and 1 + (3 * kKappa) * x * x
        # (3 * kKappa rounded to the dtype first)
        three_kappa = x.dtype.type(3) * x.dtype.type(_GELU_KAPPA)
        tanh_derivative = _fma(-tanh_inner, tanh_inner, x.dtype.type(1))
        right_derivative = (0.5 * x) * tanh_derivative * (_GELU_BETA * _fma(three_kappa, x * x, x.dtype.type(1)))
        return g * (left_derivative + right_derivative)
    cdf = 0.5 * (1 + _np_erf(x * _SQRT1_2))
    pdf = np.exp(-0.5 * (x * x)) * (1 / math.sqrt(2 * math.pi))
    derivative = cdf + x * pdf
    if _onednn_gelu(x) and not _cpu.ONEDNN_AVX512:
        # NOTE: oneDNN's AVX2 derivative is 0 where x * pdf(x) is under half an ulp of 0.5
        # (2**-26): from -6.1513515 down (not -inf: NaN), so a zero gradient keeps its sign there
        # (campaign seed 13, AVX2 machine: gelu of -10 after a multiplication by zero).
        derivative = np.where((x <= _ONEDNN_GELU_FLAT) & (x > -np.inf), derivative.dtype.type(0), derivative)
    return g * derivative


def _gelu_double_backward(gg, g, x, approximate):
    """torch's gelu_double_backward, term by term."""
    if approximate == "tanh":
        inner = _GELU_BETA * (x + _GELU_KAPPA * (x * x * x))
        tanh_inner = v_tanh(inner)
        sech_inner = 1 / v_cosh(inner)
        f = 0.5 * x
        g_ = 1 - tanh_inner * tanh_inner
        h = _GELU_BETA * (1 + 3 * _GELU_KAPPA * x * x)
        f_prime_gh = 0.5 * g_ * h
        g_prime = (2 * sech_inner) * (-sech_inner * tanh_inner) * h
        g_prime_fh = f * h * g_prime
        h_prime = 6 * _GELU_KAPPA * x * _GELU_BETA
        h_prime_fg = f * g_ * h_prime
        return gg * g * (f_prime_gh + f_prime_gh + g_prime_fh + h_prime_fg)
    x_sq = x * x
    pdf = (1 / math.sqrt(2 * math.pi)) * v_exp(-0.5 * x_sq)
    return gg * g * (2 * pdf - x_sq * pdf)


_gelu_backward = _BackwardOp("GeluBackwardBackward0", _gelu_kernel, _gelu_double_backward)


def _gelu_rule(ctx, g):
    return (_gelu_backward(g, ctx.self, approximate=ctx.approximate),)


_GELU = Rule("GeluBackward0", _gelu_rule, saves={"self": None}, native=True)


def gelu(input, approximate: str = "none") -> Tensor:
    if approximate not in ("none", "tanh"):
        raise RuntimeError("approximate argument must be either none or tanh.")
    _float_input("gelu", "GeluKernelImpl", input)
    x = input._data
    with _errstate():
        if approximate == "tanh":
            data = 0.5 * x * (1 + _gelu_tanh(_gelu_inner(x)))
        else:
            # NOTE: torch's kernel computes x * 0.5 * (1 + erf(x * M_SQRT1_2)) in the input's dtype.
            data = x * x.dtype.type(0.5) * (1 + _np_erf(x * x.dtype.type(_SQRT1_2)))
            if _onednn_gelu(x):
                data = _onednn_gelu_edges(x, data) if _cpu.ONEDNN_AVX512 else data + np.float32(0)
    return record(_GELU, (input,), data, input.dtype, approximate=approximate)


# Where torch's float32 gelu of a contiguous tensor of several elements (oneDNN's kernel) overflows:
# it forms x * (1 + erf(x / sqrt 2)) before halving.
_ONEDNN_GELU_OVERFLOW = np.float32(2.0 ** 127)


# Where oneDNN's float32 gelu derivative is 0 (x <= this; see _gelu_kernel).
_ONEDNN_GELU_FLAT = np.float32(-6.1513515)


def _onednn_gelu(x: np.ndarray) -> bool:
    """Whether torch runs float32 gelu (approximate="none") of `x`, or its backward, on oneDNN:
    a contiguous input of more than one element (the gradient's layout does not matter)."""
    return x.dtype == np.float32 and x.size > 1 and x.flags.c_contiguous


def _onednn_gelu_edges(x: np.ndarray, data: np.ndarray) -> np.ndarray:
    """gelu's values at infinities and near float32's largest as torch 2.13's oneDNN kernel gives
    them on an AVX512 machine.

    NOTE: torch runs float32 gelu (approximate="none") of a contiguous input with more than one
    element on oneDNN, which with AVX512 gives nan at +-inf and inf from 2**127 on; a single
    element, or a non-contiguous input (a transpose, an expanded or strided view), runs ATen's
    kernel, which gives inf at +inf and finite values up to float32's largest (fuzzer finding:
    gelu of an outer product reaching 3e38). Finite values elsewhere may differ from oneDNN's by
    an ulp. oneDNN's AVX2 kernel gives ATen's values there, but no -0.0: gelu of -0.0 and of
    negatives that underflow is 0.0 (campaign seed 13, on an AMD EPYC without AVX512; whether
    the AVX512 kernel gives -0.0 was not seen: campaigns of earlier sessions found nothing there).
    """
    large = np.abs(x) >= _ONEDNN_GELU_OVERFLOW
    if not large.any():
        return data
    return np.where(np.isinf(x), np.float32(np.nan), np.where(large & (x > 0), np.float32(np.inf), data))


def _silu_backward(ctx, g):
    sigmoid = v_sigmoid(ctx.self)
    factor = 1 + ctx.self * (1 - sigmoid)   # (torch's right operand first: see _ops._neg_grad_times)
    return (g * sigmoid * factor,)


# NOTE: torch differentiates silu with silu_backward, or with a formula of mul and add under create_graph.
_SILU = Rule("SiluBackward0", _silu_backward, saves={"self": None}, native="no_grad_mode")


def silu(input, inplace: bool = False) -> Tensor:
    _no_inplace("silu", inplace)
    _float_input("silu", "silu_cpu", input)
    with _errstate():
        data = input._data / (1 + _ops._np_exp(-input._data))
    return record(_SILU, (input,), data, input.dtype)


def _softplus_kernel(g, x, beta, threshold):
    # NOTE: torch's softplus_backward: g where beta * x > threshold, else g * z / (z + 1)
    # with z = exp(beta * x) (NaN stays NaN).
    scaled = x * np.asarray(beta, x.dtype)
    z = _ops._np_exp(scaled)
    return np.where(scaled > threshold, g, g * z / (z + 1))


def _softplus_double_backward(gg, g, x, beta, threshold):
    # NOTE: torch's softplus_double_backward(gg * g, x): sigmoid_backward(gg * g, sigmoid(beta * x))
    # * (beta * x < threshold) * beta.
    scaled = x * beta
    return _ops.v_sigmoid_backward(gg * g, v_sigmoid(scaled)) * v_mask(v_data(scaled) < threshold, gg) * beta


_softplus_backward = _BackwardOp("SoftplusBackwardBackward0", _softplus_kernel, _softplus_double_backward)


def _softplus_rule(ctx, g):
    return (_softplus_backward(g, ctx.self, beta=ctx.beta, threshold=ctx.threshold),)


_SOFTPLUS = Rule("SoftplusBackward0", _softplus_rule, saves={"self": None}, native=True)


def softplus(input, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    _float_input("softplus", "softplus_cpu", input)
    x = input._data
    with _errstate():
        scaled = x * np.asarray(beta, x.dtype)
        data = np.where(scaled > threshold, x,
                        _ops._rounded(np.log1p, _ops._np_exp(scaled)) / np.asarray(beta, x.dtype))
    return record(_SOFTPLUS, (input,), data, input.dtype, beta=beta, threshold=threshold)


def _hardtanh_kernel(g, x, min_val, max_val):
    # NOTE: torch's hardtanh_backward zeroes the gradient where self <= min_val or self >= max_val
    # (so at either bound) and passes it elsewhere. At a NaN self its scalar op passes the
    # gradient, but its vector op, (self > min_val) & (self < max_val) & grad, zeroes it; the
    # kernel has no AVX512 build (fuzzer finding: hardtanh of 16 NaNs has gradient 0, of 17 NaNs
    # 0 then 1).
    zero = (x <= min_val) | (x >= max_val)
    nan = np.isnan(x)
    if nan.any():
        zero = zero | (nan & _cpu.vector_loop_mask(g, x, vector_bytes=_cpu.AVX2_VECTOR_BYTES))
    return np.where(zero, np.zeros((), g.dtype), g)


_hardtanh_backward = _BackwardOp("HardtanhBackwardBackward0", _hardtanh_kernel)
_HARDTANH = Rule("HardtanhBackward0",
                 lambda ctx, g: (_hardtanh_backward(g, ctx.self, min_val=ctx.min_val, max_val=ctx.max_val),),
                 saves={"self": None}, native=True)


def hardtanh(input, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    _no_inplace("hardtanh", inplace)
    _check_tensor(input, "hardtanh")
    if input.dtype is _dtype.bool_:
        raise RuntimeError("Bool inputs not supported for hardtanh")
    x = input._data
    low, high = np.asarray(min_val).astype(x.dtype), np.asarray(max_val).astype(x.dtype)
    # NOTE: torch's kernel is x < min ? min : (x > max ? max : x), which keeps a -0.0 at a bound
    # of 0.0 (and NaN).
    data = np.where(x < low, low, np.where(x > high, high, x))
    return record(_HARDTANH, (input,), data, input.dtype, min_val=min_val, max_val=max_val)


# ---------------------------------------------------------------------------------
# softmax, log_softmax
# ---------------------------------------------------------------------------------

def _softmax_dim(name: str, ndim: int, stacklevel: int) -> int:
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. "
                  "Change the call to include dim=X as an argument.", UserWarning, stacklevel=stacklevel)
    return 0 if ndim in (0, 1, 3) else 1


def _softmax_args(name: str, input, dim, stacklevel: int, dtype):
    """The input (cast to `dtype` first, node ToCopyBackward0, as torch) and the wrapped dim."""
    # NOTE: as torch's Python function: the implicit dim from input.dim(), then input.<name>(dim, dtype=)
    if dim is None:
        dim = _softmax_dim(name, input.dim(), stacklevel + 1)
    _args.attribute_of(input, name)
    _NATIVE_METHODS[name].check((dim,), {} if dtype is None else {"dtype": dtype})
    if dtype is not None:
        input = input.to(dtype)
    dim = _wrap_dim(dim, input.ndim)
    if not input.dtype.is_floating_point:
        kernel = "lastdim_kernel_impl" if dim == max(input.ndim - 1, 0) else "kernel_impl"
        raise _not_implemented_for(f"{name}_{kernel}", input.dtype)
    return input, dim


# NOTE: torch's _softmax_backward_data is (g - sum(g * y)) * y; _log_softmax_backward_data
# is g - exp(y) * sum(g); both save only the result.
def _softmax_rule(ctx, g):
    y = ctx.result
    if isinstance(g, Tensor):
        return ((g - v_sum(g * y, ctx.dim, True)) * y,)
    with _errstate():
        return ((g - _softmax_product_sum(g, y, ctx.dim)) * y,)


def _softmax_product_sum(g: np.ndarray, y: np.ndarray, dim) -> np.ndarray:
    """sum(g * y) over `dim` (kept), as torch's softmax backward kernel adds it.

    NOTE: along the last dim, vec::map2_reduce_all: products rounded, summed in vector lanes
    (_lane_sum, no fused multiply-add but in the tail of a float32 tensor of one row); along
    another dim, down the dim in order from +0.0,
    each product fused into the sum (a multiply-add rounded once). Numpy's sum differs from
    torch's in the last bit in 5-60 % of rows, which a division by normalize's eps turned into
    a 1.7e5 gradient where torch's was 0 (campaign seed 18: softmax over dim 0 of a
    normalize(p=3) result with a zero row). Measured against torch on 300 random shapes per
    dtype, both dims: equal bit for bit."""
    if y.ndim == 0 or y.size == 0 or y.dtype.kind != "f":
        return _kernel_row_sum(g * y, dim)
    g = np.broadcast_to(g, y.shape)
    n = y.shape[dim]
    if dim == y.ndim - 1:
        g2, y2 = g.reshape(-1, n), y.reshape(-1, n)
        # (measured: a float32 tensor of one row fuses the tail's products into the lanes)
        fused = (g2, y2) if g2.shape[0] == 1 and y.dtype == np.float32 else None
        return _lane_sum(g2 * y2, fused).reshape(y.shape[:-1] + (1,))
    moved_g, moved_y = np.moveaxis(g, dim, 0), np.moveaxis(y, dim, 0)
    total = np.zeros(moved_y.shape[1:], y.dtype)
    for d in range(n):
        total = _fma(moved_g[d], moved_y[d], total)
    return np.expand_dims(total, dim)


_SOFTMAX = Rule("SoftmaxBackward0", _softmax_rule, saves={"result": None}, native=True)


def _kernel_row_sum(x: np.ndarray, dim) -> np.ndarray:
    """The sum over `dim` (kept) in torch's softmax and log_softmax kernels: of the exponentials
    (forward) and of the gradient (log_softmax's backward).

    NOTE: along the last dim (the kernels read a contiguous copy) vec::reduce_all and
    vec::map_reduce_all add in vector lanes from the first elements (`_lane_sum`), not from
    +0.0, so a row of -0.0 sums to -0.0 (and g - exp(y) * sum is 0.0 where g is -0.0); numpy's
    pairwise order differed in 46 % of softmax's and 12 % of log_softmax's float results on
    random rows. Along another dim they start from +0.0 and go down the dim in order, as numpy's
    sum (campaign left item: soft-label cross_entropy with a target of zeros, whose input
    gradient is 0.0 in torch).
    """
    if x.ndim and dim == x.ndim - 1 and x.size and x.dtype in (np.float32, np.float64):
        return _lane_sum(x.reshape(-1, x.shape[-1])).reshape(x.shape[:-1] + (1,))
    return np.add.reduce(x, axis=dim, keepdims=True)


def _two_product(a: np.ndarray, b: np.ndarray) -> tuple:
    """(p, e) with p = fl(a * b) and a * b = p + e exactly (Dekker's product, Veltkamp's split;
    finite float64 operands below 2**996)."""
    p = a * b

    def halves(x):
        scaled = 134217729.0 * x   # 2**27 + 1
        high = scaled - (scaled - x)
        return high, x - high
    (ah, al), (bh, bl) = halves(a), halves(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _fused_subtract_product(c: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """c - a * b rounded once, as a fused multiply-add: computed in float64 from the exact
    product and sum (Dekker, Knuth), then in c's dtype; where a term is not finite or too large
    for the split, the plain c - a * b. (The last float64 addition, and for float32 the cast,
    can round twice in rare ties: not an FMA to the last bit there.)"""
    if all(type(v) is np.ndarray and v.dtype == np.float32 for v in (a, b, c)):
        # The float64 product of float32 numbers is exact: the product's error e below is 0,
        # and s + t the exact difference, whose float64 rounding is `plain` (the ufuncs' casts
        # to float64 are exact, as asarray's).
        with _errstate():
            return np.subtract(c, np.multiply(a, b, dtype=np.float64), dtype=np.float64).astype(np.float32)
    a64, b64, c64 = (np.asarray(v, np.float64) for v in (a, b, c))
    with _errstate():
        plain = c64 - a64 * b64
        if all(np.result_type(v) == np.float32 for v in (a, b, c)):
            return plain.astype(np.float32)
        p, e = _two_product(a64, b64)
        s = c64 - p
        back = s - c64
        t = (c64 - (s - back)) + (-p - back)   # c - p = s + t exactly (Knuth's two-sum)
        fused = s + (t - e)
        exact = np.isfinite(fused) & (np.abs(a64) < 2.0 ** 996) & (np.abs(b64) < 2.0 ** 996)
        # (A zero of c - a * b where both are zeros keeps the plain difference's sign: -0 - 0 is -0,
        # which the two-sum's +0 corrections would lose.)
        exact &= (fused != 0) | (plain != 0)
    return np.where(exact, fused, plain).astype(np.result_type(c), copy=False)


def _log_softmax_grad(g: np.ndarray, y: np.ndarray, dim) -> np.ndarray:
    """torch's _log_softmax_backward_data kernel: g - exp(y) * sum(g), the product and the
    difference fused into one multiply-add (its vectorized loop, compiled with FMA): where they
    nearly cancel, the rounding of the product decides the result (fuzzer finding: 0 against
    -6.7e21 at gradients of 1.2e38)."""
    return _fused_subtract_product(g, _ops._np_exp(y), _kernel_row_sum(g, dim))


def _log_softmax_backward(ctx, g):
    if isinstance(g, Tensor):
        # NOTE: with create_graph torch records _log_softmax_backward_data as one node,
        # LogSoftmaxBackwardDataBackward0 over (grad_output, output), whose derivatives are its
        # own formulas (see below): their rounding, not that of the composed ops, is torch's
        # (fuzzer finding: a second-order gradient that cancels exactly when composed).
        y = ctx.result
        return (record(_LOG_SOFTMAX_BACKWARD, (g, y), _log_softmax_grad(g._data, y._data, ctx.dim), g.dtype,
                       dim=ctx.dim),)
    y = ctx.result
    if (ctx.dim == 1 and y.ndim == 2 and type(g) is np.ndarray and g.dtype == y.dtype == np.float32
            and g.shape == y.shape and y.shape[1] >= _LANES_F32 and y.size <= _ops._VIA_FLOAT64_MAX_NUMEL
            and g.flags.c_contiguous and y.flags.c_contiguous):
        # (a classifier's batch, cross_entropy's: _log_softmax_grad's operations without its
        # layers, the row sums of g on a transposed copy as `_cross_entropy_rows` sums; row-major
        # operands, whose gradient _log_softmax_grad lays out row-major, as here)
        with _errstate():
            total = _lane_sum_columns(g.T.copy())
            exp = np.empty(y.shape, np.float32)
            np.exp(y, out=exp, dtype=np.float64)      # (as _ops._np_exp: rounded once from float64)
            product = np.multiply(exp, total[:, None], dtype=np.float64)
            return (np.subtract(g, product, out=np.empty(y.shape, np.float32), dtype=np.float64),)
    return (_log_softmax_grad(g, y, ctx.dim),)


def _log_softmax_double_backward(ctx, gg):
    """torch's derivatives of _log_softmax_backward_data: gg - sum(gg * exp(y)) for the
    incoming gradient, -sum(grad_output) * exp(y) * gg for the output y."""
    go, y = ctx.grad_output, ctx.output
    grad_go = gg - v_sum(gg * v_exp(y), ctx.dim, True) if ctx.needs[0] else None
    grad_y = -v_sum(go, ctx.dim, True) * v_exp(y) * gg if ctx.needs[1] else None
    return grad_go, grad_y


_LOG_SOFTMAX = Rule("LogSoftmaxBackward0", _log_softmax_backward, saves={"result": None}, native=True)
_LOG_SOFTMAX_BACKWARD = Rule("LogSoftmaxBackwardDataBackward0", _log_softmax_double_backward,
                             ("grad_output", "output"), saves={"grad_output": None, "output": None})


def _shifted(x: np.ndarray, dim: int) -> np.ndarray:
    if x.ndim == 0 or x.size == 0:   # (an empty input: numpy's max refuses a zero-size axis)
        return x - x
    return x - np.maximum.reduce(x, axis=dim, keepdims=True)   # (np.max without its Python-level dispatch)


def softmax(input, dim=None, _stacklevel: int = 3, dtype=None) -> Tensor:
    input, dim = _softmax_args("softmax", input, dim, _stacklevel, dtype)
    with _errstate():
        e = _ops._np_exp(_shifted(input._data, dim))
        # NOTE: torch's kernel multiplies by the reciprocal of the sum.
        data = e * (1 / _kernel_row_sum(e, dim if input.ndim else None))
    return record(_SOFTMAX, (input,), _contiguous_array(data), input.dtype, dim=dim if input.ndim else None)


def log_softmax(input, dim=None, _stacklevel: int = 3, dtype=None) -> Tensor:
    input, dim = _softmax_args("log_softmax", input, dim, _stacklevel, dtype)
    return _log_softmax(input, dim)


def _log_softmax(input: Tensor, dim: int) -> Tensor:
    """log_softmax of a floating tensor over a wrapped dim (its checks passed)."""
    with _errstate():
        shifted = _shifted(input._data, dim)
        data = shifted - _ops._rounded(np.log, _kernel_row_sum(_ops._np_exp(shifted), dim if input.ndim else None))
    return record(_LOG_SOFTMAX, (input,), _contiguous_array(data), input.dtype, dim=dim if input.ndim else None)


# ---------------------------------------------------------------------------------
# dropout, linear
# ---------------------------------------------------------------------------------

def dropout(input, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability p and scale the rest by 1 / (1 - p).

    NOTE: on CPU torch computes `input * noise` (node MulBackward0, noise = bernoulli(1 - p)
    / (1 - p)), multiplies by zeros for p = 1, and returns the input itself (no new node)
    for p = 0 or training=False.
    """
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    _no_inplace("dropout", inplace)
    _check_tensor(input, "dropout")
    if p == 0 or not training or input.numel() == 0:
        return input
    if p == 1:   # NOTE: torch multiplies by a 0-d zero of the input's dtype: an integral input stays so
        return _ops.mul(input, Tensor._make(np.zeros((), input.dtype.np), input.dtype))
    # NOTE: torch scales the noise in place in the input's dtype (bernoulli_(1 - p).div_(1 - p)).
    _dtype.check_cast(_dtype.default_float, input.dtype)
    shape = input._data.shape
    noise = (_random.generator.random(shape) < 1 - p).astype(input.dtype.np) / np.asarray(1 - p, input.dtype.np)
    return _ops.mul(input, Tensor._make(noise, input.dtype))


def linear(input, weight, bias=None) -> Tensor:
    """input @ weight.T + bias, composed as torch 2.13 composes it.

    NOTE: torch fuses bias and product into one addmm (node AddmmBackward0) for a 2-d
    input, and for other contiguous inputs flattens them to 2-d around an addmm (ViewBackward0
    on top) when the bias is contiguous and 1-d or holds one value per output feature;
    otherwise (a non-contiguous input too: fuzzer finding, a diagonal; a strided or expanded
    bias: fuzzer finding, an unbind column) it adds the bias in place to
    matmul(input, weight.t()) (AddBackward0).
    """
    _check_tensor(input, "linear")
    _check_tensor(weight, "linear", "weight", 2)
    if bias is not None:
        _check_tensor(bias, "linear", "bias", 3)
    if input.ndim == 0 or weight.ndim == 0:
        raise RuntimeError(f"both arguments to linear need to be at least 1D, but they are "
                           f"{input.ndim}D and {weight.ndim}D")
    if weight.ndim != 2:
        raise NotImplementedError(f"engine.nn.functional.linear: weight of {weight.ndim} dims is not supported")
    if bias is None:
        return _ops.matmul(input, _transpose(weight, 0, 1, _T))
    if input.ndim == 2:
        return _addmm(bias, input, _transpose(weight, 0, 1, _T))
    out_features = weight._data.shape[0]
    if (input._data.flags.c_contiguous and bias._data.flags.c_contiguous
            and (bias.ndim == 1 or (bias.ndim >= 1 and bias.numel() == out_features))):
        # NOTE: torch's _flatten_nd_linear reshapes the input before it transposes the weight,
        # so TBackward0 is the later node and runs first in backward: the weight's gradient is
        # accumulated before the input's branch is entered (fuzzer finding: a 1-d input made by
        # floor_divide, whose missing derivative raises after the weight got its gradient).
        shape = input._data.shape
        rows = int(np.prod(shape[:-1], dtype=np.int64))
        flat_input = _reshape(input, (rows, shape[-1]))
        flat = _addmm(bias, flat_input, _transpose(weight, 0, 1, _T))
        return _reshape(flat, shape[:-1] + (flat._data.shape[1],))
    # NOTE: torch adds this bias in place (output.add_(bias)): the result keeps the product's
    # dtype (a float64 bias on float32 operands gives float32) and in-place broadcasting rules.
    return _ops.matmul(input, _transpose(weight, 0, 1, _T)).add_(bias)


# ---------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------

_REDUCTIONS = {"none": 0, "mean": 1, "sum": 2}   # torch's enum, passed to its natives


def _reduction(reduction: str, size_average=None, reduce=None) -> str:
    """The reduction, as torch/nn/_reduction.py reads it: the deprecated size_average and
    reduce, when given, replace `reduction` (with a warning)."""
    if size_average is not None or reduce is not None:
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = "mean" if size_average and reduce else "sum" if reduce else "none"
        warnings.warn(f"size_average and reduce args will be deprecated, please use reduction='{reduction}' "
                      "instead.", UserWarning, stacklevel=3)
    return reduction


def _checked_reduction(reduction: str) -> str:
    """A valid reduction, checked where torch's _Reduction.get_enum checks it."""
    if reduction == "elementwise_mean":
        warnings.warn("reduction='elementwise_mean' is deprecated. Please use reduction='mean' instead.",
                      UserWarning, stacklevel=3)
        return "mean"
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return reduction


def _reduce_loss(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return _ops.mean(loss)
    if reduction == "sum":
        return _ops.sum(loss)
    return loss


def _save_constants(out: Tensor, **tensors) -> Tensor:
    """Save in `out`'s node the tensors its op reads outside the graph (a loss's weights, class
    targets), as `ctx.<name>`; the rules read the values from other attributes.

    NOTE: torch saves these for backward as it saves the inputs, so modifying one in place
    after the call makes backward raise its version error (fuzzer finding: a
    binary_cross_entropy_with_logits weight zeroed in place after the call). Its generated
    nodes save, and check at backward, the inputs in the order of their names (pos_weight
    before self): which one the error names when several were modified. These nodes save
    inputs only.
    """
    _ops_index._save(out, **{name: tensor for name, tensor in tensors.items() if tensor is not None})
    node = out.grad_fn
    if node is not None:
        node._saved = tuple(sorted(node._saved, key=lambda entry: entry[0]))
    return out


def _check_no_grad(t, function: str, argument: str):
    if t is not None and t.requires_grad:
        raise RuntimeError(f"The function '{function}' is not differentiable with respect to argument "
                           f"'{argument}'. This input cannot have requires_grad True.")


def _cascade_sum(values: np.ndarray, valid):
    """The sum of `values` at `valid` (None: all) as torch's nll_loss kernels add them: in order into the
    first of 8 partial sums, which at every multiple of 16**j (of the flat index, valid ones
    only) moves up into the next, j times; then the 8 partial sums in order.

    NOTE: the order decides what cancels (1e30 - 1e30 + 2.5 is 2.5 or 0; fuzzer finding), and
    the index 0 alone moves up to the last partial sum, added last.
    """
    values = values.reshape(-1)
    all_valid = valid is None or bool(valid.all())
    # level_power is max(4, ceil(log2(n)) // 8): 4 below 2**40 elements.
    n = int(values.size)
    if 1 < n <= 256 and all_valid:
        total = _cascade_sum_short(values)
        if total == total:
            return total
        # (a NaN: its payload is the loop's, below)
    valid = np.ones(n, np.bool_) if valid is None else valid.reshape(-1)
    power = max(4, (n - 1).bit_length() // 8) if n > 1 else 4
    mask = (1 << power) - 1
    zero = values.dtype.type(0)
    partial = [zero] * 8
    group = mask + 1
    tail = None
    if not (n > group and all_valid):
        items = ((index, values[index], 0) for index in np.flatnonzero(valid).tolist())
    else:
        # Every index valid: the first partial sum's runs, (16k - 16, 16k] for k = 1..m and the
        # tail after them, are added at once, each in order from +0 (accumulate is sequential);
        # the runs then enter the second partial sum at their last index, as the loop has them.
        m = (n - 1) // group
        runs = np.zeros((m, group + 1), values.dtype)
        runs[:, 1:] = values[1:1 + m * group].reshape(m, group)
        sums = np.add.accumulate(runs, axis=1)[:, -1]
        tail = np.add.accumulate(np.concatenate((runs[0, :1], values[1 + m * group:])))[-1]
        runs_ends = range(group, (m + 1) * group, group)
        items = itertools.chain([(0, values[0], 0)], zip(runs_ends, sums, itertools.repeat(1)))
    for index, value, level in items:
        partial[level] = partial[level] + value
        for j in range(level, 7):
            if index & (mask << (j * power)):
                break
            partial[j + 1], partial[j] = partial[j + 1] + partial[j], zero
    if tail is not None:
        partial[0] = tail
    total = zero
    for part in partial:
        total = total + part
    return total


def _cascade_sum_short(values: np.ndarray):
    """_cascade_sum of 2 to 256 values, all valid (a batch's losses), in a few numpy calls.

    The loop's additions, for level_power 4: the value at index 0 moves alone up to the last
    partial sum; the first gathers the runs (16k - 16, 16k] from +0 in order and, at their last
    index, moves each into the second (from +0, in order); the values after the last run stay
    in the first. The total is then ((0 + first) + second) + last, as the partial sums between
    are +0.0 (adding +0.0 changes nothing here: 0 + first is never -0.0, nor is a sum with it).
    Each run is summed in order from its first value rather than from +0 (np.add.reduce over the
    runs' non-innermost axis adds whole rows in order): that differs only in the sign of a zero
    run sum, which the second sum, started from +0, does not keep. A NaN's payload may differ
    from the loop's: the caller computes a NaN total again.
    The second and first sums are likewise taken in order from their first value, not from +0:
    that too differs only in the sign of a zero sum, which 0 + first and the sum with it (never
    -0.0) do not keep."""
    zero = values.dtype.type(0)
    runs = (values.size - 1) // 16
    second = zero
    if runs:
        rows = values[1:1 + 16 * runs]
        second = np.add.accumulate(np.add.reduce(np.ascontiguousarray(rows.reshape(runs, 16).T), axis=0)
                                   if runs > 1 else rows)[-1]
    rest = values[1 + 16 * runs:]
    first = np.add.accumulate(rest)[-1] if rest.size else zero
    return ((zero + first) + second) + (zero + values[0])


_UNIT_WEIGHTS: dict = {}    # (shape, dtype) -> ones and minus ones, read-only
_EXACT_COUNTS: dict = {}    # dtype -> the largest count of ones it sums exactly


def _unit_weights(shape: tuple, dtype) -> tuple:
    """The weights of an unweighted nll_loss whose targets are all valid, and their negations:
    read-only arrays of ones and minus ones, made once per shape and dtype."""
    key = (shape, dtype)
    pair = _UNIT_WEIGHTS.get(key)
    if pair is None:
        if len(_UNIT_WEIGHTS) > 64:
            _UNIT_WEIGHTS.clear()
        pair = np.ones(shape, dtype), np.full(shape, -1, dtype)
        for array in pair:
            array.flags.writeable = False
        _UNIT_WEIGHTS[key] = pair
    return pair


def _exact_count_limit(dtype) -> int:
    limit = _EXACT_COUNTS.get(dtype)
    if limit is None:
        limit = _EXACT_COUNTS[dtype] = 2 ** (np.finfo(dtype).nmant + 1)
    return limit


class _NllPlan:
    """What nll_loss over an input folded as (N, C, K) needs of its target and weight.

    The forward, its backward and the backward's own backward (nll_loss again) all read it.
    """

    __slots__ = ("rule", "double_rule", "folded", "target_shape", "at_target", "valid", "all_valid", "weight",
                 "negative_weight", "total", "reduction")

    def __init__(self, rule, folded, target: np.ndarray, weight, ignore_index: int, reduction: str):
        """`weight`: the classes' weights, an array of C, or the dtype of the input without one."""
        n, c, k = folded
        self.rule, self.folded, self.reduction = rule, folded, reduction
        self.double_rule = _NLL_DOUBLE[rule]
        self.target_shape = target.shape
        target = target.reshape(n, k)
        unweighted = not isinstance(weight, np.ndarray)
        dtype = weight if unweighted else weight.dtype
        if 0 <= ignore_index < c or not (target.view(np.uint64) < c).all():
            # (Some target may be ignored, or out of bounds; otherwise every target is valid: a
            # negative one is a large unsigned one.)
            valid = target != ignore_index
            all_valid = bool(valid.all())
            bad = (target < 0) | (target >= c)
            if not all_valid:
                bad &= valid
            if bad.any():
                raise IndexError(f"Target {target[bad][0]} is out of bounds.")
        else:
            valid, all_valid = None, True
        # (Where every target is valid, as without ignored ones, `valid` is None: the masks below
        # would change nothing, np.where(True, v, 0) is v, bit for bit.)
        self.valid, self.all_valid = valid, all_valid
        safe_target = target if all_valid else np.where(valid, target, 0)
        # The (N, K) elements at the targets of an (N, C, K) array, as an index of its flat elements.
        if k == 1:
            self.at_target = (np.arange(0, n * c, c) if c else np.zeros(n, np.int64))[:, None] + safe_target
        else:
            self.at_target = (np.arange(n)[:, None] * (c * k) + np.arange(k)[None, :]) + safe_target * k
        # (N, K)
        if unweighted and all_valid:
            self.weight, self.negative_weight = _unit_weights((n, k), dtype)
        else:
            self.weight = np.ones((n, k), dtype) if unweighted else weight[safe_target]
            if not all_valid:
                self.weight = np.where(valid, self.weight, np.zeros((), dtype))
            self.negative_weight = -self.weight
        count = target.size if all_valid else int(np.count_nonzero(valid))
        if unweighted and count <= _exact_count_limit(dtype):
            # Ones, added in any order, sum exactly to their count where the dtype holds it.
            self.total = dtype.type(count)
        else:
            self.total = _cascade_sum(self.weight, valid)

    def forward(self, x: np.ndarray) -> np.ndarray:
        # (an input with no classes has every target ignored, or raised: nothing to pick;
        # fuzzer finding, nll_loss of an empty diagonal with its target ignored)
        picked = x.reshape(-1).take(self.at_target) if x.size else np.zeros(self.at_target.shape, x.dtype)
        with _errstate():
            losses = self.negative_weight * picked
            if not self.all_valid:
                losses = np.where(self.valid, losses, np.zeros((), x.dtype))
            if self.reduction == "none" and self.target_shape:
                return losses.reshape(self.target_shape)
            # NOTE: an unbatched input's loss (a 0-d target) comes out of torch's reducing loop
            # for 'none' too: 0 - w x, +0 where w x is 0 (fuzzer finding: the engine's -0.0).
            total = _cascade_sum(losses, self.valid)
            if self.reduction == "none":
                return np.asarray(total)
            return total / self.total if self.reduction == "mean" else total

    def backward(self, g: np.ndarray, shape: tuple) -> np.ndarray:
        """torch's nll_loss_backward: zeros, with the gradient written at each target.

        NOTE: torch writes into a zero tensor (a scatter, not a product), so an infinite
        incoming gradient leaves exact zeros off the targets. At a target it writes
        weight[t] * -(g / total_weight) for 'mean', weight[t] * -g for 'sum' and
        -weight[t] * g for 'none': the numbers of -weight[t] * (g / total_weight) and
        -weight[t] * g, as negation is exact.
        """
        n, c, k = self.folded
        with _errstate():
            if self.reduction == "none":
                g = g.reshape(n, k)
            elif self.reduction == "mean":
                g = g / self.total
            values = self.negative_weight * g
            if not self.all_valid:
                values = np.where(self.valid, values, np.zeros((), self.weight.dtype))
        grad = np.zeros(n * c * k, values.dtype)
        if grad.size:
            grad[self.at_target] = values
        return grad.reshape(shape)


def _nll_record(plan: _NllPlan, input: Tensor) -> Tensor:
    return record(plan.rule, (input,), plan.forward(input._data), input.dtype, plan=plan,
                  self_shape=input._data.shape)


def _nll_backward(ctx, g):
    plan = ctx.plan
    if isinstance(g, Tensor):
        # NOTE: with create_graph torch records nll_loss_backward as one node, differentiable
        # in the incoming gradient and in the loss's input (see _nll_double_backward).
        out = record(plan.double_rule, (g, ctx.self), plan.backward(g._data, ctx.self_shape), g.dtype,
                     plan=plan, self_shape=ctx.self_shape)
        return (_save_constants(out, target=ctx.target, weight=getattr(ctx, "weight", None)),)
    return (plan.backward(g, ctx.self_shape),)


def _nll_double_backward(ctx, gg):
    """NOTE: torch's NllLossBackwardBackward0 gives grad_output nll_loss(grad, target, weight,
    reduction, ignore_index) and self zeros."""
    plan = ctx.plan
    grad_output = None
    if ctx.needs[0]:
        grad_output = _nll_record(plan, gg) if isinstance(gg, Tensor) else plan.forward(gg)
    return grad_output, (v_zeros_like(gg) if ctx.needs[1] else None)


_NLL_LOSS = Rule("NllLossBackward0", _nll_backward, saves={"self": None}, native=True)
_NLL_LOSS_2D = Rule("NllLoss2DBackward0", _nll_backward, saves={"self": None}, native=True)
_NLL_DOUBLE = {
    _NLL_LOSS: Rule("NllLossBackwardBackward0", _nll_double_backward, ("grad_output", "self")),
    _NLL_LOSS_2D: Rule("NllLoss2DBackwardBackward0", _nll_double_backward, ("grad_output", "self")),
}


def _nll(rule: Rule, input: Tensor, target: Tensor, weight, reduction: str, ignore_index: int,
         function: str) -> Tensor:
    """nll_loss over an input folded as (N, C, K) and a target as (N, K)."""
    x = input._data
    if x.ndim == 1:
        n, c, k = 1, x.shape[0], 1
    else:
        n, c = x.shape[:2]
        k = math.prod(x.shape[2:])
    if weight is not None:
        if weight._data.shape != (c,):
            raise RuntimeError(f"weight tensor should be defined either for all {c} classes or no classes but "
                               f"got weight tensor of shape: {list(weight._data.shape)}")
        _check_no_grad(weight, function, "weight")
    # NOTE: torch's kernel refuses the input's dtype before it reads the weight (as that dtype)
    # and the targets.
    if not input.dtype.is_floating_point:
        raise _not_implemented_for("nll_loss_out_frame" if rule is _NLL_LOSS else "nll_loss2d_forward_out_frame",
                                   input.dtype)
    if weight is not None and weight.dtype is not input.dtype:
        raise RuntimeError(f"expected scalar type {input.dtype.scalar_name} but found {weight.dtype.scalar_name}")
    folded = (n, c, k)
    if weight is None:
        plan = _unweighted_plan(rule, folded, target._data, x.dtype, ignore_index, reduction)
    else:
        plan = _NllPlan(rule, folded, target._data, weight._data, ignore_index, reduction)
    out = _nll_record(plan, input)
    return _save_constants(out, target=target, weight=weight)


_NLL_PLANS: dict = {}            # (rule, folded, target's bytes, ...) -> _NllPlan, unweighted ones
_NLL_PLAN_MAX_TARGETS = 4096     # targets up to which a plan is kept


def _unweighted_plan(rule, folded, target: np.ndarray, dtype, ignore_index: int, reduction: str) -> _NllPlan:
    """The _NllPlan of an unweighted nll_loss: one made before for the same target values (a
    training loop's batch labels, called again each step) and arguments, or a new one.

    A plan depends on nothing else (its arrays are never written): the key holds the target's
    values themselves, not its identity or version, so a target changed in any way (in place,
    through numpy) makes another plan, as torch reads the target anew at every call."""
    if target.size > _NLL_PLAN_MAX_TARGETS:
        return _NllPlan(rule, folded, target, dtype, ignore_index, reduction)
    key = (rule, folded, target.shape, target.dtype, target.tobytes(), dtype, ignore_index, reduction)
    plan = _NLL_PLANS.get(key)
    if plan is None:
        plan = _NllPlan(rule, folded, target, dtype, ignore_index, reduction)   # (raises for a bad target)
        if len(_NLL_PLANS) >= 32:
            _NLL_PLANS.clear()
        _NLL_PLANS[key] = plan
    return plan


def nll_loss(input, target, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
             reduction: str = "mean") -> Tensor:
    """The negative log likelihood loss of log-probabilities `input` at class indices `target`.

    NOTE: as torch's nll_loss_nd, 1-d and 2-d inputs record NllLossBackward0, 4-d inputs
    NllLoss2DBackward0, and other inputs are viewed as (N, C, 1, -1) around NllLoss2DBackward0.
    """
    reduction = _checked_reduction(_reduction(reduction, size_average, reduce))
    _native_args("nll_loss_nd", input, target, weight, _REDUCTIONS[reduction], ignore_index)
    return _nll_loss(input, target, weight, ignore_index, reduction)


def _nll_loss(input, target, weight, ignore_index: int, reduction: str) -> Tensor:
    """nll_loss of arguments that passed its native's checks (cross_entropy checked its own,
    of the same types)."""
    if input.ndim < 1:
        raise ValueError(f"Expected 1 or more dimensions (got {input.ndim})")
    # NOTE: torch reads a 0-d target's batch size as 0.
    target_batch = target._data.shape[0] if target.ndim else 0
    if input.ndim != 1 and input._data.shape[0] != target_batch:
        raise ValueError(f"Expected input batch_size ({input._data.shape[0]}) to match target batch_size "
                         f"({target_batch}).")
    if target.dtype is not _dtype.int64:
        raise RuntimeError(f"expected target dtype to be Long or Byte, but got {target.dtype.scalar_name}")
    if input.ndim <= 2:
        if target.ndim > 1:
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
        if input.ndim == 1 and target.ndim == 1 and target._data.shape[0] != 1:
            raise ValueError(f"For 1D input, 1D target must have size 1, but got target size: {target._data.shape[0]}")
        return _nll(_NLL_LOSS, input, target, weight, reduction, ignore_index, "nll_loss_forward")
    shape = input._data.shape
    expected = (shape[0],) + shape[2:]
    if input.ndim == 4:
        # NOTE: a 4-d input goes to nll_loss2d as it is, whose own checks word the errors.
        if target.ndim != 3:
            raise RuntimeError("only batches of spatial targets supported (3D tensors) but got targets of "
                               f"dimension: {target.ndim}")
        _check_nll_2d_sizes(input, target)
        return _nll(_NLL_LOSS_2D, input, target, weight, reduction, ignore_index, "nll_loss2d_forward")
    if target._data.shape != expected:
        raise RuntimeError(f"Expected target size {list(expected)}, got {list(target._data.shape)}")
    # NOTE: torch views an empty input as (N, C, 0, 0) and an empty target as (N, 0, 0), which
    # nll_loss2d then checks (fuzzer finding: cross_entropy of a (2, 0, 3) input: no classes).
    viewed = _reshape(input, (shape[0], shape[1], 1, -1) if input._data.size else (shape[0], shape[1], 0, 0))
    # (a view where it can be: torch saves it)
    target = _reshape(target, (shape[0], 1, -1) if target._data.size else (shape[0], 0, 0))
    _check_nll_2d_sizes(viewed, target)
    out = _nll(_NLL_LOSS_2D, viewed, target, weight, reduction, ignore_index, "nll_loss2d_forward")
    return _reshape(out, expected) if reduction == "none" else out


def _check_nll_2d_sizes(input: Tensor, target: Tensor) -> None:
    shape = input._data.shape
    if target._data.shape != (shape[0],) + shape[2:]:
        raise RuntimeError(f"size mismatch (got input: {list(shape)} , target: {list(target._data.shape)}")


def cross_entropy(input, target, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """log_softmax over the class dim followed by nll_loss (class-index targets) or by
    -sum(target * log_probabilities) (class-probability targets, same shape as input).

    NOTE: torch composes the label-smoothing and probability-target cases from several
    nodes (AddBackward0 / DivBackward1 / NegBackward0 on top); this follows its
    composition in aten/src/ATen/native/LossNLL.cpp.
    """
    reduction = _checked_reduction(_reduction(reduction, size_average, reduce))
    _native_args("cross_entropy_loss", input, target, weight, _REDUCTIONS[reduction], ignore_index,
                 label_smoothing)
    # NOTE: a 0-d input fails where torch first uses its class dim (1): log_softmax or size.
    class_dim = 0 if input.ndim == 1 else 1
    if input._data.shape == target._data.shape:
        if not target.dtype.is_floating_point:
            raise RuntimeError(f"Expected floating point type for target with class probabilities, got "
                               f"{target.dtype.scalar_name}")
        if ignore_index >= 0:
            raise RuntimeError("ignore_index is not supported for floating point target")
        return _cross_entropy_probabilities(input, target, weight, reduction, label_smoothing, class_dim)
    if label_smoothing > 0.0:
        if label_smoothing > 1.0:   # NOTE: torch prints a double as C++ streams do (%g)
            raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing:g}")
        return _cross_entropy_smoothed(input, target, weight, reduction, ignore_index, label_smoothing, class_dim)
    x = input._data
    if (weight is None and x.ndim == 2 and input.dtype is _dtype.float32 and target.dtype is _dtype.int64
            and target.ndim == 1 and _LANES_F32 <= x.shape[1] and 0 < x.size <= _ops._VIA_FLOAT64_MAX_NUMEL
            and target._data.shape[0] == x.shape[0]):
        return _cross_entropy_rows(input, target, ignore_index, reduction)
    if input.ndim and input.dtype.is_floating_point:
        # (log_softmax's own checks would pass: cross_entropy's native checked the tensors)
        log_probabilities = _log_softmax(input, class_dim)
    else:
        log_probabilities = log_softmax(input, class_dim)
    return _nll_loss(log_probabilities, target, weight, ignore_index, reduction)


def _lane_sum_columns(columns: np.ndarray) -> np.ndarray:
    """`_lane_sum` of the rows of columns.T, given `columns` (C, N): a float32 row-major array of
    at least one vector of lanes (C >= 8), which it overwrites. The same additions, in place."""
    c, n = columns.shape
    whole = c - c % _LANES_F32
    # the full vectors (the first is the start), the tail, then halves
    acc = columns[:_LANES_F32] if whole == _LANES_F32 else _cpu._sum_in_order(
        columns[:whole].reshape(whole // _LANES_F32, _LANES_F32, n), 0)
    if whole < c:
        np.add(acc[:c - whole], columns[whole:], out=acc[:c - whole])
    half = np.add(acc[:4], acc[4:])
    np.add(half[:2], half[2:], out=half[:2])
    return np.add(half[0], half[1])


def _cross_entropy_rows(input: Tensor, target: Tensor, ignore_index: int, reduction: str) -> Tensor:
    """cross_entropy of a float32 batch (N, C), C at least one vector of lanes and N * C small
    (exponentials through float64), and class targets of N, without weights or smoothing (a
    classifier's training step): the nodes, values and errors of `_log_softmax` then `_nll_loss`
    (LogSoftmaxBackward0 under NllLossBackward0), in fewer steps.

    The log_softmax is computed on a transposed (C, N) copy of the shifted input, where each
    class is a contiguous row of N values: the same elementwise operations as `_log_softmax`
    (its maximum over the rows of the input as it is), and `_lane_sum`'s additions in place, of
    whole rows. test_cross_entropy_rows checks it against the general path."""
    x = input._data
    n, c = x.shape
    with _errstate():
        shifted = np.empty((c, n), np.float32)
        np.subtract(x.T, np.maximum.reduce(x, axis=1), out=shifted)
        terms = np.empty((c, n), np.float32)
        np.exp(shifted, out=terms, dtype=np.float64)     # (as _ops._np_exp: rounded once from float64)
        total = _lane_sum_columns(terms)
        np.log(total, out=total, dtype=np.float64)
        np.subtract(shifted, total, out=shifted)
        data = shifted.T.copy()      # (a new row-major array: ascontiguousarray keeps a view for N = 1)
    log_probabilities = record(_LOG_SOFTMAX, (input,), data, input.dtype, dim=1)
    plan = _unweighted_plan(_NLL_LOSS, (n, c, 1), target._data, data.dtype, ignore_index, reduction)
    out = record(_NLL_LOSS, (log_probabilities,), plan.forward(data), input.dtype, plan=plan, self_shape=(n, c))
    node = out._grad_fn
    if node is not None:    # (_save_constants: after "self" in the order of the names)
        node._save("target", target)
    return out


def _class_view(weight: Tensor, ndim: int, class_dim: int) -> Tensor:
    shape = [1] * ndim
    shape[class_dim] = weight._data.shape[0]
    return _reshape(weight, tuple(shape))


def _smoothing_share(label_smoothing: float, n_classes: int) -> float:
    """label_smoothing / n_classes as torch's C++ divides a double by an integer: inf for no
    classes (fuzzer finding: cross_entropy of a (2, 0) input raised ZeroDivisionError in the
    engine; torch adds inf to no element, or multiplies an empty sum by it: NaN)."""
    return label_smoothing / n_classes if n_classes else math.inf


def _cross_entropy_probabilities(input, target, weight, reduction, label_smoothing, class_dim):
    n_classes = input.size(class_dim)
    if weight is not None and (weight.ndim != 1 or weight.numel() != n_classes):
        raise RuntimeError(f"cross_entropy: weight tensor should be defined either for all {n_classes} classes "
                           f"or no classes but got weight tensor of shape: {list(weight._data.shape)}")
    log_probabilities = log_softmax(input, class_dim)
    if label_smoothing > 0.0:
        if label_smoothing > 1.0:
            raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing:g}")
        target = _add_scalar(_mul_scalar(target, 1 - label_smoothing), _smoothing_share(label_smoothing, n_classes))
    product = _ops.mul(log_probabilities, target)
    if weight is not None:
        product = _ops.mul(product, _class_view(weight, input.ndim, class_dim) if input.ndim > 1 else weight)
    if reduction == "none":
        return _ops.neg(_ops.sum(product, class_dim))
    if reduction == "mean" and input.numel() == 0:
        # NOTE: torch fills the sum with NaN in place (FillBackward2), then negates it.
        return _ops.neg(_ops_inplace.fill_(_ops.sum(product), math.nan))
    total = _ops.neg(_ops.sum(product))
    if reduction == "sum":
        return total
    return _div_scalar(total, input.numel() // n_classes)


def _cross_entropy_smoothed(input, target, weight, reduction, ignore_index, label_smoothing, class_dim):
    log_probabilities = log_softmax(input, class_dim)
    nll = _nll_loss(log_probabilities, target, weight, ignore_index, reduction)
    n_classes = input.size(class_dim)
    ignored = target._data == ignore_index
    if weight is not None:
        weighted = _ops.mul(log_probabilities, _class_view(weight, input.ndim, class_dim))
        smooth = _ops.neg(_ops.sum(weighted, class_dim))
    else:
        smooth = _ops.neg(_ops.sum(log_probabilities, class_dim))
    smooth = _masked_fill_zero(smooth, ignored)
    if reduction == "mean":
        if weight is not None:
            denominator = weight._data[target._data[~ignored]].sum(dtype=weight.dtype.np)
            ret = _ops.div(_ops.sum(smooth), Tensor._make(np.asarray(denominator), weight.dtype))
        else:
            count = np.asarray(np.sum(~ignored), np.int64)
            ret = _ops.div(_ops.sum(smooth), Tensor._make(count, _dtype.int64))
    elif reduction == "sum":
        ret = _ops.sum(smooth)
    else:
        ret = smooth
    with _errstate():   # (no classes: inf times an empty sum is NaN, silently as torch)
        share = _smoothing_share(label_smoothing, n_classes)
        return _ops.add(_mul_scalar(nll, 1 - label_smoothing), _mul_scalar(ret, share))


def _warn_size_mismatch(input: Tensor, target: Tensor):
    # NOTE: torch reads target.size() first (an AttributeError for a target that is no tensor)
    if target.size() != input.size():
        warnings.warn(f"Using a target size ({target.shape}) that is different to the input size ({input.shape}). "
                      "This will likely lead to incorrect results due to broadcasting. Please ensure they have "
                      "the same size.", UserWarning, stacklevel=3)


def _broadcast_pair(input: Tensor, target: Tensor):
    """torch.broadcast_tensors: an ExpandBackward0 only for an operand whose shape changes."""
    shape = _broadcast_shape(input._data.shape, target._data.shape)
    return tuple(t if t._data.shape == shape else _expand(t, shape) for t in (input, target))


def _reduced_loss(losses: np.ndarray, reduction: str, dtype) -> np.ndarray:
    """A loss's reduction as np.mean / np.sum compute it; the mean of no element is NaN without
    numpy's "Mean of empty slice" warning (torch gives NaN silently). Call under _errstate()."""
    if reduction == "none":
        return losses
    # NOTE: torch reduces the losses with its sum of every element, in the order of
    # `_cpu.full_sum` (campaign seed 47: an mse_loss of 6 float32 errors 1 ulp off numpy's sum)
    total = _cpu.full_sum(losses, dtype)
    total = np.sum(losses, dtype=dtype) if total is None else total
    return total / np.asarray(losses.size, dtype) if reduction == "mean" else total


def _pointwise_loss(op: str, kernel: str, rule: Rule, fn, input, target, reduction, **attrs) -> Tensor:
    """A loss torch computes as one node over (input, target) with the reduction inside."""
    dt = _dtype.promote(input.dtype, target.dtype)
    if not dt.is_floating_point:
        raise _not_implemented_for(kernel, dt)
    with _errstate():
        losses = fn(_as(input, dt), _as(target, dt))
        data = _reduced_loss(losses, reduction, dt.np)
    numel = max(int(np.prod(np.broadcast_shapes(input._data.shape, target._data.shape))), 1)
    return record(rule, (input, target), data, dt, reduction=reduction, numel=numel, **attrs)


def _loss_backward(rule: Rule, kernel, g, x, y, ctx, **attrs):
    """torch's <loss>_backward(grad_output, x, y, ...) for the gradient of x (the target's is
    the same call with x and y swapped): one kernel, so in the dtype of x, with no operator's
    checks (a bool operand is fine). With a graph it is one node of its own, as torch's, with
    the loss's reduction and `attrs` (smooth_l1's beta)."""
    with _errstate():
        data = kernel(v_data(g), v_data(x), v_data(y), ctx).astype(v_data(x).dtype, copy=False)
    if isinstance(g, Tensor):
        return record(rule, (g, x, y), data, x.dtype, reduction=ctx.reduction, numel=ctx.numel, **attrs)
    return data


def _mse_kernel(g, x, y, ctx):
    norm = 2.0 / ctx.numel if ctx.reduction == "mean" else 2.0
    return norm * (x - y) * g


def _mse_backward(ctx, g):
    return (_loss_backward(_MSE_LOSS_BACKWARD, _mse_kernel, g, ctx.self, ctx.target, ctx) if ctx.needs[0] else None,
            _loss_backward(_MSE_LOSS_BACKWARD, _mse_kernel, g, ctx.target, ctx.self, ctx) if ctx.needs[1] else None)


def _mse_double_backward(ctx, gg):
    """torch's derivatives of mse_loss_backward(grad_output, x, y): mse_loss_backward(gg, x, y)
    for grad_output, and mse_loss_double_backward(gg * grad_output) = 2 gg grad_output (over
    numel for "mean") for x, its negative for y."""
    go, x, y = ctx.grad_output, ctx.self, ctx.target
    grad_go = _loss_backward(_MSE_LOSS_BACKWARD, _mse_kernel, gg, x, y, ctx) if ctx.needs[0] else None
    second = None
    if ctx.needs[1] or ctx.needs[2]:
        second = 2 * (gg * go)
        if ctx.reduction == "mean":
            second = second / ctx.numel
    return grad_go, second if ctx.needs[1] else None, -second if ctx.needs[2] else None


_MSE_LOSS = Rule("MseLossBackward0", _mse_backward, ("self", "target"), saves={"self": None, "target": None},
                 native=True)
_MSE_LOSS_BACKWARD = Rule("MseLossBackwardBackward0", _mse_double_backward, ("grad_output", "self", "target"),
                          saves={"grad_output": None, "self": None, "target": None})


def mse_loss(input, target, size_average=None, reduce=None, reduction: str = "mean", weight=None) -> Tensor:
    _warn_size_mismatch(input, target)
    reduction = _reduction(reduction, size_average, reduce)
    input, target = _broadcast_pair(input, target)
    if weight is not None:
        return _weighted_loss(_ops.pow(_ops.sub(input, target), 2), input, weight, reduction)
    reduction = _checked_reduction(reduction)
    return _pointwise_loss("mse_loss", "mse_cpu", _MSE_LOSS, lambda x, t: (x - t) ** 2, input, target, reduction)


def l1_loss(input, target, size_average=None, reduce=None, reduction: str = "mean", weight=None) -> Tensor:
    """mean / sum / none of |input - target|, composed as torch: SubBackward0, AbsBackward0, then the reduction."""
    _warn_size_mismatch(input, target)
    reduction = _reduction(reduction, size_average, reduce)
    input, target = _broadcast_pair(input, target)
    if weight is not None:
        return _weighted_loss(_ops_pointwise.abs(_ops.sub(input, target)), input, weight, reduction)
    reduction = _checked_reduction(reduction)
    return _reduce_loss(_ops_pointwise.abs(_ops.sub(input, target)), reduction)


def _weighted_loss(errors: Tensor, input: Tensor, weight, reduction: str) -> Tensor:
    """mse_loss and l1_loss with `weight`, composed in Python as torch's: the weighted errors,
    their sum, and for "mean" that sum divided by the sum of the weights."""
    if weight.size() != input.size():
        raise ValueError("Weights and input must have the same size.")
    weighted = _ops.mul(errors, weight)
    if reduction == "none":
        return weighted
    if reduction == "sum":
        return _ops.sum(weighted)
    if reduction == "mean":
        return _ops.div(_ops.sum(weighted), _ops.sum(weight))
    raise ValueError(f"Invalid reduction mode: {reduction}. Expected one of 'none', 'mean', 'sum'.")


def _smooth_l1_kernel(g, x, y, ctx):
    # NOTE: torch's smooth_l1_loss_backward: x - y <= -beta gives -norm g, >= beta norm g,
    # between them norm (x - y) g / beta.
    norm = 1.0 / ctx.numel if ctx.reduction == "mean" else 1.0
    d = np.asarray(x - y)
    return np.where(d <= -ctx.beta, -norm * g, np.where(d >= ctx.beta, norm * g, norm * d * g / ctx.beta))


def _smooth_l1_grad(g, x, y, ctx):
    return _loss_backward(_SMOOTH_L1_LOSS_BACKWARD, _smooth_l1_kernel, g, x, y, ctx, beta=ctx.beta)


def _smooth_l1_backward(ctx, g):
    return (_smooth_l1_grad(g, ctx.self, ctx.target, ctx) if ctx.needs[0] else None,
            _smooth_l1_grad(g, ctx.target, ctx.self, ctx) if ctx.needs[1] else None)


def _smooth_l1_double_backward(ctx, gg):
    """torch's derivatives of smooth_l1_loss_backward(grad_output, x, y): the same backward of gg
    for grad_output; smooth_l1_loss_double_backward(gg * grad_output) = gg grad_output
    (|x - y| < beta) / beta (over numel for "mean") for x, its negative for y. The latter computes
    x - y as an operator (so a bool operand raises there, as in torch)."""
    go, x, y = ctx.grad_output, ctx.self, ctx.target
    grad_go = _smooth_l1_grad(gg, x, y, ctx) if ctx.needs[0] else None
    second = None
    if ctx.needs[1] or ctx.needs[2]:
        _ops._check_bool_sub(*(v if isinstance(v, Tensor) else Tensor._make(v, _dtype.from_numpy(v.dtype))
                               for v in (x, y)))
        product = gg * go
        with _errstate():
            inside = np.abs(v_data(x) - v_data(y)) < ctx.beta
        second = product * v_const(inside.astype(v_data(product).dtype), product) / ctx.beta
        if ctx.reduction == "mean":
            second = second / ctx.numel
    return grad_go, second if ctx.needs[1] else None, -second if ctx.needs[2] else None


_SMOOTH_L1_LOSS = Rule("SmoothL1LossBackward0", _smooth_l1_backward, ("self", "target"),
                       saves={"self": None, "target": None}, native=True)
_SMOOTH_L1_LOSS_BACKWARD = Rule("SmoothL1LossBackwardBackward0", _smooth_l1_double_backward,
                                ("grad_output", "self", "target"),
                                saves={"grad_output": None, "self": None, "target": None})


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction: str = "mean",
                   beta: float = 1.0) -> Tensor:
    _warn_size_mismatch(input, target)
    reduction = _reduction(reduction, size_average, reduce)
    input, target = _broadcast_pair(input, target)
    reduction = _checked_reduction(reduction)
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    if beta == 0:
        # NOTE: torch computes smooth_l1_loss with beta=0 as l1_loss (its nodes).
        return _reduce_loss(_ops_pointwise.abs(_ops.sub(input, target)), reduction)

    def losses(x, t):
        z = np.abs(x - t)
        return np.where(z < beta, 0.5 * z * z / beta, z - 0.5 * beta)

    return _pointwise_loss("smooth_l1_loss", "smooth_l1_cpu", _SMOOTH_L1_LOSS, losses, input, target,
                           reduction, beta=beta)


def _bce_backward(ctx, g):
    x, t = ctx.self, ctx.target
    grad_input = grad_target = None
    if ctx.needs[0]:
        grad_input = (_bce_input_backward(ctx, g) if isinstance(g, Tensor)
                      else _bce_input_grad(g, x, t, ctx.weights, ctx.reduction, ctx.numel))
    if ctx.needs[1]:
        # NOTE: torch's binary_cross_entropy_target_backward is -logit(x) * grad * weight / numel
        # (in that order), without the clamp.
        grad_target = -_v_logit(x) * g
        if ctx.weights is not None:
            grad_target = grad_target * v_const(ctx.weights, grad_target)
        if ctx.reduction == "mean":
            grad_target = grad_target / ctx.numel
    return grad_input, grad_target


def _v_logit(x):
    """torch.logit(x) (no eps): log(x / (1 - x)); with a graph, node LogitBackward0."""
    with _errstate():
        data = np.log(v_data(x) / (1 - v_data(x)))
    return record(_LOGIT, (x,), data, x.dtype) if isinstance(x, Tensor) else data


def _logit_backward(ctx, g):
    """torch's logit_backward without eps: NaN outside [0, 1], else g / (x (1 - x))."""
    x = ctx.self
    outside = (v_data(x) < 0) | (v_data(x) > 1)
    return (v_where(outside, v_const(np.nan, g), g / (x * (1 - x))),)


_LOGIT = Rule("LogitBackward0", _logit_backward, saves={"self": None})


# NOTE: torch's binary_cross_entropy_backward kernel clamps at EPSILON, a float constant 1e-12:
# 9.999999960041972e-13 in float64.
_BCE_EPSILON = float(np.float32(1e-12))


def _bce_input_grad(g: np.ndarray, x: np.ndarray, t: np.ndarray, weight, reduction: str, numel: int) -> np.ndarray:
    """torch's binary_cross_entropy_backward: g (x - t) / max((1 - x) x, EPSILON), then times
    the weight, then over numel for the mean (in that order: it decides inf and NaN)."""
    denominator = (1 - x) * x
    eps = np.asarray(_BCE_EPSILON, x.dtype)
    grad = g * (x - t) / np.where(denominator < eps, eps, denominator)
    if weight is not None:
        grad = grad * weight
    return grad / numel if reduction == "mean" else grad


def _bce_input_backward(ctx, g: Tensor) -> Tensor:
    """The create_graph gradient of the input. NOTE: torch records binary_cross_entropy_backward
    as one node, BinaryCrossEntropyBackwardBackward0 over (grad_output, self, target), whose
    derivatives are its own formulas (binary_cross_entropy_double_backward*), not those of
    the clamped quotient."""
    x, t = ctx.self, ctx.target
    data = _bce_input_grad(g._data, x._data, t._data, ctx.weights, ctx.reduction, ctx.numel)
    out = record(_BCE_BACKWARD, (g, x, t), data, x.dtype, weights=ctx.weights, reduction=ctx.reduction,
                 numel=ctx.numel)
    return _save_constants(out, weight=getattr(ctx, "weight", None))


def _bce_double_backward(ctx, gg):
    """torch's binary_cross_entropy_double_backward (self), ..._double_backward_target and
    ..._double_backward_grad_output (FunctionsManual.cpp), with their 1e-12 as torch places it."""
    go, x, t = ctx.grad_output, ctx.self, ctx.target
    eps = 1e-12

    def weighted(value):
        return value * v_const(ctx.weights, value) if ctx.weights is not None else value

    def mean(value):
        return value / ctx.numel if ctx.reduction == "mean" else value

    grad_output = grad_self = grad_target = None
    if ctx.needs[0]:
        grad_output = mean(weighted((x - t) / ((x + eps) * (1 - x + eps)) * gg))
    if ctx.needs[1]:
        grad_self = mean(weighted((x * x - 2 * x * t + t) / ((x + eps) ** 2 * (1 - x + eps) ** 2) * (gg * go)))
    if ctx.needs[2]:
        # NOTE: torch clamps this denominator at 1e-12 in place under no_grad: the clamp has no
        # derivative of its own.
        denominator = (1 - x) * x
        clamp = v_const(np.maximum(v_data(denominator), eps) - v_data(denominator), x)
        grad_target = mean(weighted(-gg * go) / (denominator + clamp))
    return grad_output, grad_self, grad_target


_BCE = Rule("BinaryCrossEntropyBackward0", _bce_backward, ("self", "target"), saves={"self": None, "target": None},
            native=True)
_BCE_BACKWARD = Rule("BinaryCrossEntropyBackwardBackward0", _bce_double_backward, ("grad_output", "self", "target"),
                     saves={"grad_output": None, "self": None, "target": None})


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction: str = "mean") -> Tensor:
    reduction = _checked_reduction(_reduction(reduction, size_average, reduce))
    if target.size() != input.size():
        raise ValueError(f"Using a target size ({target.shape}) that is different to the input size "
                         f"({input.shape}) is deprecated. Please ensure they have the same size.")
    if weight is not None:
        _args.attribute_of(weight, "size")   # torch.broadcast_shapes(target.size(), weight.size()) first
    _native_args("binary_cross_entropy", input, target, weight, _REDUCTIONS[reduction])
    shape = input._data.shape
    weights = None
    if weight is not None:
        _check_tensor(weight, "binary_cross_entropy", "weight", 3)
        _broadcast_shape(shape, weight._data.shape)
        _check_no_grad(weight, "binary_cross_entropy", "weight")
        weights = np.broadcast_to(_as(weight, input.dtype), shape)
    if target.dtype is not input.dtype:
        raise RuntimeError(f"Found dtype {target.dtype.scalar_name} but expected "
                           f"{input.dtype.scalar_name}")
    if not input.dtype.is_floating_point:
        raise _not_implemented_for("binary_cross_entropy", input.dtype)
    x, t = input._data, target._data
    # NOTE: torch's kernel checks element by element, the input's value before the target's.
    bad_input, bad_target = ~((x >= 0) & (x <= 1)).ravel(), ~((t >= 0) & (t <= 1)).ravel()
    first = np.flatnonzero(bad_input | bad_target)
    if first.size:
        raise RuntimeError(f"all elements of {'input' if bad_input[first[0]] else 'target'} should be "
                           "between 0 and 1")
    with _errstate():
        # NOTE: torch clamps both logarithms at -100, so the loss is finite at x = 0 and 1. Its
        # kernel is a scalar loop calling the C library's log1p and log (see _cpu.libm).
        losses = (t - 1) * np.maximum(_cpu.libm("log1p", np.log1p, -x), -100) - t * np.maximum(
            _cpu.libm("log", np.log, x), -100)
        if weights is not None:
            losses = losses * weights
        data = _reduced_loss(losses, reduction, x.dtype)
    out = record(_BCE, (input, target), data, input.dtype, weights=weights, reduction=reduction,
                 numel=max(x.size, 1))
    # NOTE: torch's functional expands the weight to the target's size before the call: it saves that view.
    return _save_constants(out, weight=None if weight is None else _expand(weight, shape))


def _bce_logits_backward(ctx, g):
    """NOTE: torch's binary_cross_entropy_with_logits_backward and ..._target_backward
    (FunctionsManual.cpp), in their order and dtypes. Without a graph the input's gradient is
    computed in place (sigmoid(x).sub_(t).mul_(grad).mul_(weight)), so in the dtype of its
    first tensor; with one, out of place. The target's gradient is -x * grad (the input's
    dtype under a 0-d grad), then mul_(weight) in place in both cases (a float32 product of a
    huge logit and a weight overflows to inf even for a float64 target)."""
    x, t, pos_weight = ctx.self, ctx.target, ctx.pos_weights
    graph = isinstance(g, Tensor)
    weight = None if ctx.weights is None else v_const(ctx.weights, g)
    grad_input = grad_target = None
    if ctx.needs[0]:
        if pos_weight is not None:
            scaled_target = _v_mul(v_const(pos_weight, g), t)
            first = scaled_target + 1
            grad_input = _v_in_place(lambda a, b: a - b, first, t, not graph)
            grad_input = _v_in_place(lambda a, b: a * b, grad_input, v_sigmoid(x), not graph)
            grad_input = _v_in_place(lambda a, b: a - b, grad_input, scaled_target, not graph)
        else:
            grad_input = _v_in_place(lambda a, b: a - b, v_sigmoid(x), t, not graph)
        grad_input = _v_in_place(_v_mul, grad_input, g, not graph)
        if weight is not None:
            grad_input = _v_in_place(_v_mul, grad_input, weight, not graph)
        if ctx.reduction == "mean":
            grad_input = _v_in_place(lambda a, b: a / b, grad_input, ctx.numel, True)
    if ctx.needs[1]:
        if pos_weight is not None:
            # (log_sigmoid(-x).sub(log_sigmoid(x).mul(pos_weight)): a method's object before its argument)
            negated = v_log_sigmoid(-x)
            grad_target = _v_in_place(_v_mul, v_log_sigmoid(x), v_const(pos_weight, g), True)
            grad_target = _v_in_place(lambda a, b: a - b, negated, grad_target, True)
            grad_target = _v_in_place(_v_mul, grad_target, g, True)
        else:
            grad_target = _v_mul(-x, g)
        if weight is not None:
            grad_target = _v_in_place(_v_mul, grad_target, weight, True)
        if ctx.reduction == "mean":
            grad_target = _v_in_place(lambda a, b: a / b, grad_target, ctx.numel, True)
    return grad_input, grad_target


def _v_dtype(x):
    return x.dtype.np if isinstance(x, Tensor) else np.asarray(x).dtype


def _v_mul(a, b):
    """a * b with torch's dtype: a 0-d operand (the loss's gradient) takes the other's float dtype."""
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return a * b
    if np.ndim(b) == 0 and np.ndim(a):
        b = np.asarray(b, a.dtype)
    elif np.ndim(a) == 0 and np.ndim(b):
        a = np.asarray(a, b.dtype)
    return a * b


def _v_in_place(op, a, b, in_place: bool):
    """op(a, b), written into `a` (torch's sub_, mul_, div_: computed in the promoted dtype,
    stored in a's) when `in_place`, else out of place."""
    out = op(a, b)
    if not in_place or _v_dtype(out) == _v_dtype(a):
        return out
    return out.to(a.dtype) if isinstance(out, Tensor) else out.astype(_v_dtype(a))


_BCE_LOGITS = Rule("BinaryCrossEntropyWithLogitsBackward0", _bce_logits_backward, ("self", "target"),
                   saves={"self": None, "target": None})


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,
                                     reduction: str = "mean", pos_weight=None) -> Tensor:
    reduction = _checked_reduction(_reduction(reduction, size_average, reduce))
    if target.size() != input.size():
        raise ValueError(f"Target size ({target.shape}) must be the same as input size ({input.shape})")
    _native_args("binary_cross_entropy_with_logits", input, target, weight, pos_weight, _REDUCTIONS[reduction])
    dt = input.dtype
    # NOTE: torch's kernel starts with log_sigmoid(input), which has no integer loop, then
    # computes (1 - target).mul_(input): in place, so in the target's dtype.
    if not dt.is_floating_point:
        raise _not_implemented_for("log_sigmoid_cpu", dt)
    if isinstance(pos_weight, Tensor):   # NOTE: torch's next step is (pos_weight - 1).mul(target)
        _ops._check_bool_sub(pos_weight, 1)
    if target.dtype is _dtype.bool_:
        raise RuntimeError("Subtraction, the `-` operator, with two bool tensors is not supported. "
                           "Use the `^` or `logical_xor()` operator instead.")
    if not target.dtype.is_floating_point:
        raise RuntimeError(f"result type {dt.scalar_name} can't be cast to the desired output type "
                           f"{target.dtype.scalar_name}")
    if target.dtype.is_floating_point:
        # NOTE: torch computes (1 - target).mul_(input).sub_(...): in place on a tensor of the
        # target's dtype, which is the loss's dtype.
        dt = target.dtype
    shape = input._data.shape
    weights = pos_weights = None
    for name, value in (("weight", weight), ("pos_weight", pos_weight)):
        if value is not None:
            _check_tensor(value, "binary_cross_entropy_with_logits", name)
            _broadcast_shape(shape, value._data.shape)
            _check_no_grad(value, "binary_cross_entropy_with_logits", name)
    if weight is not None:
        weights = np.broadcast_to(_as(weight, dt), shape)
    if pos_weight is not None:
        pos_weights = np.broadcast_to(_as(pos_weight, dt), shape)
    x, t = input._data, _as(target, dt)
    with _errstate():
        # NOTE: torch's loss is (1 - t) * x - (1 + (pos_weight - 1) * t) * log_sigmoid(x), with
        # log_sigmoid(x), weighted in place, in the input's dtype.
        log_sigmoid = v_log_sigmoid(x)
        if pos_weights is not None:
            log_sigmoid = (log_sigmoid * ((pos_weights - 1) * t + 1)).astype(x.dtype)
        losses = ((1 - t) * x).astype(dt.np) - log_sigmoid
        if weights is not None:
            losses = losses.astype(dt.np) * weights
        data = _reduced_loss(losses, reduction, dt.np)
    out = record(_BCE_LOGITS, (input, target), data, dt, weights=weights, pos_weights=pos_weights,
                 reduction=reduction, numel=max(x.size, 1))
    return _save_constants(out, weight=weight, pos_weight=pos_weight)


# ---------------------------------------------------------------------------------
# normalize, layer_norm
# ---------------------------------------------------------------------------------

def normalize(input, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out=None) -> Tensor:
    """input / max(norm(input, p, dim), eps), composed as torch: LinalgVectorNormBackward0,
    ClampMinBackward0, ExpandBackward0 and DivBackward0."""
    _args.attribute_of(input, "norm")   # input.norm(p, dim, keepdim=True) first, as torch
    if out is not None:
        raise NotImplementedError("engine.nn.functional.normalize: the out argument is not supported")
    if not input.dtype.is_floating_point:   # NOTE: torch checks the dtype before the dim
        raise RuntimeError(f"linalg.vector_norm: Expected a floating point or complex tensor as input. "
                           f"Got {input.dtype.scalar_name}")
    _wrap_dim(dim, input.ndim)   # (torch's IndexError for a bad dim; the norm is given the dim as given)
    norm = _ops_reduce.norm(input, float(p), dim if input.ndim else None, keepdim=True)
    return _ops.div(input, _expand(_ops_pointwise.clamp_min(norm, eps), input._data.shape))


def _layer_norm_backward(ctx, g):
    """NativeLayerNormBackward0: the gradients of input, weight and bias from the saved mean and
    rstd. With create_graph each is one node, as torch's native_layer_norm_backward records."""
    if isinstance(g, Tensor):
        return _native_layer_norm_backward(ctx, g)
    return _layer_norm_grads(g, ctx.input, ctx.weight if ctx.has_weight else None, ctx.mean, ctx.rstd,
                             ctx.dims, ctx.needs)


def _layer_norm_grads(g, x, w, mean, rstd, dims, needs) -> tuple:
    """torch's CPU layer_norm backward kernel on arrays (the weight's and bias's gradients not yet
    summed over the leading dims). NOTE: its arithmetic, in its order, decides where inf and
    huge gradients give NaN, and a gradient that cancels to 0 (a constant row): with
    ds = sum(g x w), db = sum(g w) over the normalized dims (summed as _lane_sum), a = rstd,
    b = fma(db, mean, -ds) a^3 / N and c = fma(-b, mean, -db a / N), the input's gradient is
    fma(b, x, (a g) w) + c, the weight's g (a x - a mean)."""
    dt = x.dtype
    n = int(np.prod([x.shape[d] for d in dims], dtype=np.int64))
    scale = np.asarray(1, dt) / np.asarray(n, dt)
    grad_input = grad_weight = None
    if needs[0]:
        rows = (int(np.prod(g.shape[:g.ndim - len(dims)], dtype=np.int64)), n)
        with _errstate():
            g2, x2 = g.reshape(rows), np.broadcast_to(x, g.shape).reshape(rows)
            gw = g2 if w is None else g2 * w.reshape(-1)
            ds = _lane_sum(g2 * x2 if w is None else g2 * x2 * w.reshape(-1),
                           (g2, x2) if w is None else (g2 * x2, w.reshape(-1)))
            db = _lane_sum(gw, None if w is None else (g2, w.reshape(-1)))
            a, m = rstd.reshape(-1), mean.reshape(-1)
            b = _fma(db, m, -ds) * a * a * a * scale
            c = _fma(-b, m, -(db * a * scale))
            ag = a[:, None] * g2
            grad_input = (_fma(b[:, None], x2, ag if w is None else ag * w.reshape(-1)) + c[:, None]).reshape(g.shape)
    if needs[1]:
        # NOTE: torch's kernel computes a x + b, b = -a mean, as one fused multiply-add: a
        # constant row's normalized values are then its rounding residue, not exactly 0 (campaign
        # seed 54: an inf gradient there makes the weight's gradient inf in torch, NaN from 0 * inf).
        with _errstate():
            grad_weight = g * (_fma(rstd, x, -rstd * mean) if isinstance(g, np.ndarray) else rstd * x + -rstd * mean)
    return grad_input, grad_weight, g if needs[2] else None


# NOTE: torch runs its layer_norm kernels as compiled for AVX2 (it registers no AVX512 variant),
# whose vectors hold 8 float32 or 4 float64 lanes; the lanes decide the order of its sums.
_LANE_BYTES = 32
_LANES_F32 = _LANE_BYTES // 4


def _lane_sum(terms: np.ndarray, fused=None) -> np.ndarray:
    """The sums over the last dim of `terms` (rows, n) as torch's vec::map*_reduce_all: one vector
    of lanes accumulates the full vectors (the first is its start), then the tail (its products
    `fused` = (p, q) then fused into the accumulator), then the lanes are added (float32
    pairwise, half on half; float64 in order); a row shorter than a vector is summed in order.

    Computed on a column-major copy (lanes, then rows, contiguous): the additions are the same,
    each over contiguous rows of `rows` values rather than over strided columns, and the full
    vectors in one reduce over the outer axis, which adds in order from the first (2x faster
    than strided slices on cross_entropy's 64 x 10 rows, 20x on a row of 4,096); but for many long
    rows (512 x 512: 1.5x slower there), which `_lane_sum_rows` sums as they are."""
    rows, n = terms.shape
    lanes = _LANE_BYTES // terms.itemsize
    if n < lanes:
        return _sum_in_order(terms)
    whole = n - n % lanes
    if rows >= _LANE_ROWS_MAX and terms.size > _LANE_COPY_MAX:
        return _lane_sum_rows(terms, fused, lanes, whole)
    columns = np.ascontiguousarray(terms.T)          # (n, rows)
    if whole == lanes:
        acc = columns[:lanes].copy()
    else:
        acc = _cpu._sum_in_order(columns[:whole].reshape(whole // lanes, lanes, rows), 0)
    if whole < n:
        width = n - whole
        p, q = fused if fused is not None else (terms, None)
        tail = slice(whole, n)
        if q is not None:
            acc[:width] = _fma(p[:, tail], q[..., tail], acc[:width].T).T
        else:
            np.add(acc[:width], columns[whole:], out=acc[:width])
    if terms.dtype != np.float32:   # torch's generic vec_reduce_all: the lanes in order
        total = acc[0]
        for lane in range(1, lanes):
            total = total + acc[lane]
        return total
    while acc.shape[0] > 1:          # its AVX2 float32 one: shuffles, half on half
        half = acc.shape[0] // 2
        acc = acc[:half] + acc[half:]
    return acc[0]


# From this many rows and elements, _lane_sum adds the columns of `terms` as they are rather than
# those of a transposed copy (measured: 4,096 x 64 float32 as fast either way, 512 x 512 1.5x
# slower transposed; 8 x 1,000 12x faster transposed).
_LANE_ROWS_MAX = 32
_LANE_COPY_MAX = 65536


def _lane_sum_rows(terms: np.ndarray, fused, lanes: int, whole: int) -> np.ndarray:
    """_lane_sum of many long rows: the same additions on strided column slices of `terms`."""
    n = terms.shape[1]
    acc = terms[:, :lanes]
    for d in range(lanes, whole, lanes):
        acc = acc + terms[:, d:d + lanes]
    if whole < n:
        acc = acc.copy()
        p, q = fused if fused is not None else (terms, None)
        tail = slice(whole, n)
        acc[:, :n - whole] = (_fma(p[:, tail], q[..., tail], acc[:, :n - whole]) if q is not None
                              else acc[:, :n - whole] + p[:, tail])
    if terms.dtype != np.float32:   # torch's generic vec_reduce_all: the lanes in order
        return _sum_in_order(acc)
    while acc.shape[1] > 1:          # its AVX2 float32 one: shuffles, half on half
        half = acc.shape[1] // 2
        acc = acc[:, :half] + acc[:, half:]
    return acc[:, 0]


def _sum_in_order(terms: np.ndarray) -> np.ndarray:
    acc = terms[:, 0] if terms.shape[1] else np.zeros(terms.shape[0], terms.dtype)
    for i in range(1, terms.shape[1]):
        acc = acc + terms[:, i]
    return acc


def _row_moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's mean and (biased) variance as torch's RowwiseMoments, in x's dtype: Welford
    updates per vector lane over chunks of 16 vectors (merged as a cascade), in order over the
    tail, then the lanes merged into the tail's moments one by one.

    NOTE: the merge of an empty lane multiplies delta^2 by 0, so a row whose mean squared
    overflows has a NaN variance (float32 rows above about 1.8e19)."""
    rows, n = x.shape
    dt = x.dtype.type
    lanes = _LANE_BYTES // x.itemsize
    vectors = n // lanes

    def merge(add, into):   # AddMomentsVec
        count = into[0] + add[0]
        c = dt(0) if count == 0 else dt(add[0]) / dt(count)
        delta = add[1] - into[1]
        c_delta = c * delta
        return count, into[1] + c_delta, _fma(delta * dt(into[0]), c_delta, into[2] + add[2])

    chunks = -(-vectors // 16)
    depth = max(int(chunks - 1).bit_length(), 1)   # torch's CeilLog2(chunks), at least one level
    stack = [(0, np.zeros((rows, lanes), dt), np.zeros((rows, lanes), dt)) for _ in range(depth)]
    for i in range(chunks):
        m1 = m2 = np.zeros((rows, lanes), dt)
        for j in range(min(16, vectors - i * 16)):
            v = x[:, (i * 16 + j) * lanes:(i * 16 + j + 1) * lanes]
            delta = v - m1
            m1 = _fma(dt(1) / dt(j + 1), delta, m1)
            m2 = _fma(delta, v - m1, m2)
        stack[0] = merge((min(16, vectors - i * 16), m1, m2), stack[0])
        mask, level = i + 1, 1
        while level < depth and mask & 1 == 0:
            stack[level] = merge(stack[level - 1], stack[level])
            stack[level - 1] = (0, np.zeros((rows, lanes), dt), np.zeros((rows, lanes), dt))
            mask, level = mask >> 1, level + 1
    for level in range(1, depth):
        stack[0] = merge(stack[level], stack[0])
    count, m1, m2 = 0, np.zeros(rows, dt), np.zeros(rows, dt)
    for i in range(vectors * lanes, n):
        delta = x[:, i] - m1
        count += 1
        m1 = m1 + delta / dt(count)
        m2 = m2 + delta * (x[:, i] - m1)
    for lane in range(lanes):   # AddMoments, with the fused multiply-adds the compiler makes
        total = count + vectors
        c = dt(0) if total == 0 else dt(vectors) / dt(total)
        delta = stack[0][1][:, lane] - m1
        m1 = _fma(c, delta, m1)
        m2 = m2 + _fma(delta * delta * c, dt(count), stack[0][2][:, lane])
        count = total
    return m1, m2 / dt(n)


def _native_layer_norm_backward(ctx, g: Tensor) -> tuple:
    """The create_graph backward of layer_norm. NOTE: torch records native_layer_norm_backward as
    one node, NativeLayerNormBackwardBackward0, over (grad_out, input, mean, rstd, weight, bias)
    whose three outputs all require grad when any of these does (the weight's gradient too,
    though its value does not depend on the weight); the engine gives each output its own node
    of that name (as for split), and their derivatives add up to torch's."""
    x, dims, dt = ctx.input, ctx.dims, g.dtype
    grads = _layer_norm_grads(g._data, x._data, ctx.weight._data if ctx.has_weight else None,
                              ctx.mean, ctx.rstd, dims, ctx.needs)
    leading = tuple(range(x.ndim - len(dims)))
    inputs = (g, x, Tensor._make(ctx.mean, dt), Tensor._make(ctx.rstd, dt), ctx.weight, ctx.bias)
    out, group = [], {}
    for k, grad in enumerate(grads):
        if grad is not None and k > 0:
            grad = np.sum(grad, axis=leading)    # the weight's and bias's shape
        out.append(None if grad is None else
                   record(_LAYER_NORM_BACKWARD[k], inputs, grad, dt, output=k, dims=dims,
                          has_weight=ctx.has_weight, eps=ctx.eps, group=group))
    return tuple(out)


def _layer_norm_double_backward(ctx, gg) -> tuple:
    """NativeLayerNormBackwardBackward0 of output `ctx.output` (0 input, 1 weight, 2 bias): torch's
    layer_norm_double_backward (FunctionsManual.cpp) with only that output's gradient defined.
    Returns the gradients of (grad_out, input, mean, rstd, weight, bias)."""
    if not ctx.has_weight and ctx.output != 1 and _layer_norm_bias_without_weight(ctx):
        return (None,) * 6
    x, g, dims = ctx.input, ctx.grad_out, ctx.dims
    shape = x.shape
    m = int(np.prod(shape[:len(shape) - len(dims)], dtype=np.int64))
    n = int(np.prod([shape[d] for d in dims], dtype=np.int64))
    x2, g2 = v_reshape(x, (m, n)), v_reshape(g, (m, n))
    # NOTE: torch's formula reads the saved mean and rstd, constants to a further backward, so its
    # third-order gradients are wrong (tests/engine/test_ops_against_torch.py, THIRD_ORDER_REFERENCE);
    # the engine computes them from the input, which keeps them differentiable.
    # Their values are the saved ones, though, as torch's: where rows are constant or huge, its
    # zeros and infinities follow from them.
    mu = _with_value(v_mean(x2, 1, True), v_data(ctx.mean).reshape(m, 1))
    centered = x2 - mu
    rstd = _with_value((v_mean(centered * centered, 1, True) + ctx.eps) ** -0.5, v_data(ctx.rstd).reshape(m, 1))
    one = v_const(np.ones((1,)), x)
    gamma = v_reshape(ctx.weight, (1, n)) if ctx.has_weight else one
    rstd2, rstd3 = rstd ** 2, rstd ** 3
    centered_rstd3 = centered * rstd3

    def first_backward_grad_input(g_local, gamma_local):
        h0 = gamma_local * rstd / n
        h1 = (n * g_local - v_sum(g_local, 1, True)) - centered * rstd2 * v_sum(g_local * centered, 1, True)
        return h0 * h1

    grad_input = grad_weight = grad_grad_out = None
    if ctx.output == 0:                  # ggI
        ggi = v_reshape(gg, (m, n))
        gxhat = g2 * gamma
        gxhat_mu_sum = v_sum(gxhat * centered, 1, True)
        gxhat_sum = v_sum(gxhat, 1, True)
        ggi_sum = v_sum(ggi, 1, True)
        ggi_mu_sum = v_sum(ggi * centered, 1, True)
        all_sub = (ggi_sum * gxhat_sum / n - v_sum(ggi * gxhat, 1, True)
                   + rstd2 * gxhat_mu_sum * ggi_mu_sum * (3.0 / n))
        grad_input = (centered_rstd3 * all_sub / n + ggi_mu_sum * rstd3 / n * (gxhat_sum / n - gxhat)
                      + gxhat_mu_sum * rstd3 / n * (ggi_sum / n - ggi))
        if ctx.has_weight:
            grad_weight = v_reshape(v_sum(g2 * first_backward_grad_input(ggi, one), 0),
                                    ctx.weight.shape)
        grad_grad_out = first_backward_grad_input(ggi, gamma)
    elif ctx.output == 1:                # ggG (the weight's gradient exists only with a weight)
        ggg = v_reshape(gg, (1, n))
        grad_input = (g2 * ggg * rstd - rstd * v_sum(g2 * ggg, 1, True) / n
                      - centered_rstd3 * v_sum(g2 * ggg * centered, 1, True) / n)
        grad_grad_out = ggg * centered * rstd
    else:                                # ggB: only grad_out's gradient
        grad_grad_out = v_expand(v_reshape(gg, (1, n)), (m, n))
    if grad_input is not None:
        grad_input = v_reshape(grad_input, shape)
    if grad_grad_out is not None:
        grad_grad_out = v_reshape(v_expand(grad_grad_out, (m, n)), shape)
    needs = ctx.needs
    return (grad_grad_out if needs[0] else None, grad_input if needs[1] else None, None, None,
            grad_weight if needs[4] else None, None)


def _with_value(x, value: np.ndarray):
    """`value` in the place of `x`: x's derivative (a node passing its gradient on) with another value."""
    if isinstance(x, Tensor):
        return record(_WITH_VALUE, (x,), value.astype(x.dtype.np), x.dtype)
    return value.astype(x.dtype)


_WITH_VALUE = Rule("AliasBackward0", lambda ctx, g: (g,))


def _layer_norm_bias_without_weight(ctx) -> bool:
    """Whether this output's double backward gives nothing: the bias's, without a weight.

    NOTE: torch's layer_norm_double_backward makes the bias's gradient term (ggB_expanded) only
    with a weight, so without one the bias's gradient adds nothing (though grad_out's gradient
    depends on it); when the input's gradient is defined too, it adds that undefined term and
    raises. Mathematically wrong (gradgradcheck fails there: pytorch/pytorch#63276, review of the
    layer_norm OpInfo), but what torch 2.13's double backward gives, so the engine follows it.
    torch computes the outputs in one node: the engine's per-output nodes note, per backward
    call, which of the two had a gradient."""
    group, run = ctx.group, BackwardRun.id
    if group.get("run") != run:
        group["run"], group["seen"] = run, set()
    group["seen"].add(ctx.output)
    if {0, 2} <= group["seen"]:
        raise RuntimeError("Expected a proper Tensor but got None (or an undefined Tensor in C++) for "
                           "argument #1 'other'")
    return ctx.output == 2


_LAYER_NORM = Rule("NativeLayerNormBackward0", _layer_norm_backward, ("input", "weight", "bias"),
                   saves={"input": None, "weight": None, "bias": None}, native=True)
_LAYER_NORM_BACKWARD = tuple(
    Rule("NativeLayerNormBackwardBackward0", _layer_norm_double_backward,
         ("grad_out", "input", "mean", "rstd", "weight", "bias"),
         saves={"grad_out": None, "input": None, "mean": None, "rstd": None, "weight": None})
    for _ in range(3))


def layer_norm(input, normalized_shape, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    _native_args("layer_norm", input, normalized_shape, weight, bias, eps, True)
    normalized_shape = tuple(int(n) for n in normalized_shape)
    shape = input._data.shape
    k = len(normalized_shape)
    params = [t for t in (weight, bias) if t is not None]
    if params and params[0].dtype is not input.dtype:
        # NOTE: torch's CPU kernel takes parameters of another dtype than the input ("mixed
        # type") only as float32 with a bfloat16/half input, checked before any shape.
        if any(t.dtype is not _dtype.float32 for t in params):
            raise RuntimeError("mixed dtype (CPU): expect parameter to have scalar type of Float")
        raise RuntimeError("mixed dtype (CPU): all inputs must share same datatype.")
    for name, value in (("weight", weight), ("bias", bias)):
        if value is not None and value._data.shape != normalized_shape:
            raise RuntimeError(f"Expected {name} to be of same shape as normalized_shape, but got {name} of shape "
                               f"{list(value._data.shape)} and normalized_shape = {list(normalized_shape)}")
    if k == 0 or k > len(shape) or shape[len(shape) - k:] != normalized_shape:
        raise RuntimeError(f"Given normalized_shape={list(normalized_shape)}, expected input with shape "
                           f"[*, {', '.join(map(str, normalized_shape))}], but got input of size{list(shape)}")
    # NOTE: torch's kernel dispatches on the input's dtype, then reads the parameters as that dtype.
    if not input.dtype.is_floating_point:
        raise _not_implemented_for("LayerNormKernelImpl", input.dtype)
    for t in params:   # a bias whose dtype differs from the weight's (and input's)
        if t.dtype is not input.dtype:
            raise RuntimeError(f"expected scalar type {input.dtype.scalar_name} but found {t.dtype.scalar_name}")
    dims = tuple(range(len(shape) - k, len(shape)))
    dt = input.dtype.np
    n = int(np.prod(normalized_shape, dtype=np.int64))
    stats = shape[:len(shape) - k] + (1,) * k
    with _errstate():
        mean, var = _row_moments(np.ascontiguousarray(input._data).reshape(int(np.prod(stats, dtype=np.int64)), n))
        mean, rstd = mean.reshape(stats), (dt.type(1) / np.sqrt(var + dt.type(eps))).reshape(stats)
        # NOTE: torch's kernel computes fma((x - mean) * rstd, weight, bias) in the input's
        # dtype, without a weight fma(x - mean, rstd, bias), with bias 0 when absent: the sum
        # decides the sign of a zero.
        centered, shift = input._data - mean, bias._data if bias is not None else dt.type(0)
        data = (_fma(centered, rstd, shift) if weight is None else
                _fma(centered * rstd, weight._data, shift))
    absent = Tensor._make(np.zeros(normalized_shape, dt), input.dtype)
    return record(_LAYER_NORM, (input, weight if weight is not None else absent, bias if bias is not None else absent),
                  _contiguous_array(data), input.dtype, dims=dims, eps=eps, has_weight=weight is not None,
                  mean=mean, rstd=rstd)
