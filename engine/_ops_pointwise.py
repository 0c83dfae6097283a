"""Ops of the `engine/_ops_pointwise.py` section of the op table (see engine/optable.py).

Each public function here is one op: it computes with numpy and calls
`record(rule, inputs, result, dtype, **saved_values)`; its `Rule` is defined
next to it. See `engine/_ops.py` for the conventions rules follow.

Elementwise math (unary, binary, ternary), clamping, comparisons, logical and
bitwise ops. Gradients follow torch 2.13's derivatives.yaml formulas, including
its conventions at kinks, ties and domain edges (each marked `# NOTE:`).
"""
from __future__ import annotations

import builtins
import math

import numpy as np

from . import _cpu, _dtype, _ops, _zerotensor
from ._ops import (Rule, _as, _binary_operands, _broadcast_shape, _check_output_cast, _check_tensor, _errstate,
                   _VIA_FLOAT64_MAX_NUMEL, _float64_copy, _float_dtype, _iterator_layout, _rounded, _scalar_tensor,
                   _unary_float, record, v_data, v_exp, v_masked_fill, v_where)
from ._tensor import Tensor, _make_tensor

_not_implemented_for = _dtype.not_implemented_for


def _full(data: np.ndarray, shape: tuple) -> np.ndarray:
    """`data` broadcast to the result shape, as a writable array of its own (not a view)."""
    data = np.asarray(data)
    return data if data.shape == shape else np.broadcast_to(data, shape).copy()


def _laid_out(data, *operands) -> np.ndarray:
    """An elementwise result laid out as torch's TensorIterator lays it out (see
    `_ops._iterator_layout`); `operands` in torch's argument order, numbers ignored."""
    return _iterator_layout(np.asarray(data), *(t._data for t in operands if isinstance(t, Tensor)))


def _plain(data: np.ndarray, dt) -> Tensor:
    """A result outside the graph (bool results, integer copies)."""
    return Tensor._make(np.asarray(data, dtype=dt.np), dt)


# ---------------------------------------------------------------------------------
# Value helpers for rules (numpy arrays in a plain backward, tensors with create_graph)
# ---------------------------------------------------------------------------------

def v_zeros(g):
    """A zero gradient shaped like `g` (torch's zeros_like(grad): no graph, NaN-free)."""
    if isinstance(g, Tensor):
        return Tensor._make(np.zeros(g._data.shape, g.dtype.np), g.dtype)
    return np.zeros_like(g)


def v_times_mask(g, mask: np.ndarray):
    """`g * mask` for a boolean mask: a multiplication, so inf or NaN in `g` gives NaN."""
    if isinstance(g, Tensor):
        return g * Tensor._make(mask.astype(g.dtype.np), g.dtype)
    return g * mask.astype(g.dtype)


def v_sign(x):
    # NOTE: torch's formulas (abs, the 1- and inf-norms) take sgn(x): with create_graph it stays
    # in the graph as SgnBackward0, whose gradient is a ZeroTensor (see _zerotensor), so a
    # gradient built from it requires grad. Its sign of NaN is 0 (a zero gradient for |x| or the
    # 1- and inf-norms at NaN).
    return _unary_keep("sgn", _SGN, _sign, x) if isinstance(x, Tensor) else _sign(x)


def v_sin(x):
    return sin(x) if isinstance(x, Tensor) else _rounded(np.sin, x)


def v_cos(x):
    return cos(x) if isinstance(x, Tensor) else _rounded(np.cos, x)


def v_sinh(x):
    return sinh(x) if isinstance(x, Tensor) else _sinh_cosh_loops("sinh", x, _rounded(np.sinh, x), odd=True)


def v_cosh(x):
    return cosh(x) if isinstance(x, Tensor) else _sinh_cosh_loops("cosh", x, _rounded(np.cosh, x), odd=False)



def v_rsqrt(x):
    return rsqrt(x) if isinstance(x, Tensor) else 1 / np.sqrt(x)


def v_xlogy(x, y):
    if isinstance(x, Tensor) or isinstance(y, Tensor):
        return xlogy(x, y)
    return _xlogy(x, y)


def v_div_rounded(a, b, mode: str):
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return _div_rounded(a, b, mode)
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype and a.dtype.kind == b.dtype.kind == "f" and (a.ndim == 0) != (b.ndim == 0):
        # NOTE: torch's 0-d operand does not promote a dimensioned one of its category (numpy's
        # does): remainder's other-gradient of float32 by a 0-d float64 is float32 in torch, and
        # overflows there (campaign seed 24).
        a, b = (a.astype(b.dtype), b) if a.ndim == 0 else (a, b.astype(a.dtype))
    return np.floor_divide(a, b) if mode == "floor" else np.trunc(a / b)


# ---------------------------------------------------------------------------------
# Elementwise unary ops computed in floating point (integer and bool inputs: float32)
# ---------------------------------------------------------------------------------

_LN2, _LN10 = 0.6931471805599453, 2.302585092994046


def _half_negated_times(g, cube):
    """-0.5 * g * cube, with `cube` computed (as the argument) before -0.5 * g."""
    return -0.5 * g * cube


_EXPM1 = Rule("Expm1Backward0", lambda ctx, g: (g * (ctx.result + 1),), saves={"result": None})
_LOG2 = Rule("Log2Backward0", lambda ctx, g: (g / (ctx.self * _LN2),), saves={"self": None})
_LOG10 = Rule("Log10Backward0", lambda ctx, g: (g / (ctx.self * _LN10),), saves={"self": None})
_LOG1P = Rule("Log1PBackward0", lambda ctx, g: (g / (ctx.self + 1),), saves={"self": None})
# NOTE: sqrt'(0) = g / (2 * 0) = inf (and -inf at -0.0), as torch's grad / (2 * result).
_SQRT = Rule("SqrtBackward0", lambda ctx, g: (g / (2 * ctx.result),), saves={"result": None})
# (torch's -0.5 * grad * result.pow(3): the cube made first, see _ops._neg_grad_times)
_RSQRT = Rule("RsqrtBackward0", lambda ctx, g: (_half_negated_times(g, ctx.result ** 3),), saves={"result": None})
_SIN = Rule("SinBackward0", lambda ctx, g: (g * v_cos(ctx.self),), saves={"self": None})
_COS = Rule("CosBackward0", lambda ctx, g: (g * -v_sin(ctx.self),), saves={"self": None})
_TAN = Rule("TanBackward0", lambda ctx, g: (g * (1 + ctx.result ** 2),), saves={"result": None})
# NOTE: asin'(+-1) and acos'(+-1) are +-inf: torch computes rsqrt(1 - x * x), not 1 / sqrt(...).
_ASIN = Rule("AsinBackward0", lambda ctx, g: (g * v_rsqrt(-ctx.self * ctx.self + 1),), saves={"self": None})
_ACOS = Rule("AcosBackward0", lambda ctx, g: (g * -v_rsqrt(-ctx.self * ctx.self + 1),), saves={"self": None})
_ATAN = Rule("AtanBackward0", lambda ctx, g: (g / (ctx.self * ctx.self + 1),), saves={"self": None})
_SINH = Rule("SinhBackward0", lambda ctx, g: (g * v_cosh(ctx.self),), saves={"self": None})
_COSH = Rule("CoshBackward0", lambda ctx, g: (g * v_sinh(ctx.self),), saves={"self": None})
_ERF = Rule("ErfBackward0", lambda ctx, g: (2.0 / math.sqrt(math.pi) * v_exp(-(ctx.self ** 2)) * g,),
            saves={"self": None})

_erf_scalar = np.frompyfunc(math.erf, 1, 1)


def _erf(x: np.ndarray) -> np.ndarray:
    # math.erf in double precision, rounded once to the input's dtype.
    return np.asarray(_erf_scalar(_float64_copy(x)), np.float64).astype(x.dtype)


def expm1(input) -> Tensor:
    return _unary_float("expm1", _EXPM1, np.expm1, input)


def log2(input) -> Tensor:
    return _unary_float("log2", _LOG2, np.log2, input)


def log10(input) -> Tensor:
    return _unary_float("log10", _LOG10, np.log10, input)


def log1p(input) -> Tensor:
    return _unary_float("log1p", _LOG1P, np.log1p, input)


def sqrt(input) -> Tensor:
    return _unary_float("sqrt", _SQRT, np.sqrt, input)


def rsqrt(input) -> Tensor:
    return _unary_float("rsqrt", _RSQRT, lambda x: 1 / np.sqrt(x), input)


def reciprocal(input) -> Tensor:
    _check_tensor(input, "reciprocal")
    return _ops._reciprocal(input)


def sin(input) -> Tensor:
    return _unary_float("sin", _SIN, np.sin, input)


def cos(input) -> Tensor:
    return _unary_float("cos", _COS, np.cos, input)


def tan(input) -> Tensor:
    return _unary_float("tan", _TAN, np.tan, input)


def asin(input) -> Tensor:
    return _unary_float("asin", _ASIN, np.arcsin, input)


def acos(input) -> Tensor:
    return _unary_float("acos", _ACOS, np.arccos, input)


def atan(input) -> Tensor:
    return _unary_float("atan", _ATAN, np.arctan, input)


def _sinh_cosh_loops(name: str, x: np.ndarray, data, odd: bool):
    """`data`, sinh or cosh (`odd`: sinh) of `x` as the value rounded once (in data's dtype),
    made what torch's loop (cpu_kernel_vec) gives at each element; returned (written into
    `data` where it is an array).

    NOTE: torch's scalar op (the loop's tail, and loops over operands that do not step one
    element) is the C library's sinh / cosh (glibc's: an ulp off the rounded value at 10-25 %
    of inputs; fuzzer finding: tan(cosh(x)) near a pole of tan, 35 ulp off). Its vector op is
    SLEEF's, which rounds as the engine does nearly always, but overflows to +-inf from
    exp(|x|), above log(max) of the dtype (88.7228 in float32, 709.7827 in float64), where the
    true value and glibc's overflow only from 89.4159 (710.4758) (fuzzer finding: sinh(-89.26)
    of 40 float32 values is -inf in the first 32, finite in the last 8). Small float64 vector
    lanes are computed in long double (80-bit on x86; where it is double, numpy's loop).
    """
    fn = np.sinh if odd else np.cosh
    dtype = data.dtype
    if dtype.kind != "f":
        return data
    x = np.asarray(x)
    x = x if x.dtype == dtype else x.astype(dtype)
    with _errstate():     # (the C library raises the overflow flag silently, as torch)
        if type(data) is not np.ndarray:
            return np.asarray(_cpu.libm(name, fn, x)).reshape(np.shape(data))[()]
        if data.size < 2:    # (one element never takes the vector op)
            data[...] = _cpu.libm(name, fn, x).reshape(data.shape)
            return data
        vector = _cpu.vector_loop_mask(x)
        if not vector.all():
            data[~vector] = _cpu.libm(name, fn, x[~vector])
        if dtype == np.float64 and vector.any() and x.size <= _VIA_FLOAT64_MAX_NUMEL:
            # (numpy's float64 sinh / cosh is an ulp off the rounded value at ~5 % of inputs;
            # through the x87 extended type and rounded once, as SLEEF nearly always: 3 in 6400)
            data[vector] = fn(x[vector].astype(np.longdouble)).astype(np.float64)
        big = np.abs(x) > math.log(np.finfo(dtype).max)
    if big.any():
        big &= vector
        data[big] = np.copysign(np.inf, x[big]) if odd else np.inf
    return data


def sinh(input) -> Tensor:
    out = _unary_float("sinh", _SINH, np.sinh, input)
    _sinh_cosh_loops("sinh", input._data, out._data, odd=True)
    return out


def cosh(input) -> Tensor:
    out = _unary_float("cosh", _COSH, np.cosh, input)
    _sinh_cosh_loops("cosh", input._data, out._data, odd=False)
    return out


def erf(input) -> Tensor:
    return _unary_float("erf", _ERF, _erf, input)


def square(input) -> Tensor:
    """NOTE: torch computes square as pow(input, 2): node PowBackward0, and bool -> int64."""
    _check_tensor(input, "square")
    return _ops.pow(input, 2)


# ---------------------------------------------------------------------------------
# Elementwise unary ops that keep integer dtypes
# ---------------------------------------------------------------------------------

# NOTE: torch's abs backward is g * sgn(self): abs'(0) = 0, and abs'(nan) = 0 since sgn(nan) = 0.
_ABS = Rule("AbsBackward0", lambda ctx, g: (g * v_sign(ctx.self),), saves={"self": None})
# NOTE: sign, floor, ceil, round and trunc have gradient zeros_like(grad): exactly 0 even where
# the incoming gradient is inf or NaN.
_SIGN = Rule("SignBackward0", lambda ctx, g: (v_zeros(g),))
# NOTE: sgn's gradient for real tensors is torch's efficient zero tensor (sgn_backward), not
# zeros_like(grad) as sign's.
_SGN = Rule("SgnBackward0", lambda ctx, g: (_zerotensor.zeros_like(g),))
_FLOOR = Rule("FloorBackward0", lambda ctx, g: (v_zeros(g),))
_CEIL = Rule("CeilBackward0", lambda ctx, g: (v_zeros(g),))
_TRUNC = Rule("TruncBackward0", lambda ctx, g: (v_zeros(g),))
_ROUND = Rule("RoundBackward0", lambda ctx, g: (v_zeros(g),))
_ROUND_DECIMALS = Rule("RoundBackward1", lambda ctx, g: (v_zeros(g),))


def _sign(x: np.ndarray) -> np.ndarray:
    # NOTE: torch's sign(nan) is 0 (numpy's is nan).
    if x.dtype == np.bool_:
        return x.copy()
    s = np.sign(x)
    return np.where(np.isnan(s), np.zeros((), x.dtype), s) if x.dtype.kind == "f" else s


def _unary_keep(op: str, rule: Rule, fn, input, bool_kernel: str | None = None,
                integers_unchanged: bool = False) -> Tensor:
    """An op that keeps integer dtypes; torch has no kernel for bool where `bool_kernel` names one."""
    _check_tensor(input, op)
    dt = input.dtype
    if dt is _dtype.bool_ and bool_kernel:
        raise _not_implemented_for(bool_kernel, dt)
    if integers_unchanged and not dt.is_floating_point:
        return _plain(input._data.copy(), dt)
    with _errstate():
        data = fn(input._data)
    return record(rule, (input,), data, dt)


def abs(input) -> Tensor:  # noqa: A001  (torch.abs shadows the builtin too)
    return _unary_keep("abs", _ABS, np.abs, input, "abs_cpu")


def sign(input) -> Tensor:
    return _unary_keep("sign", _SIGN, _sign, input)


def floor(input) -> Tensor:
    return _unary_keep("floor", _FLOOR, np.floor, input, "floor_vml_cpu", integers_unchanged=True)


def ceil(input) -> Tensor:
    return _unary_keep("ceil", _CEIL, np.ceil, input, "ceil_vml_cpu", integers_unchanged=True)


def trunc(input) -> Tensor:
    return _unary_keep("trunc", _TRUNC, np.trunc, input, "trunc_vml_cpu", integers_unchanged=True)


def round(input, *, decimals: int | None = None) -> Tensor:  # noqa: A001
    """Round half to even; with `decimals`, to that many decimal places (negative: tens, ...).

    NOTE: torch records RoundBackward1 whenever `decimals` is given (even 0), so the
    default here is None (torch documents 0) to tell the two calls apart.
    """
    if decimals is None:
        return _unary_keep("round", _ROUND, np.rint, input, "round_vml_cpu", integers_unchanged=True)
    _check_tensor(input, "round")
    if not input.dtype.is_floating_point:
        raise _not_implemented_for("round_vml_cpu" if decimals == 0 else "round_cpu", input.dtype)
    # torch's round_decimals kernel: the power of ten in the input's dtype, then
    # nearbyint(x * 10^d) / 10^d, or nearbyint(x / 10^-d) * 10^-d for negative d.
    scale = np.asarray(10.0 ** builtins.abs(decimals), input.dtype.np)
    x = input._data
    with _errstate():
        data = np.rint(x * scale) / scale if decimals >= 0 else np.rint(x / scale) * scale
    return record(_ROUND_DECIMALS, (input,), data, input.dtype)



# ---------------------------------------------------------------------------------
# clamp / clip, clamp_min, clamp_max, nan_to_num
# ---------------------------------------------------------------------------------

def _clamp_scalar_backward(ctx, g):
    # NOTE: torch passes the gradient at the bounds (x >= min and x <= max), and none where
    # x is NaN; a select, so an inf or NaN gradient of a clamped element does not leak.
    x = v_data(ctx.self)
    keep = np.ones(x.shape, bool)
    if ctx.min is not None:
        keep &= x >= ctx.min
    if ctx.max is not None:
        keep &= x <= ctx.max
    return (v_where(keep, g, 0),)


def _clamp_tensor_backward(ctx, g):
    # NOTE: torch 2.13's clamp_backward_min_max: the input gets the gradient where
    # min <= x <= max (bounds included); min gets it where x < min < max, max where
    # x > max or max < min (max wins when the bounds cross); nobody gets it where x < min == max
    # or where any of the three is NaN.
    x = v_data(ctx.self)
    lo = v_data(ctx.min) if ctx.has_min else None
    hi = v_data(ctx.max) if ctx.has_max else None
    keep = np.ones(np.shape(x), bool)
    if lo is not None:
        keep = keep & (x >= lo)
    if hi is not None:
        keep = keep & (x <= hi)
    grads = [v_where(keep, g, 0) if ctx.needs[0] else None]
    if lo is not None:
        below = (x < lo) & (lo < hi) if hi is not None else x < lo
        grads.append(v_where(below, g, 0) if ctx.needs[1] else None)
    if hi is not None:
        above = (x > hi) | (hi < lo) if lo is not None else x > hi
        grads.append(v_where(above, g, 0) if ctx.needs[-1] else None)
    return tuple(grads)


_CLAMP_SCALAR = Rule("ClampBackward1", _clamp_scalar_backward, saves={"self": None})
_CLAMP_TENSOR = {
    (True, True): Rule("ClampBackward0", _clamp_tensor_backward, ("self", "min", "max"),
                       saves={"self": None, "min": None, "max": None}),
    (True, False): Rule("ClampBackward0", _clamp_tensor_backward, ("self", "min"),
                        saves={"self": None, "min": None}),
    (False, True): Rule("ClampBackward0", _clamp_tensor_backward, ("self", "max"),
                        saves={"self": None, "max": None}),
}


def clamp(input, min=None, max=None) -> Tensor:  # noqa: A002
    """Clamp into [min, max]; bounds are numbers or tensors (broadcast), either may be None.

    With min > max every element becomes max, as in torch.
    """
    _check_tensor(input, "clamp")
    bounds = (min, max)
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    if all(b is None or isinstance(b, Tensor) for b in bounds):
        return _clamp_tensor(input, min, max)
    lo, hi = _number_bounds(bounds)
    dt = _dtype.result_type([input], [b for b in (lo, hi) if b is not None])
    if dt is _dtype.bool_:   # NOTE: torch's clamp with one bound runs that side's kernel
        raise _not_implemented_for("clamp_min_scalar_cpu" if hi is None else
                                   "clamp_max_scalar_cpu" if lo is None else "clamp_scalar_cpu", dt)
    return _clamp_scalar(_CLAMP_SCALAR, input, lo, hi, dt)


def _number_bounds(bounds):
    """The bounds of clamp's number overload. NOTE: as torch's overload resolution
    (engine/_args.py), a 0-d tensor that does not require grad, next to a number, is read as a number."""
    return tuple(b.item() if isinstance(b, Tensor) else b for b in bounds)


def _check_clamp_in_place(input, bounds) -> None:
    """clamp_ (clamp_min_, clamp_max_) with number bounds: torch promotes an integral tensor
    with the numbers by hand, before anything else, and refuses a result it cannot write back.
    NOTE: this check names the tensor's dtype as a TypeMeta ("long int"; see check_cast)."""
    if all(b is None or isinstance(b, Tensor) for b in bounds) or input.dtype.is_floating_point:
        return
    numbers = [b for b in _number_bounds(bounds) if b is not None]
    if numbers:
        _dtype.check_cast(_dtype.result_type([input], numbers), input.dtype, out_as_typemeta=True)


def _clamp_meta(input, min=None, max=None) -> None:  # noqa: A002
    # NOTE: torch's clamp_ refuses two None bounds first (fuzzer finding: clamp_() of an expanded
    # tensor names the bounds, not the overlap)
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    _check_clamp_in_place(input, (min, max))


def _clamp_min_meta(input, min) -> None:  # noqa: A002
    _check_clamp_in_place(input, (min,))


def _clamp_max_meta(input, max) -> None:  # noqa: A002
    _check_clamp_in_place(input, (max,))


def _extremum(fn, a: np.ndarray, b: np.ndarray, loop: tuple | None = None, dt=None) -> np.ndarray:
    """fn(a, b), np.maximum or np.minimum of arrays in the result dtype, with torch's operand
    where a and b are zeros of opposite signs (a tie: which one is the result's sign).

    NOTE: torch's scalar loops (std::max, std::min) keep the FIRST operand on a tie; the vector
    loops of its maximum, minimum and clamp kernels (x86 max_ps / min_ps) the SECOND: maximum
    and minimum compute max(a, b), clamp with tensor bounds min(max(x, lo), hi), clamp_min /
    clamp_max with a tensor bound are maximum / minimum. Which elements take the vector loop
    depends on every operand's layout (`_cpu.vector_loop_mask` over the arrays `loop`, in
    torch's argument order, computing in `dt`; these kernels have no AVX512 build), and in an
    in-place op (x.clamp_min_(y)) on the written tensor's dtype. `loop` None: a kernel whose
    vector op keeps the first operand too (clamp, clamp_min and clamp_max with number bounds,
    whose vector ops are max(bound, x) / min(bound, x); relu and hardtanh are these).
    """
    data = fn(a, b)
    if data.dtype.kind != "f":
        return data
    tie = a == b
    if not np.count_nonzero(tie):          # (the common case: one comparison; ndarray.any is slower)
        return data
    tie &= a == 0
    if not np.count_nonzero(tie):
        return data
    if loop is not None:
        written = _ops.Written.tensor
        out = written._data if written is not None and written._data is loop[0] else None
        vector = _cpu.vector_loop_mask(*loop, dtype=dt.np, vector_bytes=_cpu.AVX2_VECTOR_BYTES, out=out)
        return np.where(tie, np.where(vector, b, a), data)
    return np.where(tie, a, data)


def _clamp_scalar(rule: Rule, input: Tensor, lo, hi, dt) -> Tensor:
    x = _as(input, dt)
    with _errstate():
        if lo is not None:
            x = _extremum(np.maximum, x, np.asarray(lo, dt.np))
        if hi is not None:
            x = _extremum(np.minimum, x, np.asarray(hi, dt.np))
    return record(rule, (input,), x, dt, min=lo, max=hi)


def _clamp_tensor(input: Tensor, lo, hi) -> Tensor:
    present = [t for t in (lo, hi) if t is not None]
    dt = _dtype.result_type([input, *present])
    if dt is _dtype.bool_ and len(present) == 2:   # (one tensor bound: maximum's or minimum's bool loop)
        raise _not_implemented_for("clamp_cpu", dt)
    shape = input._data.shape
    for t in present:
        shape = _broadcast_shape(shape, t._data.shape)
    x = _as(input, dt)
    loop = tuple(t._data for t in (input, *present))
    with _errstate():
        if lo is not None:
            x = _extremum(np.maximum, x, _as(lo, dt), loop, dt)
        if hi is not None:
            x = _extremum(np.minimum, x, _as(hi, dt), loop, dt)
    rule = _CLAMP_TENSOR[lo is not None, hi is not None]
    return record(rule, (input, *present), _laid_out(_full(x, shape), input, *present), dt,
                  has_min=lo is not None, has_max=hi is not None)


# NOTE: clamp_min / clamp_max pass the gradient at the bound (x >= min, x <= max); with a
# tensor bound, the bound gets it where x is strictly beyond it. NaN gets none.
_CLAMP_MIN_SCALAR = Rule("ClampMinBackward0", lambda ctx, g: (v_where(v_data(ctx.self) >= ctx.min, g, 0),),
                         saves={"self": None})
_CLAMP_MAX_SCALAR = Rule("ClampMaxBackward0", lambda ctx, g: (v_where(v_data(ctx.self) <= ctx.max, g, 0),),
                         saves={"self": None})
_CLAMP_MIN_TENSOR = Rule(
    "ClampMinBackward1",
    lambda ctx, g: (v_where(v_data(ctx.self) >= v_data(ctx.min), g, 0) if ctx.needs[0] else None,
                    v_where(v_data(ctx.self) < v_data(ctx.min), g, 0) if ctx.needs[1] else None),
    ("self", "min"), saves={"self": None, "min": None})
_CLAMP_MAX_TENSOR = Rule(
    "ClampMaxBackward1",
    lambda ctx, g: (v_where(v_data(ctx.self) <= v_data(ctx.max), g, 0) if ctx.needs[0] else None,
                    v_where(v_data(ctx.self) > v_data(ctx.max), g, 0) if ctx.needs[1] else None),
    ("self", "max"), saves={"self": None, "max": None})


def _clamp_one_side(op: str, input, bound, scalar_rule: Rule, tensor_rule: Rule) -> Tensor:
    _check_tensor(input, op)
    name = op.rpartition("_")[2]
    if isinstance(bound, Tensor):
        dt = _dtype.result_type([input, bound])
        shape = _broadcast_shape(input._data.shape, bound._data.shape)
        fn = np.maximum if name == "min" else np.minimum
        with _errstate():
            data = _full(_extremum(fn, _as(input, dt), _as(bound, dt), (input._data, bound._data), dt), shape)
        # (laid out as torch's TensorIterator lays out its result: campaign seed 24, flatten of
        # clamp_min of a transposed tensor is a copy in torch, UnsafeViewBackward0)
        return record(tensor_rule, (input, bound), _laid_out(data, input, bound), dt)
    if isinstance(bound, Tensor):   # a 0-d tensor taken as a number (engine/_args.py)
        bound = bound.item()
    dt = _dtype.result_type([input], [bound])
    if dt is _dtype.bool_:
        raise _not_implemented_for(f"{op}_scalar_cpu", dt)
    lo, hi = (bound, None) if name == "min" else (None, bound)
    return _clamp_scalar(scalar_rule, input, lo, hi, dt)


def clamp_min(input, min) -> Tensor:  # noqa: A002
    return _clamp_one_side("clamp_min", input, min, _CLAMP_MIN_SCALAR, _CLAMP_MIN_TENSOR)


def clamp_max(input, max) -> Tensor:  # noqa: A002
    return _clamp_one_side("clamp_max", input, max, _CLAMP_MAX_SCALAR, _CLAMP_MAX_TENSOR)


# NOTE: torch's nan_to_num backward is grad * isfinite(self): a multiplication, so an inf
# or NaN gradient arriving at a replaced element gives NaN, not 0.
_NAN_TO_NUM = Rule("NanToNumBackward0", lambda ctx, g: (v_times_mask(g, np.isfinite(v_data(ctx.self))),),
                   saves={"self": None})


def nan_to_num(input, nan: float | None = 0.0, posinf: float | None = None, neginf: float | None = None) -> Tensor:
    """Replace NaN, +inf and -inf (defaults: 0, the dtype's largest and lowest finite values)."""
    _check_tensor(input, "nan_to_num")
    # a 0-d tensor taken as a number (engine/_args.py)
    nan, posinf, neginf = (v.item() if isinstance(v, Tensor) else v for v in (nan, posinf, neginf))
    dt = input.dtype
    if not dt.is_floating_point:
        return _plain(input._data.copy(), dt)
    info = np.finfo(dt.np)
    x = input._data
    with _errstate():
        fill = [np.asarray(v if v is not None else d, np.float64).astype(dt.np)
                for v, d in ((nan, 0.0), (posinf, info.max), (neginf, info.min))]
        data = np.where(np.isnan(x), fill[0], np.where(x == np.inf, fill[1], np.where(x == -np.inf, fill[2], x)))
    return record(_NAN_TO_NUM, (input,), data, dt)


# ---------------------------------------------------------------------------------
# Elementwise binary ops
# ---------------------------------------------------------------------------------

def _not_implemented_backward(ctx, g):
    raise RuntimeError(f"derivative for aten::{ctx.not_implemented} is not implemented")


# torch's node for a derivative it does not implement: recording works, backward raises,
# naming the op recorded as `not_implemented` (an in-place call renames it: floor_divide_).
_NOT_IMPLEMENTED = Rule("torch::autograd::NotImplemented", _not_implemented_backward, ("self", "other"))


def _check_divisor(kernel: str, b: Tensor, dt):
    if dt is _dtype.bool_:
        raise _not_implemented_for(kernel, dt)
    if not dt.is_floating_point and np.any(b._data == 0):
        raise RuntimeError("ZeroDivisionError")


# NOTE: torch's div with a rounding mode has a zero gradient (zeros, even for an inf or NaN
# incoming gradient). It appears inside the gradients of remainder and fmod. Its formulas
# still name other (for both inputs) and self (for other's), so torch saves them: a second
# backward without retain_graph raises.
_DIV_ROUNDED = Rule("DivBackward2", lambda ctx, g: (v_zeros(g), v_zeros(g)), ("self", "other"),
                    saves={"other": None, "self": 1})


def _div_rounded(a, b, mode: str) -> Tensor:
    """torch.div(a, b, rounding_mode=mode) for floating tensors (used by rules)."""
    a, b, dt = _binary_operands("div", a, b)
    with _errstate():
        x, y = _as(a, dt), _as(b, dt)
        data = np.floor_divide(x, y) if mode == "floor" else np.trunc(x / y)
    return record(_DIV_ROUNDED, (a, b), _laid_out(data, a, b), dt)


def div_rounding(input, other, mode: str) -> Tensor:
    """torch.div(input, other, rounding_mode='trunc' | 'floor'): integer dtypes stay integral."""
    a, b, dt = _binary_operands("div", input, other)
    _check_divisor(f"div_{mode}_cpu", b, dt)
    with _errstate():
        x, y = _as(a, dt), _as(b, dt)
        if dt.is_floating_point:
            data = np.floor_divide(x, y) if mode == "floor" else np.trunc(x / y)
        else:
            data = np.floor_divide(x, y) if mode == "floor" else np.fix(x / y).astype(x.dtype)
    return record(_DIV_ROUNDED, (a, b), _laid_out(data, a, b), dt)


def floor_divide(input, other) -> Tensor:
    """Division rounded toward -inf (the `//` operator). torch has no derivative for it."""
    a, b, dt = _binary_operands("floor_divide", input, other)
    _check_divisor("div_floor_cpu", b, dt)
    with _errstate():
        # numpy's floor_divide is Python's (and torch's div_floor) algorithm: fmod, then adjust.
        data = np.floor_divide(_as(a, dt), _as(b, dt))
    return record(_NOT_IMPLEMENTED, (a, b), _laid_out(data, a, b), dt, not_implemented="floor_divide")


def _remainder(x: np.ndarray, y: np.ndarray, loop: tuple, dt) -> np.ndarray:
    """Python's modulo: the result has the divisor's sign.

    NOTE: torch computes fmod, then adds the divisor when the signs differ; so
    remainder(-5, inf) = inf and remainder(-0.0, 2) = -0.0 (numpy's gives +0.0).
    """
    if x.dtype.kind != "f":
        return np.remainder(x, y)
    mod = _fmod(x, y, loop, dt)
    return np.where((mod != 0) & ((y < 0) != (mod < 0)), mod + y, mod)


def _fmod(x: np.ndarray, y: np.ndarray, loop: tuple, dt) -> np.ndarray:
    """C's fmod, and NaN where torch's vector op takes an element whose quotient x / y overflows.

    NOTE: torch's vectorized fmod (remainder's too) gives NaN where x / y is inf for finite x
    and y, where C's fmod is exact (fmod(3e38, 0.5) is 0, of 1 by a subnormal 1e-40 is 8.4e-42);
    its scalar op (the tail, strided loops) is C's (campaign seed 14: remainder(1, x) of 18
    elements with a subnormal x, then rsqrt_: NaN in torch). Which elements take the vector
    loop: `_cpu.vector_loop_mask` over `loop` (the operands' arrays in torch's order; these
    kernels have no AVX512 build); seen on 200,000 random pairs per float dtype.
    """
    data = np.fmod(x, y)
    if x.dtype.kind != "f":
        return data
    overflow = np.isinf(x / y)
    if not np.count_nonzero(overflow):
        return data
    written = _ops.Written.tensor
    into = written._data if written is not None and written._data is loop[0] else None
    vector = _cpu.vector_loop_mask(*loop, dtype=dt.np, vector_bytes=_cpu.AVX2_VECTOR_BYTES, out=into)
    return np.where(overflow & vector, x.dtype.type(-np.nan), data)   # (x86's default NaN: sign bit set)


_REMAINDER_SCALAR = Rule("RemainderBackward0", lambda ctx, g: (g,))
_REMAINDER = Rule("RemainderBackward1",
                  lambda ctx, g: (g if ctx.needs[0] else None,
                                  _ops._neg_grad_times(v_div_rounded(ctx.self, ctx.other, "floor"), g) if ctx.needs[1] else None),
                  ("self", "other"), saves={"self": 1, "other": 1})


def remainder(input, other) -> Tensor:
    """Python's modulo (the `%` operator): the result takes the divisor's sign."""
    a, b, dt = _binary_operands("remainder", input, other)
    _check_divisor("remainder_cpu", b, dt)
    with _errstate():
        data = _remainder(_as(a, dt), _as(b, dt), (a._data, b._data), dt)
    if isinstance(input, Tensor) and isinstance(other, Tensor):
        return record(_REMAINDER, (a, b), _laid_out(data, a, b), dt)
    if isinstance(input, Tensor):
        return record(_REMAINDER_SCALAR, (a,), data, dt)
    return record(_NOT_IMPLEMENTED, (a, b), _laid_out(data, a, b), dt, not_implemented="remainder")



_FMOD_SCALAR = Rule("FmodBackward0", lambda ctx, g: (g,))
_FMOD = Rule("FmodBackward1",
             lambda ctx, g: (g if ctx.needs[0] else None,
                             _ops._neg_grad_times(v_div_rounded(ctx.self, ctx.other, "trunc"), g) if ctx.needs[1] else None),
             ("self", "other"), saves={"self": 1, "other": 1})


def fmod(input, other) -> Tensor:
    """C's fmod: the remainder of truncated division (takes the dividend's sign)."""
    a, b, dt = _binary_operands("fmod", input, other)
    _check_divisor("fmod_cpu", b, dt)
    with _errstate():
        data = _fmod(_as(a, dt), _as(b, dt), (a._data, b._data), dt)
    if isinstance(other, Tensor):
        return record(_FMOD, (a, b), _laid_out(data, a, b), dt)
    return record(_FMOD_SCALAR, (a,), data, dt)


def _extremum_backward(ctx, g, loses_self):
    # NOTE: torch splits the gradient in half at ties (x == y, including inf == inf), and
    # gives it whole to both sides where either is NaN (neither x < y nor x > y holds).
    x, y = v_data(ctx.self), v_data(ctx.other)
    if isinstance(g, Tensor):
        # NOTE: torch's formula where(self == other, grad / 2, grad).masked_fill_(...) for each
        # side, other's first (sorted names): the order of the nodes under create_graph.
        other = v_masked_fill(v_where(x == y, g / 2, g), loses_self(y, x)) if ctx.needs[1] else None
        return (v_masked_fill(v_where(x == y, g / 2, g), loses_self(x, y)) if ctx.needs[0] else None, other)
    shared = v_where(x == y, g / 2, g)
    return (v_masked_fill(shared, loses_self(x, y)) if ctx.needs[0] else None,
            v_masked_fill(shared, loses_self(y, x)) if ctx.needs[1] else None)


_MAXIMUM = Rule("MaximumBackward0", lambda ctx, g: _extremum_backward(ctx, g, np.less),
                ("self", "other"), saves={"self": None, "other": None})
_MINIMUM = Rule("MinimumBackward0", lambda ctx, g: _extremum_backward(ctx, g, np.greater),
                ("self", "other"), saves={"self": None, "other": None})


def _tensor_binary(op: str, input, other, float_result: bool = False):
    _check_tensor(input, op)
    _check_tensor(other, op, "other", 2)
    return _binary_operands(op, input, other, float_result=float_result)


def maximum(input, other) -> Tensor:
    a, b, dt = _tensor_binary("maximum", input, other)
    data = _extremum(np.maximum, _as(a, dt), _as(b, dt), (a._data, b._data), dt)
    return record(_MAXIMUM, (a, b), _laid_out(data, a, b), dt)


def minimum(input, other) -> Tensor:
    a, b, dt = _tensor_binary("minimum", input, other)
    data = _extremum(np.minimum, _as(a, dt), _as(b, dt), (a._data, b._data), dt)
    return record(_MINIMUM, (a, b), _laid_out(data, a, b), dt)


def _atan2_backward(ctx, g):
    # NOTE: torch zeroes 1 / (x^2 + y^2) where it is infinite, so the gradient at (0, 0) (and
    # where x^2 + y^2 underflows) is 0 (-0.0 for other), not NaN.
    x, y = ctx.self, ctx.other
    if ctx.needs[1] and v_data(x).dtype == np.bool_:   # NOTE: torch's formula negates self (-self)
        raise RuntimeError(_ops._BOOL_UNARY_MESSAGES["neg"])
    denominator = x * x + y * y
    recip = v_where(v_data(denominator) == 0, 0, 1 / denominator)
    return (g * y * recip if ctx.needs[0] else None,
            g * -x * recip if ctx.needs[1] else None)


_ATAN2 = Rule("Atan2Backward0", _atan2_backward, ("self", "other"), saves={"self": None, "other": None})


def atan2(input, other) -> Tensor:
    a, b, dt = _tensor_binary("atan2", input, other, float_result=True)
    dt = _float_dtype(dt)
    with _errstate():
        y, x = _as(a, dt), _as(b, dt)
        # Rounded as torch's kernel rounds (see _ops._VIA_FLOAT64).
        data = np.arctan2(y, x) if dt.np != np.float32 else \
            np.arctan2(_float64_copy(y), _float64_copy(x)).astype(np.float32)
    return record(_ATAN2, (a, b), _laid_out(data, a, b), dt)


def _xlogy(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    # NOTE: torch's xlogy: NaN if y is NaN, else 0 where x == 0 (even for y <= 0), else x * log(y),
    # its float32 log rounded once from float64 as (nearly always) glibc's logf in torch's scalar
    # kernel (numpy's own float32 log is an ulp off for 1 in 10 values, 0.77 among them).
    with _errstate():
        return np.where(np.isnan(y), np.nan, np.where(x == 0, 0, x * _rounded(np.log, y))).astype(np.result_type(x, y))


def _xlogy_self_grad(g, x, y):
    # NOTE: torch's xlogy(grad, other), zeroed where self == 0 and other <= 0 (where
    # x * log(y) is defined as 0 however y approaches).
    return v_masked_fill(v_xlogy(g, y), (v_data(x) == 0) & (v_data(y) <= 0))


def _xlogy_backward(ctx, g):
    # NOTE: torch's generated backward computes other's gradient before self's (sorted names),
    # the order their nodes are made in under create_graph (see _ops._neg_grad_times).
    other = g * ctx.self / ctx.other if ctx.needs[1] else None
    return (_xlogy_self_grad(g, ctx.self, ctx.other) if ctx.needs[0] else None, other)


_XLOGY = Rule("XlogyBackward0", _xlogy_backward, ("self", "other"), saves={"self": None, "other": None})
_XLOGY_NUMBER_SELF = Rule("XlogyBackward1", lambda ctx, g: (g * ctx.self_number / ctx.other,),
                          ("other",), saves={"other": None})


def _xlogy_number_other_backward(ctx, g):
    # NOTE: with a positive number `other` torch skips the zeroing at self == 0.
    grad = v_xlogy(g, ctx.other_number)
    return (grad if ctx.other_number > 0 else v_masked_fill(grad, v_data(ctx.self) == 0),)


_XLOGY_NUMBER_OTHER = Rule("XlogyBackward2", _xlogy_number_other_backward, saves={"self": None})


def xlogy(input, other) -> Tensor:
    """x * log(y), defined as 0 where x == 0 (unless y is NaN)."""
    a, b, dt = _binary_operands("xlogy", input, other, float_result=True)
    dt = _float_dtype(dt)
    data = _xlogy(_as(a, dt), _as(b, dt))
    if isinstance(input, Tensor) and isinstance(other, Tensor):
        return record(_XLOGY, (a, b), _laid_out(data, a, b), dt)
    if isinstance(input, Tensor):
        return record(_XLOGY_NUMBER_OTHER, (a,), data, dt, other_number=other)
    return record(_XLOGY_NUMBER_SELF, (b,), data, dt, self_number=input)


# ---------------------------------------------------------------------------------
# Ternary ops: lerp, addcmul, addcdiv, where
# ---------------------------------------------------------------------------------

def v_number_first(op: str, number, t):
    """`number - t` or `number / t` as torch's C++ derivative formulas compute them
    (at::empty_like(t).fill_(number).sub_(t)): in t's dtype, so a bool t refuses the subtraction
    as two bool tensors (lerp's `1 - weight`) and an integral t refuses a true division's
    floating result (addcdiv's `value / tensor2`). A floating t gives what Python's operators give."""
    dt = t.dtype if isinstance(t, Tensor) else _dtype.from_numpy(t.dtype)
    if op == "-":
        if dt is _dtype.bool_:
            _ops._check_bool_sub(True, True)   # (the filled tensor is bool too)
        return _ops.sub(_filled_like(t, number), t) if isinstance(t, Tensor) else number - t
    if not dt.is_floating_point:
        _dtype.check_cast(_dtype.default_float, dt)
    # NOTE: as a tensor (under create_graph) this is torch's DivBackward0 of the filled tensor,
    # one rounding: Python's `number / t` is reciprocal(t) * number, two (and other nodes).
    return _ops.div(_filled_like(t, number), t) if isinstance(t, Tensor) else number / t


def _filled_like(t: Tensor, number) -> Tensor:
    """at::empty_like(t).fill_(number): t's dtype and shape, no gradient."""
    return _make_tensor(np.full(t._data.shape, number, t._data.dtype), t.dtype, False)


_LERP_SCALAR = Rule("LerpBackward0",
                    lambda ctx, g: (g * (1 - ctx.weight) if ctx.needs[0] else None,
                                    g * ctx.weight if ctx.needs[1] else None),
                    ("self", "end"))


def _lerp_tensor_backward(ctx, g):
    # NOTE: torch's generated backward functions compute the gradients in the sorted order of
    # the argument names (end, self, weight), which under create_graph is the order their
    # nodes are created in (see _ops._neg_grad_times).
    end = g * ctx.weight if ctx.needs[1] else None
    return (g * v_number_first("-", 1, ctx.weight) if ctx.needs[0] else None, end,
            g * _lerp_span(ctx.end, ctx.self) if ctx.needs[2] else None)


_LERP_TENSOR = Rule("LerpBackward1", _lerp_tensor_backward,
                    ("self", "end", "weight"), saves={"self": 2, "end": 2, "weight": None})


def _lerp_span(end, start):
    """end - start in the weight's gradient, as torch's formula computes it: two bool tensors
    (lerp of bool ends with a 0-d float weight) refuse the subtraction (campaign seed 13:
    numpy's TypeError for its boolean subtract)."""
    if (end.dtype is _dtype.bool_) if isinstance(end, Tensor) else end.dtype == np.bool_:
        _ops._check_bool_sub(True, True)
    return end - start


def _lerp(start, end, weight, loop: tuple, dt):
    # NOTE: torch's formula, switching at |weight| = 0.5 so both ends are exact, is one fused
    # multiply-add (its lerp_vec: fmadd(small ? w : w - 1, end - start, small ? start : end); the
    # scalar op is contracted the same way): lerp(0, 3e38, -1) is -3e38 in float32, not
    # 3e38 - 3e38 * 2 = -inf (fuzzer finding).
    with _errstate():
        small = np.abs(weight) < 0.5
        out = _ops._fma(np.where(small, weight, weight - 1), end - start, np.where(small, start, end))
        zero = out == 0
        if not np.count_nonzero(zero & ~small):
            return out
        # NOTE: the scalar op (the loop's tail; `_cpu.vector_loop_mask` over the tensors
        # `loop`, in torch's order; lerp has no AVX512 build) computes the large-weight side as
        # end - (end - start) * (1 - w), whose product has the other sign of zero: lerp(0, -0, 1)
        # is -0.0 in the vector lanes, 0.0 in the tail (campaign seed 46: log2_ of it, inf
        # gradients of the other sign).
        scalar = _ops._fma(-(end - start), 1 - weight, end)
        written = _ops.Written.tensor
        into = written._data if written is not None and written._data is loop[0] else None
        vector = _cpu.vector_loop_mask(*loop, dtype=dt.np, vector_bytes=_cpu.AVX2_VECTOR_BYTES, out=into)
        return np.where(zero & ~small & ~vector, scalar, out)


def _lerp_meta(input, end, weight) -> None:
    """lerp's dtype checks, which torch makes before anything else (lerp_: before broadcasting)."""
    dt = input.dtype
    if end.dtype is not dt:
        raise RuntimeError(f"expected dtype {dt.cpp_name} for `end` but got dtype {end.dtype.cpp_name}")
    if isinstance(weight, Tensor) and weight.ndim and weight.dtype is not dt:
        raise RuntimeError(
            f"expected dtype {dt.cpp_name} for `weight` but got dtype {weight.dtype.cpp_name}")


def lerp(input, end, weight) -> Tensor:
    """input + weight * (end - input); weight a number or a tensor; all three broadcast."""
    _lerp_meta(input, end, weight)
    tensor_weight = isinstance(weight, Tensor)
    # NOTE: a 0-d weight takes part in type promotion: lerp(int64, int64, tensor(0.5)) is float32.
    dt = _dtype.result_type([input, end, weight]) if tensor_weight else input.dtype
    _check_output_cast(input, dt)
    if not dt.is_floating_point:
        raise _not_implemented_for("lerp_kernel_tensor" if tensor_weight else "lerp_kernel_scalar", dt)
    shape = _broadcast_shape(input._data.shape, end._data.shape)
    if tensor_weight:
        shape = _broadcast_shape(shape, weight._data.shape)
        data = _lerp(_as(input, dt), _as(end, dt), _as(weight, dt), (input._data, end._data, weight._data), dt)
        return record(_LERP_TENSOR, (input, end, weight), _laid_out(_full(data, shape), input, end, weight), dt)
    w = np.asarray(weight, dt.np)
    data = _lerp(input._data, end._data, w, (input._data, end._data), dt)
    return record(_LERP_SCALAR, (input, end), _laid_out(_full(data, shape), input, end), dt, weight=float(weight))


def _check_three(op: str, input, tensor1, tensor2):
    for position, (name, x) in enumerate((("input", input), ("tensor1", tensor1), ("tensor2", tensor2)), 1):
        _check_tensor(x, op, name, position)
    shape = _broadcast_shape(_broadcast_shape(input._data.shape, tensor1._data.shape), tensor2._data.shape)
    dt = _dtype.result_type([input, tensor1, tensor2])
    _check_output_cast(input, dt)
    return dt, shape


_ADDCMUL = Rule("AddcmulBackward0",
                lambda ctx, g: (g if ctx.needs[0] else None,
                                g * (ctx.tensor2 * ctx.value) if ctx.needs[1] else None,
                                g * (ctx.tensor1 * ctx.value) if ctx.needs[2] else None),
                ("self", "tensor1", "tensor2"), saves={"tensor2": 1, "tensor1": 2})


def addcmul(input, tensor1, tensor2, *, value=1) -> Tensor:
    """input + value * tensor1 * tensor2."""
    dt, shape = _check_three("addcmul", input, tensor1, tensor2)
    if dt is _dtype.bool_:
        raise _not_implemented_for("addcmul_cpu_out", dt)
    # NOTE: torch converts `value` to the result dtype first: 0.5 becomes 0 for integers.
    v = np.asarray(value, np.float64).astype(dt.np)
    with _errstate():
        if dt.is_floating_point:
            # NOTE: torch's kernel (self + value * t1 * t2, scalar and vector ops alike) is
            # compiled to one fused multiply-add, fma(value * t1, t2, self) (campaign seed 50:
            # 3e38 + -1.176 * 3e38 is -5.3e37 in float32, not -inf; most values 1 ulp apart).
            data = _ops._fma(v * _as(tensor1, dt), _as(tensor2, dt), _as(input, dt))
        else:
            data = _as(input, dt) + v * _as(tensor1, dt) * _as(tensor2, dt)
    return record(_ADDCMUL, (input, tensor1, tensor2), _laid_out(_full(data, shape), input, tensor1, tensor2), dt, value=v.item())


def _addcdiv_tensor2_grad(ctx, g):
    """torch's -grad * (value * tensor1 / (tensor2 * tensor2)), its nodes made in the order GCC's
    right-to-left operands make them: tensor2 * tensor2 before value * tensor1 (see
    _ops._neg_grad_times)."""
    square = ctx.tensor2 * ctx.tensor2
    return _ops._neg_grad_times(ctx.value * ctx.tensor1 / square, g)


# NOTE: torch saves tensor2 when tensor1 or tensor2 needs a gradient; the engine's saves
# can name one trigger, so tensor2 is saved whenever the node is recorded.
_ADDCDIV = Rule("AddcdivBackward0",
                lambda ctx, g: (g if ctx.needs[0] else None,
                                g * v_number_first("/", ctx.value, ctx.tensor2) if ctx.needs[1] else None,
                                _addcdiv_tensor2_grad(ctx, g) if ctx.needs[2] else None),
                ("self", "tensor1", "tensor2"), saves={"tensor2": None, "tensor1": 2})

_ADDCDIV_INTEGER_MESSAGE = (
    "Integer division with addcdiv is no longer supported, and in a future  release addcdiv will perform "
    "a true division of tensor1 and tensor2. The historic addcdiv behavior can be implemented as "
    "(input + value * torch.trunc(tensor1 / tensor2)).to(input.dtype) for integer inputs and as "
    "(input + value * tensor1 / tensor2) for float inputs. The future addcdiv behavior is just the latter "
    "implementation: (input + value * tensor1 / tensor2), for all dtypes.")


def _addcdiv_meta(input, tensor1, tensor2, *, value=1) -> None:
    """addcdiv refuses integral tensor1 and tensor2 before it broadcasts them (addcdiv_ too)."""
    if (isinstance(tensor1, Tensor) and isinstance(tensor2, Tensor) and not tensor1.dtype.is_floating_point
            and not tensor2.dtype.is_floating_point):
        raise RuntimeError(_ADDCDIV_INTEGER_MESSAGE)


def addcdiv(input, tensor1, tensor2, *, value=1) -> Tensor:
    """input + value * tensor1 / tensor2 (integer tensor1 and tensor2 are refused, as in torch)."""
    _addcdiv_meta(input, tensor1, tensor2)
    dt, shape = _check_three("addcdiv", input, tensor1, tensor2)
    v = np.asarray(value, np.float64).astype(dt.np)
    with _errstate():
        data = _as(input, dt) + v * _as(tensor1, dt) / _as(tensor2, dt)
    return record(_ADDCDIV, (input, tensor1, tensor2), _laid_out(_full(data, shape), input, tensor1, tensor2), dt, value=v.item())


def where(condition, input, other) -> Tensor:
    """`input` where the boolean `condition` holds, else `other` (tensors or numbers, broadcast).

    The gradient is a select: an unused branch gets exactly 0 even where the incoming
    gradient is NaN. (A NaN produced inside the unused branch's own backward, as in
    where(x > 0, x.sqrt(), 0) at x < 0, still reaches x: 0 / (2 * nan) is NaN, as in torch.)
    """
    if condition.dtype is not _dtype.bool_:
        raise RuntimeError("where expected condition to be a boolean tensor, but got a tensor with dtype "
                           f"{condition.dtype.scalar_name}")
    # NOTE: torch broadcasts condition, input and other in this order (its error names them so).
    shape = condition._data.shape
    for operand in (input, other):
        if isinstance(operand, Tensor):
            shape = _broadcast_shape(shape, operand._data.shape)
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        dt = _dtype.result_type([], [input, other])
        input, other = _scalar_tensor(input, dt), _scalar_tensor(other, dt)
    return _ops._where(condition, input, other)


# ---------------------------------------------------------------------------------
# Comparisons, logical and bitwise ops: no gradient
# ---------------------------------------------------------------------------------

def _compare(op: str, fn, input, other) -> Tensor:
    # Compared in the promoted dtype, as torch: an int64 tensor against a float is compared in float32.
    a, b, dt = _binary_operands(op, input, other, comparison=True)
    return _plain(_laid_out(fn(_as(a, dt), _as(b, dt)), a, b), _dtype.bool_)


def eq(input, other) -> Tensor:
    return _compare("eq", np.equal, input, other)


def ne(input, other) -> Tensor:
    return _compare("ne", np.not_equal, input, other)


def lt(input, other) -> Tensor:
    return _compare("lt", np.less, input, other)


def le(input, other) -> Tensor:
    return _compare("le", np.less_equal, input, other)


def gt(input, other) -> Tensor:
    return _compare("gt", np.greater, input, other)


def ge(input, other) -> Tensor:
    return _compare("ge", np.greater_equal, input, other)


def _logical(op: str, fn, input, other) -> Tensor:
    _check_tensor(input, op)
    _check_tensor(other, op, "other", 2)
    _broadcast_shape(input._data.shape, other._data.shape)
    return _plain(_laid_out(fn(input._data, other._data), input, other), _dtype.bool_)


def logical_and(input, other) -> Tensor:
    return _logical("logical_and", np.logical_and, input, other)


def logical_or(input, other) -> Tensor:
    return _logical("logical_or", np.logical_or, input, other)


def logical_xor(input, other) -> Tensor:
    return _logical("logical_xor", np.logical_xor, input, other)


def logical_not(input) -> Tensor:
    _check_tensor(input, "logical_not")
    return _plain(np.logical_not(input._data), _dtype.bool_)


def _classify(op: str, test, integral_answer: bool, input) -> Tensor:
    """isnan / isinf / isfinite: a bool mask; integer and bool tensors hold only finite numbers."""
    _check_tensor(input, op)
    if input.dtype.is_floating_point:
        return _plain(test(input._data), _dtype.bool_)
    return _plain(np.full(input.shape, integral_answer), _dtype.bool_)


def isnan(input) -> Tensor:
    return _classify("isnan", np.isnan, False, input)


def isinf(input) -> Tensor:
    return _classify("isinf", np.isinf, False, input)


def isfinite(input) -> Tensor:
    return _classify("isfinite", np.isfinite, True, input)


def _bitwise(op: str, fn, input, other) -> Tensor:
    a, b, dt = _binary_operands(op, input, other)
    if dt.is_floating_point:
        raise _not_implemented_for(f"{op}_cpu", dt)
    return _plain(_laid_out(fn(_as(a, dt), _as(b, dt)), a, b), dt)


def bitwise_and(input, other) -> Tensor:
    """Bitwise and (the `&` operator): logical and for bool tensors."""
    return _bitwise("bitwise_and", np.bitwise_and, input, other)


def bitwise_or(input, other) -> Tensor:
    """Bitwise or (the `|` operator): logical or for bool tensors."""
    return _bitwise("bitwise_or", np.bitwise_or, input, other)


def bitwise_xor(input, other) -> Tensor:
    """Bitwise exclusive or (the `^` operator): logical xor for bool tensors."""
    return _bitwise("bitwise_xor", np.bitwise_xor, input, other)


def bitwise_not(input) -> Tensor:
    """Bitwise not (the `~` operator): logical not for bool tensors, -x - 1 for integers."""
    _check_tensor(input, "bitwise_not")
    if input.dtype.is_floating_point:
        raise _not_implemented_for("bitwise_not_cpu", input.dtype)
    return _plain(np.invert(input._data), input.dtype)
