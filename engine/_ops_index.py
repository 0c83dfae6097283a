"""Ops of the `engine/_ops_index.py` section of the op table (see engine/optable.py).

Each public function here is one op: it computes with numpy and calls
`record(rule, inputs, result, dtype, **saved_values)`; its `Rule` is defined
next to it. See `engine/_ops.py` for the conventions rules follow.

Indexing ops read their index (an int64 or bool tensor) but do not differentiate
it: it is not an input of the node (torch's `next_functions` does not list it),
yet torch saves it with the node, so `_save` attaches it as a saved tensor.

`Tensor.__getitem__` follows torch's Python indexing (python_variable_indexing.cpp):
integers select, slices slice, None and bools unsqueeze, each recorded as its own
node (SelectBackward0, SliceBackward0, UnsqueezeBackward0), and the tensor indices
collected on the way are applied at the end by one advanced-indexing node
(IndexBackward0).
"""
from __future__ import annotations

import operator
import sys
import warnings

import numpy as np

from . import _dtype
from ._ops import (_SQUEEZE_DIM, Rule, Written, _assert_no_overlap, _broadcast_shape, _check_tensor, _errstate,
                   _is_number, _reshape,
                   record, save_for_backward, v_data, v_reshape, v_where)
from ._ops_inplace import (aliased_write, check_no_internal_overlap, has_internal_overlap, _invalid_gradient,
                           overlap_warning)
from ._ops_shape import _contiguous_array
from ._tensor import Tensor, _wrap_dim

# ---------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------


def _save(out: Tensor, when: bool = True, **tensors: Tensor) -> Tensor:
    """Save tensors that are not inputs of `out`'s node (indices, masks) with it, as torch does.

    They are freed with the node's other saved tensors after a backward without
    retain_graph, so a second backward through the node raises as in torch.
    """
    if out.grad_fn is not None and when:
        for name, t in tensors.items():
            save_for_backward(out, name, t)
    return out


def _index_tensor(index) -> Tensor:
    """A saved index as a tensor (it is an array in a plain backward)."""
    return index if isinstance(index, Tensor) else Tensor._make(np.asarray(index), _dtype.int64)


def _zeros(shape, dt) -> Tensor:
    return Tensor._make(np.zeros(shape, dt.np), dt)


_C_TYPE_NAMES = {"int64": "int64_t", "float32": "float", "float64": "double", "bool": "bool"}


def _fill_value(value, dt) -> np.generic:
    """A fill number (or 0-d tensor's value) converted to `dt` with torch's overflow checks.

    NOTE: torch truncates a float toward zero into an integer dtype (2.7 -> 2) but refuses
    NaN, inf and out-of-range values there, and finite values beyond float32's range.
    """
    if isinstance(value, Tensor):
        value = value._data.item()
    if isinstance(value, int) and not isinstance(value, bool) and not -2**63 <= value < 2**63:
        raise OverflowError("int too big to convert")
    overflow = RuntimeError(f"value cannot be converted to type {_C_TYPE_NAMES[dt.name]} without overflow")
    if dt is _dtype.int64 and isinstance(value, (float, np.floating)):
        if not (np.isfinite(value) and -2.0**63 <= value < 2.0**63):
            raise overflow
        return np.int64(int(value))
    if dt is _dtype.float32 and np.isfinite(value) and abs(value) > float(np.finfo(np.float32).max):
        raise overflow
    return dt.np.type(value)


# ---------------------------------------------------------------------------------
# Tensor.__getitem__: basic pieces (select, slice, unsqueeze, alias) and advanced indexing
# ---------------------------------------------------------------------------------

def _extract(t, key: tuple, rule: Rule) -> Tensor:
    """`t[key]` for a basic key (ints and slices): a numpy view, as torch's select and slice
    (the Ellipsis keeps an all-int key's result a 0-d view, where numpy would copy a scalar)."""
    return record(rule, (t,), t._data[key + (Ellipsis,)], t.dtype, key=key, self_shape=t._data.shape)


def _embed(g: Tensor, shape: tuple, key: tuple, rule: Rule) -> Tensor:
    """zeros(shape) with `g` written at a basic `key` (torch's select_backward, slice_backward)."""
    data = np.zeros(shape, g.dtype.np)
    data[key] = g._data
    return record(rule, (g,), data, g.dtype, key=key, self_shape=shape)


def v_embed(g, shape, key, rule):
    if isinstance(g, Tensor):
        return _embed(g, shape, key, rule)
    out = np.zeros(shape, g.dtype)
    out[key] = g
    return out


def v_extract(g, key, rule):
    return _extract(g, key, rule) if isinstance(g, Tensor) else g[key]


_SELECT = Rule("SelectBackward0", lambda ctx, g: (v_embed(g, ctx.self_shape, ctx.key, _SELECT_BACKWARD),))
_SELECT_BACKWARD = Rule("SelectBackwardBackward0", lambda ctx, g: (v_extract(g, ctx.key, _SELECT),))
_SLICE = Rule("SliceBackward0", lambda ctx, g: (v_embed(g, ctx.self_shape, ctx.key, _SLICE_BACKWARD),))
_SLICE_BACKWARD = Rule("SliceBackwardBackward0", lambda ctx, g: (v_extract(g, ctx.key, _SLICE),))
_UNSQUEEZE = Rule("UnsqueezeBackward0", lambda ctx, g: (v_reshape(g, ctx.self_shape, _SQUEEZE_DIM),))
_ALIAS = Rule("AliasBackward0", lambda ctx, g: (g,))


def _select(t: Tensor, dim: int, index: int, real_dim: int) -> Tensor:
    shape = t._data.shape
    if not shape and index == 0:
        raise IndexError("invalid index of a 0-dim tensor. Use `tensor.item()` in Python or "
                         "`tensor.item<T>()` in C++ to convert a 0-dim tensor to a number")
    if 0 < len(shape) <= dim:
        raise NotImplementedError("__getitem__: an int past the last dim (after several Ellipsis), where "
                                  "torch reads a size past the end of the shape")
    # NOTE: torch reads the size of a 0-d tensor's dim 0 as 0, so any other index is out of
    # bounds; and it names the dim by the position of the index in the indexing tuple
    # (`real_dim`), not by the tensor's dim.
    size = shape[dim] if shape else 0
    if not -size <= index < size:
        raise IndexError(f"index {index} is out of bounds for dimension {real_dim} with size {size}")
    return _extract(t, (slice(None),) * dim + (index,), _SELECT)


def _slice(t: Tensor, dim: int, start: int, stop: int, step: int, skip_full: bool) -> Tensor:
    if step <= 0:
        raise ValueError("step must be greater than zero")
    if t.ndim == 0:
        raise IndexError("slice() cannot be applied to a 0-dim tensor.")
    whole = skip_full and start == 0 and step == 1
    if dim >= t.ndim:        # after several Ellipsis
        if whole:
            raise NotImplementedError("__getitem__: a slice past the last dim (after several Ellipsis), "
                                      "where torch reads a size past the end of the shape")
        _wrap_dim(dim, t.ndim)
    # NOTE: inside an indexing tuple torch skips slices that keep a whole dim (start 0,
    # stop >= size, step 1), so `x[:, 1]` records one SelectBackward0; a lone slice
    # (`x[:]`) always records SliceBackward0.
    if whole and stop >= t._data.shape[dim]:
        return t
    return _extract(t, (slice(None),) * dim + (slice(start, stop, step),), _SLICE)


def _unsqueeze(t: Tensor, dim: int) -> Tensor:
    shape = t._data.shape
    if dim > len(shape):
        raise IndexError(f"Dimension out of range (expected to be in range of [{-len(shape) - 1}, "
                         f"{len(shape)}], but got {dim})")
    return _reshape(t, shape[:dim] + (1,) + shape[dim:], _UNSQUEEZE)


def _slice_bounds(s: slice) -> tuple:
    """Python's PySlice_Unpack: defaults, clamping to the C ssize_t range, and its zero-step error."""
    step = 1 if s.step is None else operator.index(s.step)
    if step == 0:
        raise ValueError("slice step cannot be zero")
    big = sys.maxsize
    start = (0 if step > 0 else big) if s.start is None else operator.index(s.start)
    stop = (big if step > 0 else -big - 1) if s.stop is None else operator.index(s.stop)
    return max(-big - 1, min(start, big)), max(-big - 1, min(stop, big)), step


def _as_int(value) -> int:
    value = operator.index(value)
    if not -2**63 <= value < 2**63:
        raise ValueError("Overflow when unpacking long long")
    return value


def _is_int(obj) -> bool:
    return isinstance(obj, (int, np.integer)) and not isinstance(obj, (bool, np.bool_))


_SEQUENCES = (list, tuple, range, str, np.ndarray)

_SEQUENCE_AS_TUPLE_WARNING = (
    "Using a non-tuple sequence for multidimensional indexing is deprecated and will be changed in "
    "pytorch 2.9; use x[tuple(seq)] instead of x[seq]. In pytorch 2.9 this will be interpreted as tensor "
    "index, x[torch.tensor(seq)], which will result either in an error or a different result")


def _sequence_as_tuple(index) -> bool:
    """NumPy's legacy heuristic, kept by torch: a short list holding slices, None, Ellipsis,
    sequences or tensors is read as a tuple of indices (with a deprecation warning)."""
    if isinstance(index, tuple):
        return True
    if not isinstance(index, (list, range, str)) or len(index) >= 32:
        return False
    for item in index:
        if isinstance(item, (Tensor, slice) + _SEQUENCES) or item is None or item is Ellipsis:
            warnings.warn(_SEQUENCE_AS_TUPLE_WARNING, UserWarning, stacklevel=3)
            return True
    return False


def _sequence_index(seq) -> np.ndarray:
    """A list (or range) used as an index: a bool mask if all its items are bools, else int64."""
    if isinstance(seq, str):
        raise TypeError("new(): invalid data type 'str'")
    if any(isinstance(item, Tensor) for item in (seq if isinstance(seq, (list, tuple)) else ())):
        raise NotImplementedError("__getitem__: a list of tensors inside an index tuple")
    data = np.asarray(seq)
    if data.dtype.kind in "US":
        raise TypeError("new(): invalid data type 'str'")
    return data if data.dtype == np.bool_ else data.astype(np.int64)


def _invalid_index(obj):
    raise IndexError("only integers, slices (`:`), ellipsis (`...`), None and long or byte Variables "
                     f"are valid indices (got {type(obj).__name__})")


def _count_specified_dims(index: tuple) -> int:
    """Dims the index consumes: everything but None, Ellipsis and bools; a mask consumes its ndim."""
    count = 0
    for obj in index:
        if isinstance(obj, Tensor):
            count += obj.ndim if obj.dtype is _dtype.bool_ else 1
        elif obj is not None and obj is not Ellipsis and not isinstance(obj, bool):
            count += 1
    return count


def __getitem__(self: Tensor, indices) -> Tensor:
    """`tensor[indices]` with torch's rules for ints, slices, None, Ellipsis, bools and tensor indices."""
    # A single object: torch's fast paths (a lone slice is never skipped).
    if indices is None:
        return _unsqueeze(self, 0)
    if indices is Ellipsis:
        return record(_ALIAS, (self,), self._data[...], self.dtype)
    if _is_int(indices):
        return _select(self, 0, _as_int(indices), 0)
    if isinstance(indices, slice):
        return _slice(self, 0, *_slice_bounds(indices), skip_full=False)
    if isinstance(indices, bool):
        return _advanced_index(_unsqueeze(self, 0), [_bool_index(indices)])
    index = tuple(indices) if _sequence_as_tuple(indices) else (indices,)

    specified = _count_specified_dims(index)
    if specified > self.ndim:
        raise IndexError(f"too many indices for tensor of dimension {self.ndim}")
    result, dim = self, 0
    tensor_indices: list = []     # per dim of `result` from the first tensor index on: None or an array

    def record_tensor_index(array: np.ndarray):
        nonlocal dim
        if not tensor_indices:
            tensor_indices.extend([None] * dim)
        tensor_indices.append(array)
        dim += array.ndim if array.dtype == np.bool_ else 1

    for position, obj in enumerate(index):
        if _is_int(obj):
            result = _select(result, dim, _as_int(obj), position)
        elif isinstance(obj, slice):
            result = _slice(result, dim, *_slice_bounds(obj), skip_full=True)
            dim += 1
            if tensor_indices:
                tensor_indices.append(None)
        elif obj is Ellipsis:
            skipped = self.ndim - specified
            dim += skipped
            if tensor_indices:
                tensor_indices.extend([None] * skipped)
        elif obj is None:
            result = _unsqueeze(result, dim)
            dim += 1
            if tensor_indices:
                tensor_indices.append(None)
        elif isinstance(obj, bool):
            result = _unsqueeze(result, dim)
            record_tensor_index(_bool_index(obj))
        elif isinstance(obj, Tensor):
            if obj.ndim == 0 and obj.dtype is _dtype.int64:
                result = _select(result, dim, int(obj._data), position)
            elif obj.ndim == 0 and obj.dtype is _dtype.bool_:
                result = _unsqueeze(result, dim)
                record_tensor_index(_bool_index(bool(obj._data)))
            else:
                record_tensor_index(obj._data)
        elif isinstance(obj, _SEQUENCES):
            record_tensor_index(_sequence_index(obj))
        else:
            try:
                value = _as_int(obj)
            except TypeError:
                _invalid_index(obj)
            result = _select(result, dim, value, position)

    if not tensor_indices:
        # NOTE: torch returns an alias (AliasBackward0) when nothing was recorded: x[...], x[:, :].
        return record(_ALIAS, (self,), self._data[...], self.dtype) if result is self else result
    return _advanced_index(result, tensor_indices)


def _bool_index(value: bool) -> np.ndarray:
    """A Python bool indexes the dim it adds as `0:` (True) or as empty (False)."""
    return np.zeros(1 if value else 0, np.int64)


def _advanced_index(t: Tensor, indices: list) -> Tensor:
    """torch's `index` (one IndexBackward0 node): `indices` holds None or an index array per dim."""
    while indices and indices[-1] is None:
        indices.pop()
    for array in indices:
        if array is not None and array.dtype not in (np.int64, np.bool_):
            raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
    shape = t._data.shape
    expanded = []                   # masks become one int64 array per dim they cover
    for array in indices:
        if array is None or array.dtype != np.bool_:
            expanded.append(array)
            continue
        for j, n in enumerate(array.shape):
            at = len(expanded) + j
            if at >= len(shape) or n != shape[at]:
                raise IndexError(f"The shape of the mask {list(array.shape)} at index {j} does not match "
                                 f"the shape of the indexed tensor {list(shape)} at index {at}")
        expanded.extend(np.nonzero(array))
    if len(expanded) > len(shape):
        raise IndexError(f"too many indices for tensor of dimension {len(shape)} (got {len(expanded)})")
    defined = [(k, a) for k, a in enumerate(expanded) if a is not None]
    try:
        broadcast = np.broadcast_shapes(*(a.shape for _, a in defined))
    except ValueError:
        raise IndexError("shape mismatch: indexing tensors could not be broadcast together with shapes "
                         + ", ".join(str(list(a.shape)) for _, a in defined)) from None
    # With ints gone (selected) and masks expanded, numpy's placement of the indexed dims
    # is torch's: in place when the index arrays are adjacent, else in front.
    key = tuple(slice(None) if a is None else a for a in expanded)
    if 0 not in broadcast and any(shape[k] == 0 for k, _ in defined):
        # NOTE: torch's AdvancedIndex checks this before any element (no index fits a size-0 dim).
        raise IndexError("index is out of bounds for dimension with size 0")
    kept = [n for k, n in enumerate(shape) if k >= len(expanded) or expanded[k] is None]
    if np.prod(kept, dtype=np.int64) * np.prod(broadcast, dtype=np.int64):
        # (an empty result never fails: `x[[5], 0:0]` is a (1, 0) tensor; see _indexed)
        _check_index_bounds([a for _, a in defined], [shape[k] for k, _ in defined], broadcast)
    # NOTE: torch's index kernel writes a new tensor in row-major order; numpy's result of
    # slices mixed with index arrays is laid out otherwise (contiguous() then copied).
    data = _contiguous_array(_indexed(t._data, key))
    out = record(_INDEX, (t,), data, t.dtype, key=key, self_shape=shape)
    return _save(out, **{f"indices{k}": Tensor._make(a, _dtype.int64) for k, a in defined})


def _index_result_shape(shape: tuple, expanded: list, broadcast: tuple) -> tuple:
    """The shape of `t[key]`: the indexed dims become the broadcast index shape, in place when
    the index arrays are adjacent, else in front."""
    positions = [k for k, a in enumerate(expanded) if a is not None]
    rest = [n for k, n in enumerate(shape) if k not in positions]
    if positions == list(range(positions[0], positions[-1] + 1)):
        return tuple(rest[:positions[0]]) + tuple(broadcast) + tuple(rest[positions[0]:])
    return tuple(broadcast) + tuple(rest)


def _check_index_bounds(arrays: list, sizes: list, broadcast: tuple):
    """torch's message for the first out-of-range index, scanning elements in order, then dims.

    NOTE: torch names the dim by its position among the index tensors, not in the tensor.
    """
    bad = [(a < -n) | (a >= n) for a, n in zip(arrays, sizes)]
    if not any(b.any() for b in bad):
        return
    bad = [np.broadcast_to(b, broadcast).reshape(-1) for b in bad]
    first = min(int(np.argmax(b)) for b in bad if b.any())
    for k, (a, b) in enumerate(zip(arrays, bad)):
        if b[first]:
            value = np.broadcast_to(a, broadcast).reshape(-1)[first]
            raise IndexError(f"index {value} is out of bounds for dimension {k} with size {sizes[k]}")


def _index_put_accumulate(g: Tensor, shape: tuple, key: tuple) -> Tensor:
    """zeros(shape) with `g` added at an advanced `key`, repeated positions accumulating."""
    data = np.zeros(shape, g.dtype.np)
    if g._data.size:
        np.add.at(data, key, g._data)
    return record(_INDEX_PUT, (g,), data, g.dtype, key=key)


def v_index_put_accumulate(g, shape, key):
    if isinstance(g, Tensor):
        return _index_put_accumulate(g, shape, key)
    out = np.zeros(shape, g.dtype)
    if g.size:
        np.add.at(out, key, g)
    return out


def _indexed(data: np.ndarray, key: tuple) -> np.ndarray:
    """data[key] for an advanced-indexing key (full slices and index arrays). NOTE: torch checks
    the bounds while it copies, so a result without elements is zeros of its shape whatever the
    indices (fuzzer finding: the double backward of x[1:3, [3, 3]] of a (1, 3, 1) tensor)."""
    expanded = [None if isinstance(a, slice) else a for a in key]
    broadcast = np.broadcast_shapes(*(a.shape for a in expanded if a is not None))
    kept = [n for k, n in enumerate(data.shape) if k >= len(key) or expanded[k] is None]
    if np.prod(kept, dtype=np.int64) * np.prod(broadcast, dtype=np.int64) == 0:
        return np.zeros(_index_result_shape(data.shape, expanded, broadcast), data.dtype)
    return data[key]


def v_index(g, key):
    if isinstance(g, Tensor):
        return record(_INDEX, (g,), _indexed(g._data, key), g.dtype, key=key, self_shape=g._data.shape)
    return _indexed(g, key)


# NOTE: torch's index_backward is index_put with accumulate=True into zeros: gradients
# of repeated indices add up (np.add.at), they do not overwrite each other.
_INDEX = Rule("IndexBackward0", lambda ctx, g: (v_index_put_accumulate(g, ctx.self_shape, ctx.key),))
_INDEX_PUT = Rule("IndexPutImplBackward0", lambda ctx, g: (v_index(g, ctx.key),))


# ---------------------------------------------------------------------------------
# index_select
# ---------------------------------------------------------------------------------

def _index_add(g: Tensor, shape: tuple, dim: int, index: np.ndarray) -> Tensor:
    """zeros(shape).index_add_(dim, index, g): the gradient of index_select."""
    return record(_INDEX_ADD, (g,), _index_add_np(g._data, shape, dim, index), g.dtype, dim=dim, index=index)


def _index_add_np(g, shape, dim, index):
    out = np.zeros(shape, g.dtype)
    if not shape:
        return out + g.reshape(())
    np.add.at(out, (slice(None),) * dim + (index.reshape(-1),), g)
    return out


def v_index_select(g, dim, index):
    if isinstance(g, Tensor):
        return index_select(g, dim, _index_tensor(index))
    return _index_select_np(g, dim, v_data(index))


def v_index_add(g, shape, dim, index):
    if isinstance(g, Tensor):
        return _index_add(g, shape, dim, v_data(index))
    return _index_add_np(g, shape, dim, v_data(index))


def _index_select_np(x, dim, index):
    if x.ndim == 0:
        return x.copy()
    return np.take(x, index.reshape(-1), axis=dim)


_INDEX_SELECT = Rule("IndexSelectBackward0",
                     lambda ctx, g: (v_index_add(g, ctx.self_shape, ctx.dim, ctx.index),))
_INDEX_ADD = Rule("IndexAddBackward0", lambda ctx, g: (v_index_select(g, ctx.dim, ctx.index),))


def index_select(input, dim: int, index) -> Tensor:
    """Entries of `input` along `dim` at the positions in the 1-d (or 0-d) `index`."""
    _check_tensor(input, "index_select")
    _check_tensor(index, "index_select", "index", 3)
    dim = _wrap_dim(dim, input.ndim)
    if index.ndim > 1:
        raise IndexError("index_select(): Index is supposed to be a vector")
    if index.dtype is not _dtype.int64:
        raise RuntimeError("index_select(): Expected dtype int32 or int64 for index")
    idx = index._data
    size = input._data.shape[dim] if input.ndim else 1
    if size == 0 and idx.size and input.ndim > 1:   # a 1-d input reports the index as out of range
        raise RuntimeError("index_select(): self indexing axis dim should be positive")
    if input.ndim == 0 and idx.size != 1:
        raise RuntimeError(f"index_select(): Index to scalar can have only 1 value, got {idx.size} value(s)")
    # NOTE: unlike indexing, index_select refuses negative indices. torch's CPU kernel for
    # dim 1 (of a contiguous tensor) words the error differently, and as a RuntimeError.
    bad = (idx < 0) | (idx >= size)
    if bad.any():
        if dim == 1 or (input.ndim > 1 and input._data.size == 0):   # an empty input: also its own words
            value = idx.reshape(-1)[int(np.argmax(bad.reshape(-1)))]
            raise RuntimeError(f"INDICES element is out of DATA bounds, id={value} axis_dim={size}")
        raise IndexError("index out of range in self")
    out = record(_INDEX_SELECT, (input,), _index_select_np(input._data, dim, idx), input.dtype,
                 dim=dim, self_shape=input._data.shape)
    return _save(out, index=index)


# ---------------------------------------------------------------------------------
# gather, scatter, scatter_add: one element of the index per output (or src) element
# ---------------------------------------------------------------------------------

def _coords(index: np.ndarray, dim: int) -> tuple:
    """The positions `index` addresses along `dim` (0-d index and self read as 1-d, as in torch)."""
    index = index.reshape(-1) if index.ndim == 0 else index
    grid = list(np.indices(index.shape, sparse=True))
    grid[dim] = index
    return tuple(grid)


def _as_1d(x: np.ndarray) -> np.ndarray:
    return x.reshape(1) if x.ndim == 0 else x


def _gather_np(x, dim, index):
    if index.size == 0:
        return np.zeros(index.shape, x.dtype)
    return _as_1d(x)[_coords(index, dim)].reshape(index.shape)


def _scatter_np(x, dim, index, src, accumulate: bool):
    """`x` with `src` (an array, read over the index's extent, or a numpy scalar) put at `index`."""
    if index.size == 0:
        return x.copy()
    out = _as_1d(x).copy()
    coords = _coords(index, dim)
    if isinstance(src, np.ndarray):
        src = _as_1d(src)[tuple(slice(0, n) for n in _as_1d(index).shape)]
    if accumulate:
        with _errstate():   # torch never warns about overflow
            np.add.at(out, coords, src)
    else:
        out[coords] = src
    return out.reshape(x.shape)


def _scatter_add_zeros_np(shape, dim, index, g):
    return _scatter_np(np.zeros(shape, g.dtype), dim, index, g, accumulate=True)


def v_gather(g, dim, index):
    if isinstance(g, Tensor):
        return gather(g, dim, _index_tensor(index))
    return _gather_np(g, dim, v_data(index))


def v_scatter_add_zeros(shape, dim, index, g):
    if isinstance(g, Tensor):
        return scatter_add(_zeros(shape, g.dtype), dim, _index_tensor(index), g)
    return _scatter_add_zeros_np(shape, dim, v_data(index), g)


def v_scatter_zero(g, dim, index):
    if isinstance(g, Tensor):
        return scatter(g, dim, _index_tensor(index), 0)
    return _scatter_np(g, dim, v_data(index), g.dtype.type(0), accumulate=False)


def _check_index_dtype(op: str, index: Tensor):
    if index._data.size and index.dtype is not _dtype.int64:
        raise RuntimeError(f"{op}(): Expected dtype int32/int64 for index")


def _check_in_bounds(index: np.ndarray, size: int, dim: int):
    """torch's message for the first index (in order) outside [0, size)."""
    bad = (index < 0) | (index >= size)
    if bad.any():
        value = index.reshape(-1)[int(np.argmax(bad.reshape(-1)))]
        raise RuntimeError(f"index {value} is out of bounds for dimension {dim} with size {size}")


def _size(x: Tensor, d: int) -> int:
    """torch's ensure_nonempty_size: a 0-d tensor has size 1 along its one dim."""
    return x._data.shape[d] if x.ndim else 1


def _src_gradient(ctx, g, node: str):
    """The gradient of scatter's src: g gathered at the index.

    NOTE: torch's formula is `grad.gather(dim, index)`, shaped like the index; when src is
    larger than the index (and does not broadcast to it) torch's engine refuses that
    gradient, and so does this rule.
    """
    index = v_data(ctx.index)
    src_shape = ctx.src_shape
    if len(src_shape) > index.ndim or any(s not in (n, 1) for s, n in zip(src_shape[::-1], index.shape[::-1])):
        raise _invalid_gradient(node, 1, index.shape, ctx.src_shape)
    return v_gather(g, ctx.dim, ctx.index)


_GATHER = Rule("GatherBackward0",
               lambda ctx, g: (v_scatter_add_zeros(ctx.self_shape, ctx.dim, ctx.index, g),),
               saves={"self": None})
_SCATTER_SRC = Rule("ScatterBackward0",
                    lambda ctx, g: (v_scatter_zero(g, ctx.dim, ctx.index) if ctx.needs[0] else None,
                                    _src_gradient(ctx, g, "ScatterBackward0") if ctx.needs[1] else None),
                    ("self", "src"))
_SCATTER_VALUE = Rule("ScatterBackward1", lambda ctx, g: (v_scatter_zero(g, ctx.dim, ctx.index),))
_SCATTER_ADD = Rule("ScatterAddBackward0",
                    lambda ctx, g: (g, _src_gradient(ctx, g, "ScatterAddBackward0") if ctx.needs[1] else None),
                    ("self", "src"))


def gather(input, dim: int, index, *, sparse_grad: bool = False) -> Tensor:
    """out[i][j] = input[index[i][j]][j] (dim 0): entries of `input` along `dim` at `index`."""
    _check_tensor(input, "gather")
    _check_tensor(index, "gather", "index", 3)
    if sparse_grad:
        raise NotImplementedError("gather(sparse_grad=True): the engine has no sparse tensors")
    dim = _wrap_dim(dim, input.ndim)
    _check_index_dtype("gather", index)
    if index._data.size and max(input.ndim, 1) != max(index.ndim, 1):
        raise RuntimeError("Index tensor must have the same number of dimensions as input tensor")
    for d in range(max(input.ndim, 1) if index._data.size else 0):
        if d != dim and _size(index, d) > _size(input, d):
            raise RuntimeError(
                f"Size does not match at dimension {d} expected index {list(index.shape)} to be no larger "
                f"than self {list(input.shape)} apart from dimension {dim}")
    _check_in_bounds(index._data, _size(input, dim), dim)
    out = record(_GATHER, (input,), _gather_np(input._data, dim, index._data), input.dtype, dim=dim,
                 self_shape=input._data.shape)
    return _save(out, index=index)


def _check_scatter(op: str, input: Tensor, dim: int, index: Tensor, src) -> int:
    """torch's checks of scatter and scatter_add, in torch's order; returns the wrapped dim."""
    dim = _wrap_dim(dim, input.ndim)
    _check_index_dtype(op, index)
    if src is not None and src.dtype is not input.dtype:
        raise RuntimeError(f"{op}(): Expected self.dtype to be equal to src.dtype")
    if index._data.size == 0:
        _check_scatter_overlap(input, index, src)
        return dim
    ndim = max(input.ndim, 1)
    if ndim != max(index.ndim, 1):
        raise RuntimeError("Index tensor must have the same number of dimensions as self tensor")
    wrong = any(d != dim and _size(index, d) > _size(input, d) for d in range(ndim))
    if src is not None and not wrong:
        wrong = any(_size(index, d) > (src._data.shape[_wrap_dim(d, src.ndim)] if src.ndim else 1)
                    for d in range(ndim))
    same_ndim_as_src = src is None or max(src.ndim, 1) == max(index.ndim, 1)
    if wrong and same_ndim_as_src:
        message = (f"Expected index {list(index.shape)} to be no larger than self {list(input.shape)} "
                   f"apart from dimension {dim}")
        if src is not None:
            message += f" and to be no larger size than src {list(src.shape)}"
        raise RuntimeError(message)
    if not same_ndim_as_src:
        raise RuntimeError("Index tensor must have the same number of dimensions as src tensor")
    _check_scatter_overlap(input, index, src)
    _check_in_bounds(index._data, _size(input, dim), dim)
    return dim


def _check_scatter_overlap(input: Tensor, index: Tensor, src) -> None:
    """scatter_: the tensor's elements may not share memory, nor anything read share it.

    NOTE: torch checks so after the shapes, also for an empty index."""
    if Written.tensor is input:
        check_no_internal_overlap(input._data)
        _assert_no_overlap(input._data, index._data, partial_only=False)
        if src is not None:
            _assert_no_overlap(input._data, src._data, partial_only=False)


def scatter(input, dim: int, index, src=None, *, value=None, reduce=None) -> Tensor:
    """A copy of `input` with `src` (a tensor) or `value` (a number) written at `index` along `dim`.

    Where the index repeats a position, the last write wins (torch leaves the order unspecified).
    """
    _check_tensor(input, "scatter")
    _check_tensor(index, "scatter", "index", 3)
    if src is not None and not isinstance(src, Tensor):
        src, value = None, src
    if (src is None) == (value is None) or (value is not None and not _is_number(value)):
        raise TypeError("scatter(): expected a Tensor `src` or a Number `value`")
    if reduce is not None:
        if reduce not in ("add", "multiply"):
            raise RuntimeError("reduce argument must be either add or multiply.")
        raise NotImplementedError("scatter(reduce=...): use scatter_add")
    dim = _check_scatter("scatter", input, dim, index, src)
    if src is None:
        data = _scatter_np(input._data, dim, index._data, _fill_value(value, input.dtype), False)
        out = record(_SCATTER_VALUE, (input,), data, input.dtype, dim=dim)
    else:
        data = _scatter_np(input._data, dim, index._data, src._data, False)
        out = record(_SCATTER_SRC, (input, src), data, input.dtype, dim=dim, src_shape=src._data.shape)
    return _save(out, index=index)


def scatter_add(input, dim: int, index, src) -> Tensor:
    """A copy of `input` with `src` added at `index` along `dim`; repeated positions accumulate."""
    _check_tensor(input, "scatter_add")
    _check_tensor(index, "scatter_add", "index", 3)
    _check_tensor(src, "scatter_add", "src", 4)
    dim = _check_scatter("scatter", input, dim, index, src)
    data = _scatter_np(input._data, dim, index._data, src._data, True)
    out = record(_SCATTER_ADD, (input, src), data, input.dtype, dim=dim, src_shape=src._data.shape)
    # NOTE: torch saves the index only when src's gradient is to be computed, by its edge (the self
    # gradient is g itself): not for src a view of a leaf made under no_grad, which requires grad
    # without an edge (fuzzer finding: a second backward then succeeds in torch).
    return _save(out, when=out.grad_fn is not None and out.grad_fn.needs[1], index=index)


# ---------------------------------------------------------------------------------
# masked_fill, take
# ---------------------------------------------------------------------------------



def v_masked_fill_zero(g, mask):
    if isinstance(g, Tensor):
        return masked_fill(g, Tensor._make(np.asarray(mask), _dtype.bool_), 0)
    return np.where(mask, np.zeros((), g.dtype), g)


def v_masked_sum(g, mask):
    """The gradient of the fill value: g summed where the mask holds."""
    selected = v_where(np.broadcast_to(mask, np.shape(g)), g, 0)
    return selected.sum()


_MASKED_FILL_NUMBER = Rule("MaskedFillBackward0", lambda ctx, g: (v_masked_fill_zero(g, v_data(ctx.mask)),))
_MASKED_FILL_TENSOR = Rule("MaskedFillBackward1",
                           lambda ctx, g: (v_masked_fill_zero(g, v_data(ctx.mask)) if ctx.needs[0] else None,
                                           v_masked_sum(g, v_data(ctx.mask)) if ctx.needs[1] else None),
                           ("self", "value"))


def _masked_fill_checks(input, mask, value) -> None:
    """The value's and the mask's checks; masked_fill_ makes them before broadcasting the
    mask, masked_fill after."""
    if isinstance(value, Tensor) and value.ndim:
        raise RuntimeError("masked_fill_ only supports a 0-dimensional value tensor, but got tensor "
                           f"with {value.ndim} dimension(s).")
    if mask.dtype is not _dtype.bool_:
        raise RuntimeError("masked_fill_ only supports boolean masks, but got mask with dtype "
                           + mask.dtype.cpp_name)


def _masked_fill_meta(input, mask, value) -> None:
    """masked_fill_'s checks before it broadcasts the mask.

    NOTE: torch's masked_fill_ writes into an expanded tensor (its memory locations that any
    masked element refers to), with a deprecation warning.
    """
    _masked_fill_checks(input, mask, value)
    if has_internal_overlap(input._data):
        overlap_warning("masked_fill_", "tensor[mask] = scalar")


def masked_fill(input, mask, value) -> Tensor:
    """A copy of `input` (broadcast with `mask`) holding `value` where `mask` is True."""
    _check_tensor(input, "masked_fill")
    _check_tensor(mask, "masked_fill", "mask", 2)
    shape = _broadcast_shape(mask._data.shape, input._data.shape)
    _masked_fill_checks(input, mask, value)
    fill = _fill_value(value, input.dtype)
    mask_data = np.broadcast_to(mask._data, shape)
    data = _contiguous_array(np.where(mask_data, fill, np.broadcast_to(input._data, shape)))
    if Written.tensor is input and shape == input._data.shape and has_internal_overlap(input._data):
        data = aliased_write(input._data, data, np.flatnonzero(mask_data))
    if isinstance(value, Tensor):
        out = record(_MASKED_FILL_TENSOR, (input, value), data, input.dtype)
    else:
        out = record(_MASKED_FILL_NUMBER, (input,), data, input.dtype)
    return _save(out, mask=mask)


def _put_accumulate(g: Tensor, shape: tuple, index: np.ndarray) -> Tensor:
    """zeros(shape).put_(index, g, accumulate=True): the gradient of take."""
    return record(_PUT, (g,), _put_np(g._data, shape, index), g.dtype, index=index)


def _put_np(g, shape, index):
    out = np.zeros(int(np.prod(shape, dtype=np.int64)), g.dtype)
    np.add.at(out, index.reshape(-1), g.reshape(-1))
    return out.reshape(shape)


def v_take(g, index):
    if isinstance(g, Tensor):
        return take(g, _index_tensor(index))
    return g.reshape(-1)[v_data(index)]


def v_put_accumulate(g, shape, index):
    if isinstance(g, Tensor):
        return _put_accumulate(g, shape, v_data(index))
    return _put_np(g, shape, v_data(index))


_TAKE = Rule("TakeBackward0", lambda ctx, g: (v_put_accumulate(g, ctx.self_shape, ctx.index),),
             saves={"self": None})
_PUT = Rule("PutBackward0", lambda ctx, g: (v_take(g, ctx.index),))


def take(input, index) -> Tensor:
    """Entries of `input` read as 1-d at `index`; the result has the index's shape."""
    _check_tensor(input, "take")
    _check_tensor(index, "take", "index", 2)
    if index.dtype is not _dtype.int64:
        raise RuntimeError(f"take(): Expected a long tensor for index, but got {index.dtype.scalar_name}")
    n = input._data.size
    idx = index._data
    if n == 0 and idx.size:
        raise IndexError("take(): tried to take from an empty tensor")
    bad = (idx < -n) | (idx >= n)
    if bad.any():
        value = idx.reshape(-1)[int(np.argmax(bad.reshape(-1)))]
        raise IndexError(f"out of range: tried to access index {value} on a tensor of {n} elements.")
    out = record(_TAKE, (input,), input._data.reshape(-1)[idx], input.dtype, self_shape=input._data.shape)
    return _save(out, index=index)
