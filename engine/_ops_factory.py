"""Ops of the `engine/_ops_factory.py` section of the op table (see engine/optable.py).

Factories build new leaf tensors from sizes and fill rules; they record no
graph (`requires_grad=True` makes a leaf, as in torch). Random factories draw
from one module-level numpy Generator that `manual_seed` re-seeds: the same
seed gives the same numbers in the engine (not the numbers torch draws).
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from . import _dtype, _random
from ._ops import _errstate
from ._tensor import Tensor, _require_float_for_grad

from ._random import generator as _generator

_INT64_MAX = 2 ** 63 - 1


def manual_seed(seed) -> np.random.Generator:
    """Seed the engine's generator, as torch.manual_seed; returns the (numpy) generator."""
    seed = int(seed)
    if not -2 ** 63 <= seed < 2 ** 64:
        raise ValueError("Overflow when unpacking long long")
    # NOTE: torch reads a negative seed as its unsigned 64-bit value (-1 -> 2**64 - 1).
    _random.seed(seed % 2 ** 64)
    return _generator


# ---------------------------------------------------------------------------------
# Argument parsing shared by the factories
# ---------------------------------------------------------------------------------

def _is_int(x) -> bool:
    """An int for a size or count: a Python int or an integral 0-d tensor, never a bool."""
    if isinstance(x, Tensor):
        return x.ndim == 0 and x.dtype.category == 1
    return isinstance(x, numbers.Integral) and not isinstance(x, (bool, np.bool_))


def _type_name(x) -> str:
    return "Tensor" if isinstance(x, Tensor) else type(x).__name__


def _size(op: str, size: tuple, varargs: bool = True) -> tuple:
    """A shape from sizes given as varargs (`zeros(2, 3)`) or one sequence (`zeros((2, 3))`)."""
    if varargs and not size:
        raise TypeError(f'{op}() missing 1 required positional arguments: "size"')
    if varargs and len(size) == 1 and not _is_int(size[0]):
        size = size[0]
        if not isinstance(size, (tuple, list)):
            raise TypeError(f"{op}(): argument 'size' (position 1) must be tuple of ints, not {_type_name(size)}")
        for i, n in enumerate(size):
            if isinstance(n, (bool, np.bool_)):
                # NOTE: torch refuses a bool inside a size sequence but takes one as a vararg size
                # (zeros(2, True) is zeros(2, 1)); its messages count positions from 0 here, from 1 below.
                raise TypeError(f"{op}(): argument 'size' (position 1) must be tuple of ints, "
                                f"but found element of type bool at pos {i}")
    elif not varargs and not isinstance(size, (tuple, list)):
        raise TypeError(f"{op}(): argument 'size' (position 1) must be tuple of ints, not {_type_name(size)}")
    for i, n in enumerate(size):
        if isinstance(n, (tuple, list)):
            raise TypeError(f"{op}() takes 1 positional argument but {len(size)} were given")
        if not (_is_int(n) or isinstance(n, (bool, np.bool_))):
            raise TypeError(f"{op}(): argument 'size' failed to unpack the object at pos {i + 1} with error "
                            f"\"type must be tuple of ints,but got {_type_name(n)}\"")
    return tuple(int(n) for n in size)


def _check_nonnegative(shape: tuple, zeros_message: str | None = None):
    for n in shape:
        if n < 0:
            if zeros_message:
                raise RuntimeError(zeros_message)
            raise RuntimeError(f"Trying to create tensor with negative dimension {n}: {list(shape)}")


def _check_dtype(op: str, dtype):
    if dtype is not None and not isinstance(dtype, _dtype.dtype):
        raise TypeError(f"{op}(): argument 'dtype' must be torch.dtype, not {type(dtype).__name__}")


def _leaf(data: np.ndarray, dt, requires_grad: bool) -> Tensor:
    if requires_grad:
        _require_float_for_grad(dt)
    if data.dtype != dt.np:
        data = data.astype(dt.np)
    return Tensor._make(data, dt, bool(requires_grad))


def _number(x):
    """A Python number from a number or a 0-d tensor (which torch's parser takes for a number)."""
    return x.item() if isinstance(x, Tensor) else x


def _filled(shape: tuple, value, dt) -> np.ndarray:
    if dt is _dtype.int64 and isinstance(value, numbers.Integral) and not -2 ** 63 <= value <= _INT64_MAX:
        raise OverflowError("int too big to convert")
    with _errstate():
        return np.full(shape, value, dtype=dt.np)


# ---------------------------------------------------------------------------------
# Constant factories
# ---------------------------------------------------------------------------------
# Their arguments are checked by torch's signatures (optable.SIGNATURES, engine/_args.py);
# the options the engine cannot honour (another device, pinned memory) raise NotImplementedError.

def _cpu_only(op: str, device, pin_memory) -> None:
    if device not in (None, "cpu") or pin_memory:
        option = f"device={device!r}" if device not in (None, "cpu") else "pin_memory=True"
        raise NotImplementedError(f"engine: {op}({option}): the engine has only the CPU device")


def _shape(sizes: tuple, size) -> tuple:
    """The shape given as varargs (`zeros(2, 3)`), one sequence (`zeros((2, 3))`) or `size=`."""
    if size is not None:
        sizes = (size,)
    if len(sizes) == 1 and not _is_int(sizes[0]):
        sizes = sizes[0]
    return tuple(int(n) for n in sizes)


def zeros(*sizes, size=None, dtype=None, layout=None, device=None, pin_memory=False,
          requires_grad: bool = False) -> Tensor:
    _cpu_only("zeros", device, pin_memory)
    shape = _shape(sizes, size)
    # NOTE: torch.zeros has its own negative-size message; ones, full, rand, ... share another.
    _check_nonnegative(shape, "zeros: Dimension size must be non-negative.")
    dt = dtype or _dtype.default_float
    return _leaf(np.zeros(shape, dt.np), dt, requires_grad)


def ones(*sizes, size=None, dtype=None, layout=None, device=None, pin_memory=False,
         requires_grad: bool = False) -> Tensor:
    _cpu_only("ones", device, pin_memory)
    shape = _shape(sizes, size)
    _check_nonnegative(shape)
    dt = dtype or _dtype.default_float
    return _leaf(np.ones(shape, dt.np), dt, requires_grad)


def full(size, fill_value, *, dtype=None, layout=None, device=None, pin_memory=False,
         requires_grad: bool = False) -> Tensor:
    _cpu_only("full", device, pin_memory)
    shape = _shape((), size)
    value = _number(fill_value)
    _check_nonnegative(shape)
    dt = dtype or _dtype.scalar_dtype(value)    # bool -> bool, int -> int64, float -> float32
    return _leaf(_filled(shape, value, dt), dt, requires_grad)


def _like(op: str, input, dtype, device, pin_memory, requires_grad, fill) -> Tensor:
    _cpu_only(op, device, pin_memory)
    dt = dtype or input.dtype
    return _leaf(_filled(input.shape, fill, dt), dt, requires_grad)


def zeros_like(input, *, memory_format=None, dtype=None, layout=None, device=None, pin_memory=False,
               requires_grad: bool = False) -> Tensor:
    return _like("zeros_like", input, dtype, device, pin_memory, requires_grad, 0)


def ones_like(input, *, memory_format=None, dtype=None, layout=None, device=None, pin_memory=False,
              requires_grad: bool = False) -> Tensor:
    return _like("ones_like", input, dtype, device, pin_memory, requires_grad, 1)


def full_like(input, fill_value, *, memory_format=None, dtype=None, layout=None, device=None, pin_memory=False,
              requires_grad: bool = False) -> Tensor:
    # NOTE: unlike full, full_like keeps the input's dtype whatever the fill value (2.7 -> 2 for int64).
    return _like("full_like", input, dtype, device, pin_memory, requires_grad, _number(fill_value))


def new_zeros(self, *sizes, size=None, dtype=None, layout=None, device=None, pin_memory=False,
              requires_grad: bool = False) -> Tensor:
    _cpu_only("new_zeros", device, pin_memory)
    shape = _shape(sizes, size)
    _check_nonnegative(shape)
    dt = dtype or self.dtype
    return _leaf(np.zeros(shape, dt.np), dt, requires_grad)


def new_ones(self, *sizes, size=None, dtype=None, layout=None, device=None, pin_memory=False,
             requires_grad: bool = False) -> Tensor:
    _cpu_only("new_ones", device, pin_memory)
    shape = _shape(sizes, size)
    _check_nonnegative(shape)
    dt = dtype or self.dtype
    return _leaf(np.ones(shape, dt.np), dt, requires_grad)


def new_full(self, size, fill_value, *, dtype=None, layout=None, device=None, pin_memory=False,
             requires_grad: bool = False) -> Tensor:
    _cpu_only("new_full", device, pin_memory)
    shape = _shape((), size)
    value = _number(fill_value)
    _check_nonnegative(shape)
    dt = dtype or self.dtype          # NOTE: the tensor's dtype, not the fill value's
    return _leaf(_filled(shape, value, dt), dt, requires_grad)


def eye(n, m=None, *, dtype=None, layout=None, device=None, pin_memory=False, requires_grad: bool = False) -> Tensor:
    _cpu_only("eye", device, pin_memory)
    n = int(n)
    m = n if m is None else int(m)
    if n < 0:
        raise RuntimeError(f"n must be greater or equal to 0, got {n}")
    if m < 0:
        raise RuntimeError(f"m must be greater or equal to 0, got {m}")
    dt = dtype or _dtype.default_float
    return _leaf(np.eye(n, m, dtype=dt.np), dt, requires_grad)


# ---------------------------------------------------------------------------------
# Ranges
# ---------------------------------------------------------------------------------

def _cpp_number(x) -> str:
    """A number printed as C++ streams print a double (`0`, `1.5`, `inf`, `1e+20`)."""
    return format(float(x), "g") if isinstance(x, float) else str(x)


def arange(start=0, end=None, step=1, *, dtype=None, layout=None, device=None, pin_memory=False,
           requires_grad: bool = False) -> Tensor:
    """torch.arange: [start, end) by step; int64 for integer arguments, else the default float."""
    _cpu_only("arange", device, pin_memory)
    if end is None:   # arange(end)
        start, end = 0, start
    start, end, step = (_number(x) for x in (start, end, step))
    is_float = any(isinstance(x, float) for x in (start, end, step))
    dt = dtype or (_dtype.default_float if is_float else _dtype.int64)
    if dt is _dtype.bool_:
        raise _dtype.not_implemented_for("arange_cpu", _dtype.bool_)
    lo, hi, by = float(start), float(end), float(step)
    if not (by > 0 or by < 0):
        raise RuntimeError("step must be nonzero")
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise RuntimeError(f"unsupported range: {_cpp_number(start)} -> {_cpp_number(end)}")
    if not ((by > 0 and hi >= lo) or (by < 0 and hi <= lo)):
        raise RuntimeError("upper bound and lower bound inconsistent with step sign")
    if dt is _dtype.int64:
        # NOTE: an int64 arange truncates its arguments to integers after checking them; a step
        # that truncates to 0 raises ValueError (a zero step raises RuntimeError above).
        lo, hi, by = int(start), int(end), int(step)
        if by == 0:
            raise ValueError("step must be nonzero")
        sign = 1 if by > 0 else -1
        count = max((hi - lo + by - sign) // by, 0)
        data = lo + by * np.arange(count, dtype=np.int64)
    else:
        # NOTE: torch's size rule: ceil((end - start) / step) computed in double.
        size = math.ceil((hi - lo) / by)
        if not 0 <= size <= _INT64_MAX:
            raise RuntimeError("invalid size, possible overflow?")
        # NOTE: torch computes start + i * step in double; its vectorized CPU kernel restarts
        # from start + step * i0 every vector width, so values may differ from these by an ulp.
        data = lo + by * np.arange(size, dtype=np.float64)
    return _leaf(data, dt, requires_grad)


def linspace(start, end, steps, *, dtype=None, layout=None, device=None, pin_memory=False,
             requires_grad: bool = False) -> Tensor:
    """torch.linspace: `steps` evenly spaced values from start to end."""
    _cpu_only("linspace", device, pin_memory)
    for name, x in (("start", start), ("end", end)):
        if isinstance(x, Tensor) and x.ndim:
            raise RuntimeError(f"linspace only supports 0-dimensional start and end tensors, "
                               f"but got {name} with {x.ndim} dimension(s).")
    start, end = _number(start), _number(end)
    steps = int(steps)
    if steps < 0:
        raise RuntimeError("number of steps must be non-negative")
    dt = dtype or _dtype.default_float
    if dt is _dtype.bool_:
        raise _dtype.not_implemented_for("linspace_cpu", _dtype.bool_)
    return _leaf(_linspace_values(start, end, steps, dt), dt, requires_grad)


def _linspace_values(start, end, steps: int, dt) -> np.ndarray:
    # NOTE: torch's CPU kernel, in the dtype's arithmetic (double for integers): the first half
    # counts up from start, the second half down from end, so both ends are exact. Its
    # `start + step * i` compiles to a fused multiply-add (one rounding), emulated here by
    # computing in a wider type and rounding once.
    if dt is _dtype.int64:
        # NOTE: integer linspace truncates these doubles; in about 1 in 30 random calls torch's
        # kernel lands on the other side of an integer (an off-by-one not reproduced yet).
        first, last, wide = int(start), int(end), np.float64
        step = (float(last) - float(first)) / (steps - 1) if steps > 1 else 0.0
    else:
        first, last = dt.np.type(start), dt.np.type(end)
        wide = np.float64 if dt is _dtype.float32 else np.longdouble
        with _errstate():
            step = (last - first) / dt.np.type(steps - 1) if steps > 1 else dt.np.type(0)
    if steps == 1:
        return np.full(1, first, dtype=dt.np)
    index = np.arange(steps)
    with _errstate():
        up = wide(first) + wide(step) * index.astype(wide)
        down = wide(last) - wide(step) * (steps - index - 1).astype(wide)
    values = np.where(index < steps // 2, up, down)
    return np.trunc(values).astype(np.int64) if dt is _dtype.int64 else values.astype(dt.np)


# ---------------------------------------------------------------------------------
# Random factories
# ---------------------------------------------------------------------------------

def _random_dtype(op: str, dtype, kernel: str):
    _check_dtype(op, dtype)
    dt = dtype or _dtype.default_float
    if not dt.is_floating_point:
        raise _dtype.not_implemented_for(kernel, dt)
    return dt


def rand(*size, dtype=None, requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1) from the engine's generator."""
    shape = _size("rand", size)
    _check_nonnegative(shape)
    dt = _random_dtype("rand", dtype, "check_uniform_bounds")
    return _leaf(_generator.random(shape, dtype=dt.np), dt, requires_grad)


def randn(*size, dtype=None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples from the engine's generator."""
    shape = _size("randn", size)
    _check_nonnegative(shape)
    dt = _random_dtype("randn", dtype, "normal_kernel_cpu")
    return _leaf(_generator.standard_normal(shape, dtype=dt.np), dt, requires_grad)


_RANDINT_SIGNATURES = "".join(
    f" * ({low}int high, tuple of ints size, *, {gen}Tensor out = None, torch.dtype dtype = None, torch.layout "
    "layout = None, torch.device device = None, bool pin_memory = False, bool requires_grad = False)\n"
    for low in ("", "int low, ") for gen in ("torch.Generator generator, ", ""))


def randint(*args, low=None, high=None, size=None, dtype=None, requires_grad: bool = False) -> Tensor:
    """Integers uniform in [low, high) (low defaults to 0): randint(high, size) or randint(low, high, size)."""
    positional = list(args)
    if size is None and positional:
        size = positional.pop()
    if high is None and positional:
        high = positional.pop()
    with_low = bool(positional) or low is not None      # numbers the arguments as torch does
    if low is None:
        low = positional.pop() if positional else 0
    if size is None or high is None or positional:
        got = ", ".join(type(x).__name__ for x in args)
        raise TypeError(f"randint() received an invalid combination of arguments - got ({got}), "
                        f"but expected one of:\n{_RANDINT_SIGNATURES}")
    for name, value, position in (("low", low, 1), ("high", high, 2 if with_low else 1)):
        if not _is_int(value):
            raise TypeError(f"randint(): argument '{name}' (position {position}) must be int, not {_type_name(value)}")
    if not isinstance(size, (tuple, list)):
        raise TypeError(f"randint(): argument 'size' (position {3 if with_low else 2}) must be tuple of ints, "
                        f"not {_type_name(size)}")
    shape = _size("randint", size, varargs=False)
    _check_nonnegative(shape)
    _check_dtype("randint", dtype)
    low, high = int(low), int(high)
    if low >= high:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
    dt = dtype or _dtype.int64
    if dt is _dtype.bool_:
        if low < 0:
            raise RuntimeError("from is out of bounds for bool")
        if high - 1 > 1:
            raise RuntimeError("to - 1 is out of bounds for bool")
    return _leaf(_generator.integers(low, high, size=shape, dtype=np.int64), dt, requires_grad)
