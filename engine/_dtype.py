"""dtypes and torch's type promotion.

The engine supports four dtypes: float32 (the default), float64, int64 and bool.
Promotion follows torch: dimensioned tensors outrank 0-d tensors, which outrank
Python scalars; a lower rank only changes the result when it belongs to a higher
category (bool < integer < floating point).
"""
from __future__ import annotations

import numpy as np


class dtype:
    """A tensor element type; prints as torch does (`torch.float32`)."""

    __slots__ = ("name", "np", "category", "is_floating_point", "itemsize", "scalar_name", "cpp_name")

    def __init__(self, name: str, np_dtype, category: int, scalar_name: str, cpp_name: str):
        self.name = name
        self.np = np.dtype(np_dtype)
        self.category = category            # 0 bool, 1 integer, 2 floating point
        self.is_floating_point = category == 2
        self.itemsize = self.np.itemsize
        self.scalar_name = scalar_name      # how torch's messages name it: "Float", "Long"
        self.cpp_name = cpp_name            # how torch's C++ checks name it: "float", "long int"

    def __repr__(self) -> str:
        return f"torch.{self.name}"

    def __reduce__(self):
        return (_by_name, (self.name,))


bool_ = dtype("bool", np.bool_, 0, "Bool", "bool")
int64 = dtype("int64", np.int64, 1, "Long", "long int")
float32 = dtype("float32", np.float32, 2, "Float", "float")
float64 = dtype("float64", np.float64, 2, "Double", "double")

DTYPES = (bool_, int64, float32, float64)
_BY_NAME = {d.name: d for d in DTYPES}
_BY_NP = {d.np: d for d in DTYPES}
_ORDER = {bool_: 0, int64: 1, float32: 2, float64: 3}
_BY_ORDER = {v: k for k, v in _ORDER.items()}

default_float = float32


def _by_name(name: str) -> dtype:
    return _BY_NAME[name]


def from_numpy(np_dtype) -> dtype:
    """The engine dtype of a numpy dtype, or NotImplementedError naming it."""
    try:
        return _BY_NP[np.dtype(np_dtype)]
    except KeyError:
        raise NotImplementedError(
            f"engine supports the dtypes float32, float64, int64 and bool, not numpy {np.dtype(np_dtype)}; "
            "convert the array with .astype() first") from None


def promote(a: dtype | None, b: dtype | None) -> dtype | None:
    """torch.promote_types for the supported dtypes."""
    if a is None:
        return b
    if b is None or a is b:
        return a
    return _BY_ORDER[max(_ORDER[a], _ORDER[b])]


def scalar_dtype(value) -> dtype:
    """The dtype torch gives a Python number when it takes part in an op."""
    if isinstance(value, (bool, np.bool_)):
        return bool_
    if isinstance(value, (int, np.integer)):
        return int64
    if isinstance(value, (float, np.floating)):
        return default_float
    raise TypeError(f"expected a Tensor or a Python number, got {type(value).__name__}")


def check_cast(result: dtype, out: dtype, *, out_as_typemeta: bool = False) -> None:
    """torch's refusal to write a result into a tensor of a lower category (float into int64).

    NOTE: TensorIterator names the output's dtype as a ScalarType ("Long"); the checks of ops
    that promote by hand (clamp_ with number bounds) name it as a TypeMeta, which prints the
    C++ type ("long int"): `out_as_typemeta`.
    """
    if result.category > out.category:
        name = out.cpp_name if out_as_typemeta else out.scalar_name
        raise RuntimeError(f"result type {result.scalar_name} can't be cast to the desired output type {name}")


def not_implemented_for(kernel: str, dt: dtype) -> NotImplementedError:
    """torch's error of a kernel that has no loop for a dtype: '"addmm_impl_cpu_" not implemented for 'Bool''."""
    return NotImplementedError(f'"{kernel}" not implemented for \'{dt.scalar_name}\'')


def wrapped_number_dtype(value) -> dtype:
    """The dtype of a Python number torch takes as a tensor (scalar_to_tensor): a float is a double."""
    dt = scalar_dtype(value)
    return float64 if dt is default_float else dt


def result_type(tensors, scalars=()) -> dtype:
    """torch.result_type over tensors (anything with .dtype and .ndim) and Python scalars."""
    dimensioned = zero_dim = None
    for t in tensors:
        if t.ndim:
            dimensioned = promote(dimensioned, t.dtype)
        else:
            zero_dim = promote(zero_dim, t.dtype)
    weak = None
    for s in scalars:
        weak = promote(weak, scalar_dtype(s))
    result = dimensioned
    for candidate in (zero_dim, weak):
        if candidate is not None and (result is None or candidate.category > result.category):
            result = candidate
    return result
