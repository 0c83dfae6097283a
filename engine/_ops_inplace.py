"""In-place ops: `x.add_(y)`, `x += y`, `zero_`, `fill_`, `copy_`, `__setitem__`.

An in-place op computes its out-of-place result, checks that it fits (shape,
dtype), writes it into the tensor's own array and bumps the version counter
that the tensor shares with its views. The tensor then takes the result's
place in the graph (its `grad_fn` becomes the op's node). What backward saved
of the tensor before the write no longer matches its version, so using it
raises torch's "modified by an inplace operation" error, exactly where torch
raises it.
"""
from __future__ import annotations

import re

import numpy as np

from . import _dtype
from ._autograd import _GradMode
from ._autograd import node_class
from ._ops import (Ctx, Rule, Written, _as, _broadcast_shape, _check_tensor, _errstate, _scalar_tensor,
                   _assert_no_overlap, record, save_for_backward, v_masked_zero, v_zeros_like)
from ._ops_shape import _expand_shape
from ._tensor import Tensor



def check_writable(self: Tensor, *others, view_node: str | None = None) -> None:
    """torch's refusals to modify a tensor in place (`others`: the op's other arguments;
    `view_node`: the node of the view of `self` that is modified, for `x[i] = v`)."""
    if self._multi_output_nr is not None and _GradMode.enabled and (self._requires_grad or any(
            isinstance(other, Tensor) and other._requires_grad for other in others)):
        _refuse_multi_output_view(self, view_node)
    if _GradMode.enabled and self._requires_grad:
        if self.grad_fn is None and self._base is None:
            raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
        if self.grad_fn is None and self._base is not None:
            raise RuntimeError(
                "A view was created in no_grad mode and is being modified inplace with grad mode enabled. "
                "Given that this use case is ambiguous and error-prone, it is forbidden. You can clarify your "
                "code by moving both the view and the inplace either both inside the no_grad block (if you "
                "don't want the inplace to be tracked) or both outside (if you want the inplace to be tracked).")
        if self._base is not None and self._base.grad_fn is None and self._base._requires_grad:
            raise RuntimeError("a view of a leaf Variable that requires grad is being used in an in-place operation.")
    if not self._data.flags.writeable:
        raise RuntimeError(
            "unsupported operation: more than one element of the written-to tensor refers to a single "
            "memory location. Please clone() the tensor before performing the operation.")


def _refuse_multi_output_view(self: Tensor, view_node: str | None) -> None:
    """torch's error for modifying in place a view made by an op that returns several views
    (unbind, split), or a view of one (then its own output number is 0)."""
    if self.grad_fn is None:
        where = "A view was created in no_grad mode and is being modified inplace with grad mode enabled."
    else:
        # NOTE: torch names the view's node without "Backward0": "Output 2 of Unbind".
        number, node = (self._multi_output_nr, self.grad_fn.name()) if view_node is None else (0, view_node)
        where = f"Output {number} of {re.sub(r'Backward[0-9]*$', '', node)} is a view and is being modified inplace."
    raise RuntimeError(f"{where} This view is the output of a function that returns multiple views. Such "
                       "functions do not allow the output views to be modified inplace. You should replace "
                       "the inplace operation by an out-of-place one.")


def write_result(self: Tensor, result: Tensor) -> Tensor:
    """Make `self` hold `result` in place: data, version and place in the graph."""
    if result.shape != self.shape:
        raise RuntimeError(f"output with shape {list(self.shape)} doesn't match the broadcast shape "
                           f"{list(result.shape)}")
    _dtype.check_cast(result.dtype, self.dtype)
    node = result.grad_fn
    if node is not None:
        ctx = node.ctx
        for name, saved in list(ctx.tensors.items()):
            # Only the modified argument itself (`self`/`input`), not another argument that
            # happens to be the same tensor: torch checks that one's version (x.lerp_(x, w)).
            if saved is self and name in ("self", "input"):
                # NOTE: torch saves the original value of the modified input (a clone) where
                # the rule needs it, so mul_ by a tensor that requires grad still backwards.
                snapshot = Tensor._make(self._data.copy(), self.dtype, self._requires_grad, self.grad_fn)
                ctx.tensors[name], ctx.versions[name] = snapshot, 0
                ctx.__dict__[name] = snapshot._data
    self._data[...] = result._data if result.dtype is self.dtype else result._data.astype(self.dtype.np)
    self._vc[0] += 1
    if node is not None and self._base is not None:
        _rebase_view(self, node)
        return self
    if _GradMode.enabled:   # under no_grad the tensor keeps its place in the graph, as in torch
        old = self.grad_fn
        self.grad_fn = node
        self._requires_grad = result._requires_grad
        if old is not None and node is not None and old._retained is not None and old._retained() is self:
            # NOTE: retain_grad follows the tensor: its .grad is the gradient of the new value.
            old._retained, node._retained = None, old._retained
    if node is not None and "result" in node.ctx.tensors:
        # The saved output is this tensor now, at its new version.
        node.ctx.tensors["result"], node.ctx.versions["result"] = self, self._vc[0]
        node.ctx.__dict__["result"] = self._data
    return self


def _view_positions(view: Tensor, base: Tensor) -> np.ndarray:
    """For each element of `view`, the flat index of the element of `base` it shares memory with."""
    data, item = base._data, base._data.itemsize
    steps = [s // item for s in data.strides]
    extent = 1 + sum((n - 1) * s for n, s in zip(data.shape, steps)) if data.size else 0
    memory = np.arange(max(extent, 1), dtype=np.int64)
    at = np.lib.stride_tricks.as_strided
    owner = np.full(memory.shape, -1, np.int64)
    owner[at(memory, data.shape, [s * 8 for s in steps]).ravel()] = np.arange(data.size)
    offset = (view._data.__array_interface__["data"][0] - data.__array_interface__["data"][0]) // item
    return owner[at(memory[offset:], view._data.shape, [s // item * 8 for s in view._data.strides])]


def _copy_slices_of(node, positions: np.ndarray, base_shape: tuple):
    """torch's CopySlices backward: the in-place op's node `node` runs on the gradient of the
    view's region of the base; its gradient for the view replaces that region."""
    def backward(ctx, g):
        if not isinstance(g, np.ndarray):
            raise NotImplementedError("engine: differentiating an in-place op on a view twice (create_graph) "
                                      "is not supported")
        flat = g.reshape(-1).copy()
        grads = node._apply(flat[positions], False)
        flat[positions.reshape(-1)] = 0 if grads[0] is None else np.broadcast_to(grads[0], positions.shape).ravel()
        return (flat.reshape(base_shape), *grads[1:])
    return backward


def _as_strided_of(positions: np.ndarray, base_shape: tuple):
    """The view's gradient put back where the view lies in its base (AsStridedBackward0)."""
    def backward(ctx, g):
        if not isinstance(g, np.ndarray):
            raise NotImplementedError("engine: differentiating an in-place op on a view twice (create_graph) "
                                      "is not supported")
        flat = np.zeros(int(np.prod(base_shape, dtype=np.int64)), g.dtype)
        np.add.at(flat, positions.reshape(-1), np.broadcast_to(g, positions.shape).ravel())
        return (flat.reshape(base_shape),)
    return backward


def _rebase_view(view: Tensor, node) -> None:
    """An in-place op on a view, recorded as torch does: the base's history becomes CopySlices
    (the base's old history, with the op's node applied to the view's region), and the view
    becomes a view of the new base (AsStridedBackward0)."""
    base = view._base
    base._rebases += 1
    view._rebases = base._rebases
    positions = _view_positions(view, base)
    shape = base._data.shape
    base_edge = (base.grad_fn if base.grad_fn is not None else
                 (base._acc or base._accumulator()) if base._requires_grad else None, 0)
    edges = (base_edge,) + tuple(node.next_functions[1:])
    meta = ((shape, base.dtype),) + tuple(node._input_meta[1:])
    ctx = Ctx()
    ctx.needs, ctx.freed, ctx.tensors, ctx.versions = [e[0] is not None for e in edges], False, {}, {}
    base.grad_fn = node_class("torch::autograd::CopySlices")(_copy_slices_of(node, positions, shape), edges,
                                                             meta, ctx)
    base._requires_grad = True
    view_ctx = Ctx()
    view_ctx.needs, view_ctx.freed, view_ctx.tensors, view_ctx.versions = [True], False, {}, {}
    old = view.grad_fn
    view.grad_fn = node_class("AsStridedBackward0")(_as_strided_of(positions, shape), ((base.grad_fn, 0),),
                                                    ((shape, base.dtype),), view_ctx)
    view._requires_grad = True
    if old is not None and old._retained is not None and old._retained() is view:
        old._retained, view.grad_fn._retained = None, old._retained   # retain_grad follows the view


def inplace_method(fn, name: str, comparison: bool = False, elementwise: bool = True, meta=None):
    """The in-place method of an out-of-place op (`add` -> `add_`). `meta`: the op's checks that
    torch makes before any other (lerp's dtypes). An `elementwise` op then refuses operands that
    partly share the tensor's memory, and operands that do not broadcast to the tensor's shape,
    as torch's TensorIterator; the others check what they need while they compute (`Written`)."""
    def method(self, *args, **kwargs):
        _check_tensor(self, name)
        check_writable(self, *args, *kwargs.values())
        if meta is not None:
            meta(self, *args, **kwargs)
        if elementwise:
            for other in (*args, *kwargs.values()):
                if isinstance(other, Tensor):
                    _assert_no_overlap(self._data, other._data, partial_only=True)
        if args and isinstance(args[0], Tensor) and args[0].shape != self.shape:
            # NOTE: torch checks that the other operand broadcasts to this tensor's shape
            # before anything about the op (its dtypes, its values).
            shape = _broadcast_shape(self._data.shape, args[0]._data.shape)
            if shape != self._data.shape:
                raise RuntimeError(f"output with shape {list(self.shape)} doesn't match the broadcast shape "
                                   f"{list(shape)}")
        Written.tensor = self
        try:
            result = fn(self, *args, **kwargs)
        finally:
            Written.tensor = None
        if result.grad_fn is not None and "not_implemented" in result.grad_fn.ctx.__dict__:
            # NOTE: torch's error for a missing derivative names the in-place op called.
            result.grad_fn.ctx.not_implemented = name
        if comparison and _GradMode.enabled and (self._requires_grad or any(
                isinstance(a, Tensor) and a._requires_grad for a in args)):
            result = _comparison_node(name, self, args, result)
        return write_result(self, result)
    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"In-place version of :func:`{fn.__name__}`."
    return method


def _comparison_node(name: str, self: Tensor, args, result: Tensor) -> Tensor:
    """`x.eq_(y)` on a tensor in a graph: torch keeps it in the graph with a zero gradient
    (node EqBackward1 for a tensor `y`, EqBackward0 for a number)."""
    other = args[0] if args else None
    inputs = (self, other) if isinstance(other, Tensor) else (self,)
    node_name = name[:-1].capitalize() + ("Backward1" if isinstance(other, Tensor) else "Backward0")
    rule = Rule(node_name, lambda ctx, g: tuple(v_zeros_like(g) for _ in ctx.needs), ("self", "other"))
    return record(rule, inputs, result._data, result.dtype)


# ---- in-place ops without an out-of-place twin --------------------------------------

_ZERO = Rule("ZeroBackward0", lambda ctx, g: (v_zeros_like(g),))
_FILL = Rule("FillBackward2", lambda ctx, g: (v_zeros_like(g),))
_FILL_TENSOR = Rule("FillBackward3", lambda ctx, g: (v_zeros_like(g), g.sum() if ctx.needs[1] else None),
                    ("self", "value"))


def zero_(self: Tensor) -> Tensor:
    """Fill with zeros in place."""
    check_writable(self)
    return write_result(self, record(_ZERO, (self,), np.zeros_like(self._data), self.dtype))


def fill_(self: Tensor, value) -> Tensor:
    """Fill with a number (or a 0-d tensor) in place."""
    check_writable(self, value)
    if isinstance(value, Tensor):
        if value.ndim:
            raise RuntimeError(
                f"fill_ only supports 0-dimension value tensor but got tensor with {value.ndim} dimensions.")
        data = np.full(self._data.shape, value._data, dtype=self.dtype.np)
        return write_result(self, record(_FILL_TENSOR, (self, value), data, self.dtype))
    data = np.full(self._data.shape, value, dtype=self.dtype.np)
    return write_result(self, record(_FILL, (self,), data, self.dtype))


_COPY_ = Rule("torch::autograd::CopyBackwards",
              lambda ctx, g: (v_zeros_like(g) if ctx.needs[0] else None, g if ctx.needs[1] else None),
              ("self", "src"))


def copy_(self: Tensor, other: Tensor, non_blocking: bool = False) -> Tensor:
    """Copy `other` (broadcast to this tensor's shape, converted to its dtype) into this tensor."""
    src = other
    if not isinstance(src, Tensor):
        # NOTE: torch takes a number as a 0-d tensor (scalar_to_tensor: a float is a double).
        src = _scalar_tensor(src, _dtype.wrapped_number_dtype(src))
    check_writable(self, src)
    _assert_no_overlap(self._data, src._data, partial_only=True)
    shape = _broadcast_shape(self._data.shape, src._data.shape)
    if shape != self._data.shape:
        raise RuntimeError(f"output with shape {list(self.shape)} doesn't match the broadcast shape {list(shape)}")
    data = np.broadcast_to(src._data, shape).astype(self.dtype.np)
    result = record(_COPY_, (self, src), data, self.dtype)
    if result.dtype is not self.dtype:
        result = result.to(self.dtype)
    return write_result(self, result)


def _copy_slices_backward(ctx, g):
    if isinstance(g, Tensor):   # create_graph: the same selections, recorded on g
        written = np.zeros(g._data.shape, bool)
        written[ctx.index] = True
        return (v_masked_zero(g, written) if ctx.needs[0] else None,
                g[_tensor_index(ctx.index)] if ctx.needs[1] else None)
    grad_self = None
    if ctx.needs[0]:
        grad_self = g.copy()
        grad_self[ctx.index] = 0
    grad_value = g[ctx.index] if ctx.needs[1] else None
    return grad_self, grad_value


_COPY_SLICES = Rule("torch::autograd::CopySlices", _copy_slices_backward, ("self", "value"))
# NOTE: an index with tensors (advanced indexing, masks) is torch's index_put_, whose node
# saves the indices: a second backward without retain_graph raises.
_INDEX_PUT = Rule("IndexPutBackward0", _copy_slices_backward, ("self", "value"))


def __setitem__(self: Tensor, index, value) -> None:
    """`x[index] = value`: an in-place write of a number or a tensor broadcast to the indexed part."""
    check_writable(self, value, view_node=_indexing_view_node(self, index))
    key = _numpy_index(index)
    if isinstance(value, Tensor):
        advanced = any(isinstance(i, (Tensor, list, bool)) for i in (index if isinstance(index, tuple) else (index,)))
        if advanced:   # NOTE: torch's index_put_ refuses any overlap at all
            _assert_no_overlap(self._data, value._data, partial_only=False)
        else:
            _check_copy_to(self._data[_numpy_index_view(key)], value)
    value_tensor = value if isinstance(value, Tensor) else _scalar_tensor(value, _dtype.result_type([self], [value]))
    data = self._data.copy()
    with _errstate():
        try:
            data[key] = _as(value_tensor, self.dtype)
        except IndexError as e:
            raise IndexError(str(e)) from None
        except ValueError:
            target = data[key].shape
            raise RuntimeError(f"shape mismatch: value tensor of shape {list(value_tensor.shape)} cannot be "
                               f"broadcast to indexing result of shape {list(target)}") from None
    index_tensors = [i for i in (index if isinstance(index, tuple) else (index,)) if isinstance(i, Tensor)]
    rule = _INDEX_PUT if index_tensors else _COPY_SLICES
    result = record(rule, (self, value_tensor), data, self.dtype, index=key)
    if result.grad_fn is not None:
        for n, t in enumerate(index_tensors):
            save_for_backward(result, f"indices{n}", t)
    write_result(self, result)


def _check_copy_to(view: np.ndarray, value: Tensor) -> None:
    """torch's copy of a tensor into the view `x[index]` (copy_to in its indexing code): a 0-d
    value fills; another is stripped of leading 1s and expanded to the view (expand's errors),
    then copied (a partial overlap refused where the value was not actually expanded)."""
    if value._data.ndim == 0:
        return
    shape = value._data.shape
    if shape != view.shape:
        while shape and shape[0] == 1:
            shape = shape[1:]
        _expand_shape(Tensor._make(value._data.reshape(shape), value.dtype), view.shape)
    if shape == view.shape:
        _assert_no_overlap(view, value._data, partial_only=True)


def _indexing_view_node(self: Tensor, index) -> str | None:
    """The node of the view torch makes of `self` to write `x[index] = v` into: the last of its
    basic indexing steps (None: torch writes into `self` itself, as for advanced indexing).
    NOTE: torch skips a slice that keeps the whole dim."""
    node, dim = None, 0
    for item in index if isinstance(index, tuple) else (index,):
        if isinstance(item, (Tensor, list, bool)):
            return None
        if item is None:
            node = "UnsqueezeBackward0"
            dim += 1
        elif isinstance(item, slice):
            if dim < self._data.ndim and range(self._data.shape[dim])[item] != range(self._data.shape[dim]):
                node = "SliceBackward0"
            dim += 1
        elif item is not Ellipsis:
            node = "SelectBackward0"
    return node


def _tensor_index(key):
    """A numpy index expression with its arrays made engine tensors again."""
    if isinstance(key, tuple):
        return tuple(_tensor_index(k) for k in key)
    if isinstance(key, np.ndarray):
        return Tensor._make(key, _dtype.from_numpy(key.dtype))
    if isinstance(key, list):
        return [_tensor_index(k) for k in key]
    return key


def _numpy_index_view(key):
    """A basic numpy key that gives a view even where all its items are ints."""
    key = key if isinstance(key, tuple) else (key,)
    return key if any(item is Ellipsis for item in key) else key + (Ellipsis,)


def _numpy_index(index):
    """An index expression with engine tensors replaced by their arrays."""
    if isinstance(index, tuple):
        return tuple(_numpy_index(i) for i in index)
    if isinstance(index, Tensor):
        return index._data
    if isinstance(index, list):
        return [_numpy_index(i) for i in index]
    return index
