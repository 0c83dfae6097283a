"""Ops of the `engine/_ops_shape.py` section of the op table (see engine/optable.py).

Each public function here is one op: it computes with numpy and calls
`record(rule, inputs, result, dtype, **saved_values)`; its `Rule` is defined
next to it. See `engine/_ops.py` for the conventions rules follow.

None of these nodes saves a tensor (torch's view and copy formulas keep only
sizes and arguments), so their graphs stay usable after a backward.

Memory layout: torch picks some node names from strides (`reshape` of a
non-contiguous tensor copies and shows UnsafeViewBackward0; `contiguous`
copies). Engine tensors hold numpy arrays whose views (transpose, permute,
slicing, broadcasting, diagonal) have the same strides as torch's views, so
these ops read numpy's layout to choose as torch does. Ops that copy in torch
(flip, roll, repeat, tril, cat, stack) return fresh C-ordered arrays.

Results that alias their input's array (numpy views): reshape/view/flatten/
unflatten (when no copy is needed), squeeze, unsqueeze, transpose, swapaxes,
permute, t, T, mT, H, mH, adjoint, expand, expand_as, broadcast_to,
diagonal, narrow, split, split_with_sizes, chunk, unbind, and
contiguous (the input itself when it is C-contiguous).
"""
from __future__ import annotations

import numbers
import operator
import warnings

import numpy as np

from . import _args, _cpu, _dtype, optable
from ._autograd import _GradMode
from ._ops import (_CLONE, _T, _TRANSPOSE, _UNSQUEEZE, _VIEW, Rule, _diagonal_view,
                   _reshape_as_torch, _viewable, Written, _check_tensor, _expand, _reshape, _reshape_backward, _transpose, _wrap_dims, record, v_data,
                   v_reshape)
from ._ops import sum as _sum
from ._ops_inplace import _OVERLAP_MESSAGE, aliased_write, has_internal_overlap
from ._tensor import Tensor, _wrap_dim

# ---------------------------------------------------------------------------------
# Argument helpers
# ---------------------------------------------------------------------------------


def _contiguous_array(data: np.ndarray) -> np.ndarray:
    """`data` in row-major order (copied if it is not): the layout of the result of a torch
    kernel that writes a new contiguous tensor whatever its inputs' layout (cat, stack, repeat,
    roll, masked_fill, cumsum, softmax, layer_norm), where numpy's result keeps a transposed
    input's order. NOTE: the layout decides whether torch's reshape of the result records
    ViewBackward0, ReshapeAliasBackward0 or a copy, and whether view refuses it (fuzzer
    finding: reshape of the softmax of a transposed input). (np.ascontiguousarray would make
    a 0-d array 1-d.)"""
    return np.asarray(data, order="C")


def _preserved_copy(data: np.ndarray, layout: np.ndarray | None = None) -> np.ndarray:
    """A copy of `data` laid out as torch's empty_like(`layout`, preserve_format) (layout: data
    itself by default): layout's strides where it is dense, else dense strides in its order of
    dims (infer_dense_strides, which leaves a stride-0 dim where it stands).

    NOTE: numpy's order "K" keeps the order of a's strides but not torch's choice for a
    broadcast dim (fuzzer finding: the flip of an expanded tensor is contiguous in torch, so its
    flatten is a view, ViewBackward0; the engine's copy kept the expanded dim innermost and
    flatten copied, UnsafeViewBackward0)."""
    layout = data if layout is None else layout
    if layout.ndim < 2:
        return np.array(data, copy=True)
    order = _cpu.iterator_order(layout.shape, [[abs(s) // layout.itemsize for s in layout.strides]])
    out = np.empty([layout.shape[d] for d in order], data.dtype).transpose(np.argsort(order))
    out[...] = data
    return out


def _ints(op: str, arg: str, values, position: int = 1) -> tuple:
    """A tuple of Python ints, with torch's TypeError for anything else."""
    out = []
    for i, v in enumerate(values):
        # NOTE: torch refuses a bool as the first element only (x.permute(1, True) is (1, 1)).
        if (isinstance(v, bool) and i == 0) or not isinstance(v, (numbers.Integral, Tensor)):
            raise TypeError(f"{op}(): argument '{arg}' (position {position}) must be tuple of ints, "
                            f"but found element of type {type(v).__name__} at pos {i}")
        out.append(operator.index(v))
    return tuple(out)


def _int_args(op: str, arg: str, args: tuple, keyword) -> tuple:
    """Sizes given as varargs (`x.view(2, 3)`), one sequence (`x.view((2, 3))`) or by keyword."""
    if keyword is not None:
        if args:
            raise TypeError(f"{op}() got multiple values for argument '{arg}'")
        args = (keyword,)
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    return _ints(op, arg, args)


def _int_or_ints(op: str, arg: str, value, position: int) -> tuple:
    if isinstance(value, (numbers.Integral, Tensor)) and not isinstance(value, bool):
        return (operator.index(value),)
    if not isinstance(value, (tuple, list)):
        raise TypeError(f"{op}(): argument '{arg}' (position {position}) must be tuple of ints, "
                        f"not {type(value).__name__}")
    return _ints(op, arg, value, position)


def _infer_size(shape: tuple, numel: int) -> tuple:
    """torch's infer_size: resolve one -1 in `shape` for `numel` elements, with its errors."""
    infer, known = None, 1
    for i, n in enumerate(shape):
        if n == -1:
            if infer is not None:
                raise RuntimeError("only one dimension can be inferred")
            infer = i
        elif n >= 0:
            known *= n
        else:
            raise RuntimeError(f"invalid shape dimension {n} at index {i} of shape {list(shape)}")
    if numel == known or (infer is not None and known > 0 and numel % known == 0):
        if infer is None:
            return shape
        if known == 0:
            raise RuntimeError(
                f"cannot reshape tensor of 0 elements into shape {list(shape)} because the unspecified "
                "dimension size -1 can be any value and is ambiguous")
        return shape[:infer] + (numel // known,) + shape[infer + 1:]
    raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")



# ---------------------------------------------------------------------------------
# Value helpers for rules: numpy arrays in a plain backward, tensors with create_graph
# ---------------------------------------------------------------------------------


def v_sum(x, dims: tuple):
    return _sum(x, dims) if isinstance(x, Tensor) else np.sum(x, axis=dims)


def v_permute(x, dims: tuple):
    return permute(x, dims) if isinstance(x, Tensor) else np.transpose(x, dims)


def v_flip(x, dims: tuple):
    if isinstance(x, Tensor):
        return flip(x, dims)
    return np.flip(x, dims) if np.ndim(x) else x   # flipping a 0-d value changes nothing


def v_roll(x, shifts: tuple, dims: tuple):
    if isinstance(x, Tensor):
        return roll(x, shifts, dims)
    return np.roll(x, shifts, dims or None)


def v_tril(x, diagonal: int, upper: bool):
    if isinstance(x, Tensor):
        return (triu if upper else tril)(x, diagonal)
    return (np.triu if upper else np.tril)(x, diagonal)


def v_take(x, key: tuple):
    return _take(x, key) if isinstance(x, Tensor) else x[key]


def v_embed(x, shape: tuple, key: tuple):
    if isinstance(x, Tensor):
        return _embed(x, shape, key)
    out = np.zeros(shape, x.dtype)
    out[key] = x
    return out


def v_diagonal(x, offset: int, dim1: int, dim2: int):
    return diagonal(x, offset, dim1, dim2) if isinstance(x, Tensor) else np.diagonal(x, offset, dim1, dim2)


def v_diagonal_backward(x, shape: tuple, offset: int, dim1: int, dim2: int):
    if isinstance(x, Tensor):
        return _diagonal_backward(x, shape, offset, dim1, dim2)
    return _embed_diagonal(x, shape, offset, dim1, dim2)


# ---------------------------------------------------------------------------------
# Reshaping: reshape, view, flatten, unflatten, squeeze, unsqueeze
# ---------------------------------------------------------------------------------

_SQUEEZE = Rule("SqueezeBackward0", _reshape_backward)
_SQUEEZE_ONE = Rule("SqueezeBackward1", _reshape_backward)
_SQUEEZE_DIMS = Rule("SqueezeBackward2", _reshape_backward)


def reshape(input, *shape_args, shape=None) -> Tensor:
    _check_tensor(input, "reshape")
    sizes = _infer_size(_int_args("reshape", "shape", shape_args, shape), input._data.size)
    return _reshape_as_torch(input, sizes)


def view(input, *size_args, size=None) -> Tensor:
    _check_tensor(input, "view")
    if len(size_args) == 1 and isinstance(size_args[0], _dtype.dtype):
        raise NotImplementedError("view(dtype) is not supported by the engine")
    sizes = _infer_size(_int_args("view", "size", size_args, size), input._data.size)
    if not _viewable(input._data, sizes):
        raise RuntimeError(
            "view size is not compatible with input tensor's size and stride (at least one dimension "
            "spans across two contiguous subspaces). Use .reshape(...) instead.")
    return _reshape(input, sizes, _VIEW)


def flatten(input, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    _check_tensor(input, "flatten")
    shape = input._data.shape
    start, end = _wrap_dim(start_dim, len(shape)), _wrap_dim(end_dim, len(shape))
    if not shape:
        return _reshape_as_torch(input, (1,))
    if start > end:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    if start == end:
        return input   # NOTE: torch returns the input itself (no node) when nothing is merged.
    merged = int(np.prod(shape[start:end + 1], dtype=np.int64))
    return _reshape_as_torch(input, shape[:start] + (merged,) + shape[end + 1:])


def _split_method(native):
    """Tensor.split(split_size, dim=0): in torch a Python method, with its own parameter names,
    calling the native split (an int size) or split_with_sizes (anything else)."""
    def split(self, split_size, dim=0):
        # NOTE: torch tries int(split_size) on a tensor, keeping the tensor where that raises
        # ValueError (more than one element).
        if isinstance(split_size, Tensor) and split_size._data.size == 1:
            split_size = int(split_size)
        if isinstance(split_size, int):
            _SPLIT_ARGS.check((self, split_size, dim), {})
            return _split_by_size(self, split_size, dim)
        _SPLIT_WITH_SIZES_ARGS.check((self, split_size, dim), {})
        return split_with_sizes(self, split_size, dim)
    split.__qualname__ = "Tensor.split"
    split.__doc__, split.__wrapped__ = native.__doc__, native
    return split


def _unflatten_method(native):
    """Tensor.unflatten(dim, sizes): in torch a Python method that refuses empty sizes itself
    before its native method parses the arguments."""
    def unflatten(self, dim, sizes):
        if not sizes:   # NOTE: as torch, a tensor of several sizes raises here (its truth value)
            raise RuntimeError("unflatten: sizes must be non-empty")
        return native(self, dim, sizes)
    unflatten.__qualname__ = "Tensor.unflatten"
    unflatten.__doc__, unflatten.__wrapped__ = native.__doc__, native
    return unflatten


def unflatten(input, dim: int, sizes) -> Tensor:
    _check_tensor(input, "unflatten")
    shape = input._data.shape
    d = _wrap_dim(dim, len(shape))
    sizes = _int_or_ints("unflatten", "sizes", sizes, 2)
    if not sizes:
        raise RuntimeError("unflatten: sizes must be non-empty")
    if not shape:
        # NOTE: torch wraps the dim of a 0-d tensor like any dim, then fails inside and
        # re-raises as RuntimeError; its message goes on with a C++ backtrace (addresses).
        raise RuntimeError("unflatten got an unexpected error:\nDimension specified as 0 but tensor has no dimensions")
    try:
        inferred = _infer_size(sizes, shape[d])
    except RuntimeError:
        if sizes.count(-1) > 1 or any(n < -1 for n in sizes):
            raise
        raise RuntimeError(
            f"unflatten: Provided sizes {list(sizes)} don't multiply up to the size of dim {d} "
            f"({shape[d]}) in the input tensor") from None
    return _reshape(input, shape[:d] + inferred + shape[d + 1:], _VIEW)


def squeeze(input, dim=None) -> Tensor:
    _check_tensor(input, "squeeze")
    shape = input._data.shape
    if dim is None:
        rule, dims = _SQUEEZE, tuple(i for i, n in enumerate(shape) if n == 1)
    elif isinstance(dim, (tuple, list)):
        rule, dims = _SQUEEZE_DIMS, _wrap_dims(_ints("squeeze", "dim", dim), len(shape))
    else:
        rule, dims = _SQUEEZE_ONE, (_wrap_dim(operator.index(dim), len(shape)),)
    kept = tuple(n for i, n in enumerate(shape) if not (i in dims and n == 1))
    return _reshape(input, kept, rule)


def unsqueeze(input, dim: int) -> Tensor:
    _check_tensor(input, "unsqueeze")
    shape = input._data.shape
    d = _wrap_dim(dim, len(shape) + 1)
    return _reshape(input, shape[:d] + (1,) + shape[d:], _UNSQUEEZE)


# ---------------------------------------------------------------------------------
# Dimension orders: transpose, swapaxes, permute, t, T, mT, H, mH, adjoint
# ---------------------------------------------------------------------------------

_PERMUTE = Rule("PermuteBackward0", lambda ctx, g: (v_permute(g, tuple(np.argsort(ctx.dims))),))
# A 0-d or 1-d "transpose" is the identity, and so is its gradient.
_TRANSPOSE_LOW_DIM = Rule("TransposeBackward0", lambda ctx, g: (g,))
_T_LOW_DIM = Rule("TBackward0", lambda ctx, g: (g,))


def transpose(input, dim0: int, dim1: int) -> Tensor:
    _check_tensor(input, "transpose")
    n = input._data.ndim
    d0, d1 = _wrap_dim(dim0, n), _wrap_dim(dim1, n)
    if n == 0:
        return record(_TRANSPOSE_LOW_DIM, (input,), input._data.view(), input.dtype)
    return _transpose(input, d0, d1, _TRANSPOSE)


def swapaxes(input, axis0: int, axis1: int) -> Tensor:
    return transpose(input, axis0, axis1)


def permute(input, *dims_args, dims=None) -> Tensor:
    _check_tensor(input, "permute")
    order = _int_args("permute", "dims", dims_args, dims)
    n = input._data.ndim
    if len(order) != n:
        raise RuntimeError(
            "permute(sparse_coo): number of dimensions in the tensor input does not match the length "
            f"of the desired ordering of dimensions i.e. input.dim() = {n} is not equal to len(dims) = {len(order)}")
    wrapped = tuple(_wrap_dim(d, n) for d in order)
    if len(set(wrapped)) != n:
        raise RuntimeError("permute(): duplicate dims are not allowed.")
    return record(_PERMUTE, (input,), np.transpose(input._data, wrapped), input.dtype, dims=wrapped)


def t(input) -> Tensor:
    _check_tensor(input, "t")
    n = input._data.ndim
    if n > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {n}D")
    if n < 2:
        return record(_T_LOW_DIM, (input,), input._data.view(), input.dtype)
    return _transpose(input, 0, 1, _T)


_warned = set()


def _warn_once(message: str):
    """NOTE: torch raises these deprecation warnings once per process (TORCH_WARN_ONCE)."""
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, UserWarning, stacklevel=3)


def T(input) -> Tensor:
    """`x.T`: the dims reversed (a permute, node PermuteBackward0, also for matrices)."""
    n = input._data.ndim
    if n == 0:
        _warn_once("Tensor.T is deprecated on 0-D tensors. This function is the identity in these cases.")
    elif n != 2:
        _warn_once(
            "The use of `x.T` on tensors of dimension other than 2 to reverse their shape is deprecated "
            "and it will throw an error in a future release. Consider `x.mT` to transpose batches of "
            "matrices or `x.permute(*torch.arange(x.ndim - 1, -1, -1))` to reverse the dimensions of a tensor.")
    return permute(input, tuple(range(n - 1, -1, -1)))


def _matrix_transpose(input, what: str) -> Tensor:
    n = input._data.ndim
    if n < 2:
        raise RuntimeError(f"{what} is only supported on matrices or batches of matrices. Got {n}-D tensor.")
    return _transpose(input, n - 2, n - 1, _TRANSPOSE)


def mT(input) -> Tensor:
    if input._data.ndim == 0:
        # NOTE: torch returns a 0-d tensor itself (no node) after a one-time warning.
        _warn_once("Tensor.mT is deprecated on 0-D tensors. This function is the identity in these cases.")
        return input
    return _matrix_transpose(input, "tensor.mT")


def mH(input) -> Tensor:
    """The conjugate transpose of the last two dims; engine tensors are real, so mT."""
    if input._data.ndim == 0:
        # NOTE: torch returns a 0-d tensor itself (no node) after a one-time warning.
        _warn_once("Tensor.mH is deprecated on 0-D tensors. Consider using x.conj().")
        return input
    return _matrix_transpose(input, "tensor.mH")


def adjoint(input) -> Tensor:
    _check_tensor(input, "adjoint")
    if input._data.ndim == 0:
        # NOTE: torch returns a 0-d tensor itself (no node) after a one-time warning.
        _warn_once("adjoint() is deprecated on 0-D tensors. Consider using x.conj().")
        return input
    return _matrix_transpose(input, "tensor.adjoint()")


def H(input) -> Tensor:
    n = input._data.ndim
    if n == 0:
        # NOTE: torch returns the 0-d tensor itself (no node) after a one-time warning.
        _warn_once("Tensor.H is deprecated on 0-D tensors. Consider using x.conj().")
        return input
    if n != 2:
        hint = " For batches of matrices, consider using tensor.mH" if n > 2 else ""
        raise RuntimeError(f"tensor.H is only supported on matrices (2-D tensors). Got {n}-D tensor.{hint}")
    return _transpose(input, 0, 1, _TRANSPOSE)


# ---------------------------------------------------------------------------------
# Broadcasting and repetition: expand, expand_as, broadcast_to, repeat
# ---------------------------------------------------------------------------------

def _type_name(input: Tensor) -> str:
    # NOTE: torch's legacy type names (torch.FloatTensor), except bool, which reads CPUBoolType there.
    return "CPUBoolType" if input.dtype is _dtype.bool_ else f"torch.{input.dtype.scalar_name}Tensor"


def _expand_shape(input: Tensor, sizes: tuple) -> tuple:
    """torch's inferExpandGeometry: the target shape, -1 keeping a dim, with torch's errors."""
    shape = input._data.shape
    if len(sizes) < len(shape):
        raise RuntimeError(
            f"expand({_type_name(input)}{{{list(shape)}}}, size={list(sizes)}): the number "
            f"of sizes provided ({len(sizes)}) must be greater or equal to the number of dimensions in the tensor "
            f"({len(shape)})")
    lead = len(sizes) - len(shape)
    out = []
    # NOTE: a 0-d tensor skips the per-dim checks (torch's fast path for it)
    for i in reversed(range(len(sizes)) if shape else ()):   # torch checks from the last dim backwards
        target = sizes[i]
        if i < lead:
            if target == -1:
                raise RuntimeError(f"The expanded size of the tensor ({target}) isn't allowed in a leading, "
                                   f"non-existing dimension {i}")
            out.append(target)
            continue
        size = shape[i - lead]
        if target == -1:
            target = size
        elif target != size and size != 1:
            raise RuntimeError(
                f"The expanded size of the tensor ({target}) must match the existing size ({size}) at "
                f"non-singleton dimension {i}.  Target sizes: {list(sizes)}.  Tensor sizes: {list(shape)}")
        out.append(target)
    out = tuple(reversed(out)) if shape else tuple(sizes)
    if any(n < 0 for n in out):
        # NOTE: torch multiplies the sizes as unsigned numbers: a negative one overflows (unless
        # a zero comes first, which the engine cannot represent).
        if 0 in out:
            raise NotImplementedError(f"engine: expand to a size with a negative dimension: {list(out)}")
        raise RuntimeError("numel: integer multiplication overflow")
    return out


def expand(input, *size_args, size=None) -> Tensor:
    _check_tensor(input, "expand")
    return _expand(input, _expand_shape(input, _int_args("expand", "size", size_args, size)))


def expand_as(input, other) -> Tensor:
    _check_tensor(input, "expand_as")
    _check_tensor(other, "expand_as", "other", 1)
    return expand(input, other._data.shape)


def broadcast_to(input, size) -> Tensor:
    _check_tensor(input, "broadcast_to")
    return expand(input, size)


def _repeat_backward(ctx, g):
    """torch's repeat_backward: zeros if a repeat is 0; else the new leading dims summed, then g
    reshaped to (repeat, size) at each repeated dim (size alone where the repeat is 1) and the
    repeats summed. NOTE: that reshape infers a repeat of -1 (allowed forward on an empty
    input), so its errors are torch's (fuzzer finding: repeat(-1) of an empty tensor)."""
    repeats, shape = ctx.repeats, ctx.self_shape
    if 0 in repeats:   # zeros of the input's shape, a constant
        zeros = np.zeros(shape, v_data(g).dtype)
        return (Tensor._make(zeros, g.dtype) if isinstance(g, Tensor) else zeros,)
    lead = len(repeats) - len(shape)
    if lead:
        g = v_sum(g, tuple(range(lead)))
    grad_size, sum_dims = [], []
    for repeat, size in zip(repeats[lead:], shape):
        if repeat != 1:
            grad_size.append(repeat)
            sum_dims.append(len(grad_size) - 1)
        grad_size.append(size)
    if sum_dims:
        g = v_sum(v_reshape(g, _infer_size(tuple(grad_size), int(np.prod(np.shape(g), dtype=np.int64)))),
                  tuple(sum_dims))
    return (g,)


_REPEAT = Rule("RepeatBackward0", _repeat_backward)


def repeat(input, *repeats_args, repeats=None) -> Tensor:
    _check_tensor(input, "repeat")
    reps = _int_args("repeat", "repeats", repeats_args, repeats)
    shape = input._data.shape
    if len(reps) < len(shape):
        raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number of dimensions of tensor")
    padded = (1,) * (len(reps) - len(shape)) + shape
    target = tuple(r * n for r, n in zip(reps, padded))
    if any(n < 0 for n in target):
        raise RuntimeError(f"Trying to create tensor with negative dimension {min(target)}: {list(target)}")
    # (np.tile of an empty array may return a view of it: repeat always makes a new tensor; campaign
    # seed 12: neg_ of a repeat of an empty narrow of a leaf was refused as on a view of the leaf.)
    data = _contiguous_array(np.tile(input._data.reshape(padded), reps)) if input._data.size else \
        np.empty(target, input._data.dtype)
    return record(_REPEAT, (input,), data, input.dtype, repeats=reps, padded_shape=padded,
                  self_shape=shape)


# ---------------------------------------------------------------------------------
# Reordering and masking copies: flip, roll, tril, triu
# ---------------------------------------------------------------------------------

_FLIP = Rule("FlipBackward0", lambda ctx, g: (v_flip(g, ctx.dims),))
_ROLL = Rule("RollBackward0", lambda ctx, g: (v_roll(g, tuple(-s for s in ctx.shifts), ctx.dims),))
_TRIL = Rule("TrilBackward0", lambda ctx, g: (v_tril(g, ctx.diagonal, False),))
_TRIU = Rule("TriuBackward0", lambda ctx, g: (v_tril(g, ctx.diagonal, True),))


def flip(input, *dims_args, dims=None) -> Tensor:
    _check_tensor(input, "flip")
    order = _wrap_dims(_int_args("flip", "dims", dims_args, dims), input._data.ndim)
    # NOTE: torch's flip returns a new tensor, not a view, in the input's dim order (as clone).
    data = _preserved_copy(np.flip(input._data, order) if input._data.ndim else input._data, input._data)
    return record(_FLIP, (input,), data, input.dtype, dims=order)


def roll(input, shifts, dims=None) -> Tensor:
    _check_tensor(input, "roll")
    shifts = _int_or_ints("roll", "shifts", shifts, 1)
    dims = () if dims is None else _int_or_ints("roll", "dims", dims, 2)
    if len(shifts) != len(dims) and not (not dims and len(shifts) == 1):
        raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, dims:{len(dims)}")
    n = input._data.ndim
    if n == 0 and dims:   # NOTE: torch names the first dim as given, wrapping none
        raise IndexError(f"Dimension specified as {dims[0]} but tensor has no dimensions")
    dims = tuple(_wrap_dim(d, n) for d in dims)
    data = _contiguous_array(np.roll(input._data, shifts, dims or None))
    return record(_ROLL, (input,), data, input.dtype, shifts=shifts, dims=dims)


def _triangle(op: str, rule: Rule, fn, input, diagonal: int) -> Tensor:
    _check_tensor(input, op)
    if input._data.ndim < 2:
        raise RuntimeError(f"{op}: input tensor must have at least 2 dimensions")
    diagonal = operator.index(diagonal)
    # NOTE: torch's tril/triu output is row-major whatever the input's layout (numpy keeps it;
    # fuzzer finding: tril of x.T then flatten is a view in torch, ViewBackward0)
    data = np.ascontiguousarray(fn(input._data, diagonal))
    if Written.tensor is input and has_internal_overlap(input._data):
        data = _triangle_in_place(input._data, data, fn, diagonal)
    return record(rule, (input,), data, input.dtype, diagonal=diagonal)


def _triangle_in_place(x: np.ndarray, result: np.ndarray, fn, diagonal: int) -> np.ndarray:
    """tril_ or triu_ of an expanded tensor `x`: what torch's kernel leaves in its memory.

    NOTE: torch's kernel zeroes the elements outside the triangle in place where the batch
    dims allow it (checkTrilTriuBatchContiguous: up to 3 dims, else batch strides of a
    contiguous stack of matrices, the first dim may be expanded), so a memory location that
    any zeroed element refers to reads 0; otherwise it computes a copy and copy_ refuses to
    write it back.
    """
    strides = [stride // x.itemsize for stride in x.strides]
    expected = x.shape[-1] * x.shape[-2]
    for i in range(x.ndim - 3, -1, -1) if x.ndim > 3 else ():
        if i == 0 and (strides[0] == 0 or x.shape[0] == 1):
            continue
        if strides[i] != expected:
            raise RuntimeError(_OVERLAP_MESSAGE)
        expected *= x.shape[i]
    outside = ~fn(np.ones(x.shape[-2:], bool), diagonal)
    return aliased_write(x, result, np.flatnonzero(np.broadcast_to(outside, x.shape)))


def tril(input, diagonal: int = 0) -> Tensor:
    return _triangle("tril", _TRIL, np.tril, input, diagonal)


def triu(input, diagonal: int = 0) -> Tensor:
    return _triangle("triu", _TRIU, np.triu, input, diagonal)


# ---------------------------------------------------------------------------------
# Copies: contiguous, clone
# ---------------------------------------------------------------------------------

def contiguous(input, memory_format=None) -> Tensor:
    _check_tensor(input, "contiguous")
    if memory_format is not None:
        raise NotImplementedError("contiguous(memory_format=...) is not supported by the engine")
    if input._data.flags.c_contiguous:
        return input   # NOTE: torch returns the tensor itself when it is already contiguous.
    return clone(input, memory_format="contiguous")


def clone(input, *, memory_format=None) -> Tensor:
    """A copy (node CloneBackward0) keeping the input's dim order, as torch's preserve_format."""
    _check_tensor(input, "clone")
    if memory_format not in (None, "contiguous"):
        raise NotImplementedError("clone(memory_format=...) is not supported by the engine")
    data = np.array(input._data, order="C", copy=True) if memory_format else _preserved_copy(input._data)
    return record(_CLONE, (input,), data, input.dtype)


# ---------------------------------------------------------------------------------
# Slices: narrow, diagonal, and the internal take/embed pair behind split and unbind
# ---------------------------------------------------------------------------------

def _take_backward(ctx, g):
    return (v_embed(g, ctx.self_shape, ctx.key),)


_SLICE = Rule("SliceBackward0", _take_backward)
_SELECT = Rule("SelectBackward0", _take_backward)
_SPLIT = Rule("SplitBackward0", _take_backward)
_SPLIT_WITH_SIZES = Rule("SplitWithSizesBackward0", _take_backward)
_UNBIND = Rule("UnbindBackward0", _take_backward)
_SLICE_BACKWARD = Rule("SliceBackwardBackward0", lambda ctx, g: (v_take(g, ctx.key),))
_SELECT_BACKWARD = Rule("SelectBackwardBackward0", lambda ctx, g: (v_take(g, ctx.key),))


def _dim_key(dim: int, index) -> tuple:
    """The numpy index of `index` (an int or a slice) along `dim`; the Ellipsis keeps 0-d results arrays."""
    return (slice(None),) * dim + (index, Ellipsis)


def _selects(key: tuple) -> bool:
    return any(isinstance(k, int) for k in key)


def _take(input: Tensor, key: tuple, rule: Rule | None = None) -> Tensor:
    """`input[key]` for a `_dim_key` (a numpy view), recorded as `rule` (slice or select by default)."""
    rule = rule or (_SELECT if _selects(key) else _SLICE)
    return record(rule, (input,), input._data[key], input.dtype, key=key, self_shape=input._data.shape)


def _embed(input: Tensor, shape: tuple, key: tuple) -> Tensor:
    """Zeros of `shape` with `input` at `key`: torch's slice_backward / select_backward."""
    out = np.zeros(shape, input.dtype.np)
    out[key] = input._data
    rule = _SELECT_BACKWARD if _selects(key) else _SLICE_BACKWARD
    return record(rule, (input,), out, input.dtype, key=key)


def narrow(input, dim: int, start: int, length: int) -> Tensor:
    _check_tensor(input, "narrow")
    if isinstance(start, Tensor) and (start.ndim or start.dtype is not _dtype.int64):   # the Tensor overload
        raise RuntimeError("start must be an 0-dim integral Tensor.")
    shape = input._data.shape
    if not shape:
        raise RuntimeError("narrow() cannot be applied to a 0-dim tensor.")
    if length < 0:
        raise RuntimeError("narrow(): length must be non-negative.")
    d = _wrap_dim(dim, len(shape))
    start, length, size = operator.index(start), operator.index(length), shape[d]
    if not -size <= start <= size:
        raise IndexError(f"start out of range (expected to be in range of [{-size}, {size}], but got {start})")
    if start < 0:
        start += size
    if start + length > size:
        raise RuntimeError(f"start ({start}) + length ({length}) exceeds dimension size ({size}).")
    return _take(input, _dim_key(d, slice(start, start + length)))


def _embed_diagonal(g: np.ndarray, shape: tuple, offset: int, dim1: int, dim2: int) -> np.ndarray:
    out = np.zeros(shape, g.dtype)
    planes = np.moveaxis(out, (dim1, dim2), (-2, -1))   # a view: writing it writes `out`
    i = np.arange(g.shape[-1])
    rows, cols = (i, i + offset) if offset >= 0 else (i - offset, i)
    planes[..., rows, cols] = g
    return out


_DIAGONAL = Rule("DiagonalBackward0",
                 lambda ctx, g: (v_diagonal_backward(g, ctx.self_shape, ctx.offset, ctx.dim1, ctx.dim2),))
_DIAGONAL_BACKWARD = Rule("DiagonalBackwardBackward0",
                          lambda ctx, g: (v_diagonal(g, ctx.offset, ctx.dim1, ctx.dim2),))


def diagonal(input, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    _check_tensor(input, "diagonal")
    n = input._data.ndim
    d1, d2 = _wrap_dim(dim1, n), _wrap_dim(dim2, n)
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    offset = operator.index(offset)
    return record(_DIAGONAL, (input,), _diagonal_view(input._data, offset, d1, d2), input.dtype,
                  offset=offset, dim1=d1, dim2=d2, self_shape=input._data.shape)


def _diagonal_backward(g: Tensor, shape: tuple, offset: int, dim1: int, dim2: int) -> Tensor:
    return record(_DIAGONAL_BACKWARD, (g,), _embed_diagonal(g._data, shape, offset, dim1, dim2), g.dtype,
                  offset=offset, dim1=dim1, dim2=dim2)


# ---------------------------------------------------------------------------------
# Joining: cat (concat, concatenate), stack
# ---------------------------------------------------------------------------------

def _tensor_list(op: str, tensors) -> list:
    if not isinstance(tensors, (tuple, list)):
        raise TypeError(f"{op}(): argument 'tensors' (position 1) must be tuple of Tensors, "
                        f"not {type(tensors).__name__}")
    for i, x in enumerate(tensors):
        if not isinstance(x, Tensor):
            raise TypeError(f"expected Tensor as element {i} in argument 0, but got {type(x).__name__}")
    return list(tensors)


def _join_dim(op: str, dim, axis) -> int:
    if axis is not None:
        dim = axis
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
        raise TypeError(f"{op}(): argument 'dim' (position 2) must be int, not {type(dim).__name__}")
    return int(dim)


def _cat_backward(ctx, g):
    grads = []
    for (start, stop), legacy_empty, need in zip(ctx.spans, ctx.legacy_empty, ctx.needs):
        if not need:
            grads.append(None)
        elif legacy_empty:
            # NOTE: torch's cat_tensors_backward gives a skipped input a fresh zeros({0}), outside
            # the graph: with create_graph, that gradient does not require grad.
            zeros = np.zeros((0,), v_data(g).dtype)
            grads.append(Tensor._make(zeros, g.dtype) if isinstance(g, Tensor) else zeros)
        else:
            grads.append(v_take(g, _dim_key(ctx.dim, slice(start, stop))))
    return tuple(grads)


_CAT = Rule("CatBackward0", _cat_backward, arg_names=())


def cat(tensors, dim: int = 0, *, axis=None) -> Tensor:
    tensors = _tensor_list("cat", tensors)
    dim = _join_dim("cat", dim, axis)
    if not tensors:
        raise ValueError("torch.cat(): expected a non-empty list of Tensors")
    for i, x in enumerate(tensors):
        if x._data.ndim == 0:
            raise RuntimeError(f"zero-dimensional tensor (at position {i}) cannot be concatenated")
    dt = _dtype.result_type(tensors)
    # NOTE: torch skips 1-d empty tensors (the legacy "no tensor" placeholder) in any cat.
    legacy_empty = [x._data.shape == (0,) for x in tensors]
    parts = [x for x, skip in zip(tensors, legacy_empty) if not skip]
    if not parts:
        return record(_CAT, tuple(tensors), np.zeros((0,), dt.np), dt, spans=[(0, 0)] * len(tensors),
                      legacy_empty=legacy_empty, dim=0)
    first = parts[0]._data.shape
    d = _wrap_dim(dim, len(first))
    for i, x in enumerate(tensors):
        shape = x._data.shape
        if legacy_empty[i]:
            continue
        if len(shape) != len(first):
            raise RuntimeError(f"Tensors must have same number of dimensions: got {len(first)} and {len(shape)}")
        for j, (a, b) in enumerate(zip(first, shape)):
            if j != d and a != b:
                raise RuntimeError(f"Sizes of tensors must match except in dimension {d}. Expected size {a} "
                                   f"but got size {b} for tensor number {i} in the list.")
    spans, offset = [], 0
    for x, skip in zip(tensors, legacy_empty):
        n = 0 if skip else x._data.shape[d]
        spans.append((offset, offset + n))
        offset += n
    data = _contiguous_array(np.concatenate([x._data.astype(dt.np, copy=False) for x in parts], axis=d))
    return record(_CAT, tuple(tensors), data, dt, spans=spans, legacy_empty=legacy_empty, dim=d)


_STACK = Rule("StackBackward0",
              lambda ctx, g: tuple(v_take(g, _dim_key(ctx.dim, i)) if need else None
                                   for i, need in enumerate(ctx.needs)),
              arg_names=())


def stack(tensors, dim: int = 0, *, axis=None) -> Tensor:
    tensors = _tensor_list("stack", tensors)
    dim = _join_dim("stack", dim, axis)
    if not tensors:
        raise RuntimeError("stack expects a non-empty TensorList")
    first = tensors[0]._data.shape
    d = _wrap_dim(dim, len(first) + 1)
    for i, x in enumerate(tensors):
        if x._data.shape != first:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {list(first)} at entry 0 "
                               f"and {list(x._data.shape)} at entry {i}")
    dt = _dtype.result_type(tensors)
    data = _contiguous_array(np.stack([x._data.astype(dt.np, copy=False) for x in tensors], axis=d))
    return record(_STACK, tuple(tensors), data, dt, dim=d)


# ---------------------------------------------------------------------------------
# Splitting: split, split_with_sizes, chunk, unbind (one node per output; see below)
# ---------------------------------------------------------------------------------
# NOTE: torch records one node shared by all outputs of a split (`a.grad_fn is b.grad_fn`);
# the engine's nodes have one output, so each output gets its own node of the same name,
# taking its slice and putting its gradient back in place. Values and gradients agree.

def _split_at(input: Tensor, d: int, sizes, rule: Rule) -> tuple:
    outs, start = [], 0
    for n in sizes:
        outs.append(_take(input, _dim_key(d, slice(start, start + n)), rule))
        start += n
    return _multi_output_views(outs)


def _multi_output_views(outs) -> tuple:
    """NOTE: torch forbids modifying in place the views a multi-output op (split, unbind) made
    with grad mode on, or their base afterwards; each remembers its output index for the message."""
    for i, out in enumerate(outs):
        if out._base is not None and _GradMode.enabled:
            out._view_creation = i
    return tuple(outs)


def _split_dim(op: str, input: Tensor, dim: int) -> int:
    if input._data.ndim == 0:
        raise RuntimeError(f"{op} expects at least a 1-dimensional tensor")
    return _wrap_dim(dim, input._data.ndim)


def split(tensor, split_size_or_sections, dim: int = 0) -> tuple:
    """torch.split(tensor, split_size_or_sections, dim): pieces of one size, or of the sizes listed.

    In torch a Python function that calls `tensor.split(split_size_or_sections, dim)` (a value
    that is no tensor fails as Python makes it fail: "'NoneType' object has no attribute 'split'")."""
    return tensor.split(split_size_or_sections, dim)


# torch's signatures of the natives Tensor.split calls (python_arg_parser.cpp checks them)
_SPLIT_ARGS = _args.Parser.from_text(optable.NATIVE_SIGNATURES["split"])
_SPLIT_WITH_SIZES_ARGS = _args.Parser.from_text(optable.SIGNATURES["split_with_sizes"])


def _split_by_size(tensor: Tensor, size: int, dim: int) -> tuple:
    d = _split_dim("split", tensor, dim)
    length = tensor._data.shape[d]
    if size < 0:
        raise RuntimeError(f"split expects split_size be non-negative, but got split_size={size}")
    if size == 0 and length != 0:
        raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got dimension size of {length}")
    count = max(-(-length // size), 1) if size else 1
    return _split_at(tensor, d, [size] * (count - 1) + [length - size * (count - 1)], _SPLIT)


def split_with_sizes(input, split_sizes, dim: int = 0) -> tuple:
    _check_tensor(input, "split_with_sizes")
    sizes = _ints("split_with_sizes", "split_sizes", split_sizes)
    d = _split_dim("split", input, dim)
    length = input._data.shape[d]
    if any(n < 0 for n in sizes):
        raise RuntimeError(f"split_with_sizes expects split_sizes have only non-negative entries, "
                           f"but got split_sizes={list(sizes)}")
    if sum(sizes) != length:
        # NOTE: torch names the dim as given (-1), not wrapped.
        raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {length} (input tensor's "
                           f"size at dimension {operator.index(dim)}), but got split_sizes={list(sizes)}")
    return _split_at(input, d, sizes, _SPLIT_WITH_SIZES)


def chunk(input, chunks: int, dim: int = 0) -> tuple:
    _check_tensor(input, "chunk")
    if input._data.ndim == 0:
        raise RuntimeError("chunk expects at least a 1-dimensional tensor")
    if chunks <= 0:
        raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    d = _wrap_dim(dim, input._data.ndim)
    length = input._data.shape[d]
    size = -(-length // chunks)
    if size == 0:
        # NOTE: torch splits an empty dim into `chunks` empty pieces (split_with_sizes).
        return split_with_sizes(input, [0] * chunks, d)
    # NOTE: chunk may return fewer than `chunks` pieces (5 into 4 gives sizes 2, 2, 1).
    return split(input, size, d)


def unbind(input, dim: int = 0) -> tuple:
    _check_tensor(input, "unbind")
    if input._data.ndim == 0:
        raise IndexError("Dimension specified as 0 but tensor has no dimensions")
    d = _wrap_dim(dim, input._data.ndim)
    return _multi_output_views([_take(input, _dim_key(d, i), _UNBIND) for i in range(input._data.shape[d])])
