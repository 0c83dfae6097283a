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

import warnings
import weakref

import numpy as np

from . import _cpu, _dtype, _zerotensor
from ._autograd import _GradMode
from ._autograd import NOTHING_SAVED, new_node, node_class, op_label, sum_to_shape
from ._ops import (Rule, Written, _as, _assert_no_overlap, _broadcast_shape, _check_tensor, _errstate, _reshape,
                   _scalar_tensor, record, save_for_backward, v_zeros_like)
from ._tensor import Tensor



def check_writable(self: Tensor, *others, overlap_allowed: bool = False, differentiable: bool = True) -> None:
    """torch's refusals to modify a tensor in place (`others`: the op's other arguments), in
    torch's order: its autograd kernel's (check_inplace, then reading every argument's node),
    then the op's kernel's (overlap). `differentiable`: whether the op records a node at all
    (copy_ into an integral tensor does not, and checks nothing of autograd's).

    NOTE: torch refuses to write through a view in which several elements share memory
    (a stride 0 over a size > 1, as `expand` makes) in its elementwise ops and copy_; the
    others (`overlap_allowed`) decide for themselves, later: fill_ and zero_ with a number
    write anyway (a backward through such a write raises instead, see
    _copy_slices_view_backward), masked_fill_ and index_put_ write with a deprecation
    warning, tril_ and triu_ write where their kernel works in place, scatter_ refuses after
    its shape checks. A view made under no_grad or by a multi-output op is refused as soon as
    the write would be recorded: when the view or any other argument requires grad.
    """
    tensors = [o for o in others if isinstance(o, Tensor)]
    if differentiable and _GradMode.enabled and (self.requires_grad or any(o.requires_grad for o in tensors)):
        if self._base is not None and self._view_creation is not None:
            raise RuntimeError(_view_rebase_message(self, indirect=False))
        if self.requires_grad:
            if self._base is not None and self._base.grad_fn is None and self._base._requires_grad:
                raise RuntimeError("a view of a leaf Variable that requires grad is being used in an in-place "
                                   "operation.")
            if self._node_unset():   # NOTE: also a view whose node is not set yet, as torch's C++ is_leaf
                raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
        _collect_edges(self, *tensors)
    if type(self._data) is _zerotensor.ZeroArray:   # NOTE: torch's ZeroTensor fallback refuses writes
        raise RuntimeError(_zerotensor.IMMUTABLE_MESSAGE)
    if not overlap_allowed:
        check_no_internal_overlap(self._data)


def _collect_edges(*tensors: Tensor) -> None:
    """Read the node of each argument of an op that will be recorded.

    NOTE: torch's autograd kernel links the op's node to its arguments' nodes
    (collect_next_edges) before the op's own kernel runs: reading the node of a view whose
    base was modified in place since regenerates it, and a view made by a multi-output op or
    under no_grad raises there, before any shape, dtype or overlap check of the op (fuzzer
    finding: x.clamp_max_(unbind(y)[0]) sharing memory with x after y was modified in place).
    Only such a view's node can raise or change when read.
    """
    for t in tensors:
        if t._base is not None and t._vc[0] != t._view_version:
            t.grad_fn


_OVERLAP_MESSAGE = ("unsupported operation: more than one element of the written-to tensor refers to a single "
                    "memory location. Please clone() the tensor before performing the operation.")


def has_internal_overlap(array: np.ndarray) -> bool:
    """torch's has_internal_overlap(...) == MemOverlap::Yes: a stride 0 over a size > 1.

    NOTE: torch finds no overlap in an empty tensor (it counts as contiguous), whatever its
    strides; numpy gives some empty results zero strides.
    """
    return array.size != 0 and any(stride == 0 and n > 1 for n, stride in zip(array.shape, array.strides))


def check_no_internal_overlap(array: np.ndarray) -> None:
    if array.size and (not array.flags.writeable or has_internal_overlap(array)):
        raise RuntimeError(_OVERLAP_MESSAGE)


def overlap_warning(op: str, example: str) -> None:
    """torch's deprecation warning of masked_fill_ and index_put_ writing into an expanded tensor."""
    warnings.warn(f"Use of {op} on expanded tensors is deprecated. Please clone() the tensor before performing "
                  f"this operation. This also applies to advanced indexing e.g. {example}", UserWarning, stacklevel=4)


def aliased_write(target: np.ndarray, result: np.ndarray, written: np.ndarray) -> np.ndarray:
    """What a kernel that writes `result` at the flat positions `written` (in its order) leaves
    in `target`, whose elements may share memory: every element reads its memory location,
    which holds the result at the last written position that refers to it (else its old
    value). Torch's masked_fill_, index_put_, tril_ and triu_ write so into an expanded tensor.
    """
    offsets = _element_offsets(target, target).reshape(-1)
    locations = offsets[written.reshape(-1)][::-1]   # reversed: the first found is the last written
    locations, last = np.unique(locations, return_index=True)
    values = result.reshape(-1)[written.reshape(-1)[::-1][last]]
    out = target.copy().reshape(-1)
    slot = np.minimum(np.searchsorted(locations, offsets), max(locations.size - 1, 0))
    hit = locations[slot] == offsets if locations.size else np.zeros(offsets.shape, bool)
    out[hit] = values[slot[hit]]
    return out.reshape(target.shape)


def write_result(self: Tensor, result: Tensor, *, unchanged: bool = False) -> Tensor:
    """Make `self` hold `result` in place: data, version and place in the graph (`unchanged`:
    the data is `self`'s already, nothing to write)."""
    if result.shape != self.shape:
        raise RuntimeError(f"output with shape {list(self.shape)} doesn't match the broadcast shape "
                           f"{list(result.shape)}")
    _dtype.check_cast(result.dtype, self.dtype)
    node = result.grad_fn
    if node is not None:
        for name, saved, _ in node._saved:
            # Only the modified argument itself (`self`/`input`), not another argument that
            # happens to be the same tensor: torch checks that one's version (x.lerp_(x, w)).
            if saved is self and name in ("self", "input"):
                # NOTE: torch saves the original value of the modified input (a clone) where
                # the rule needs it, so mul_ by a tensor that requires grad still backwards.
                node._save(name, Tensor._make(self._data.copy(), self.dtype, self._requires_grad, self.grad_fn))
    if node is not None and self._base is not None:
        _rebase_view(self, node)
    if not unchanged:
        with _errstate():   # a float64 result overflows float32 to inf silently, as torch's copy
            self._data[...] = result._data if result.dtype is self.dtype else result._data.astype(self.dtype.np)
    self._vc[0] += 1
    # A view's node is regenerated when it is read (Tensor.grad_fn); under no_grad a tensor
    # keeps its place in the graph, as in torch.
    if _GradMode.enabled and self._base is None:
        _set_node(self, node)
        self._requires_grad = result._requires_grad
    # NOTE: torch regenerates a view's node right after an in-place op on it (rebase_history).
    view_node = self.grad_fn if node is not None and self._base is not None else None
    if node is not None and any(name == "result" for name, _, _ in node._saved):
        node._save("result", self)   # the saved output is this tensor now, at its new version
        if view_node is not None:
            # NOTE: torch's saved output of an in-place op on a view names the view's node as
            # regenerated here (a weak reference) while that node lives: until the view's node
            # is regenerated again and nothing else holds the old one. (Unlike torch's, the
            # engine's saved output is the view itself, which keeps the view's node alive
            # after the program dropped the view.)
            node.result_producer = weakref.ref(view_node)
    return self


# ---- in-place ops on views ------------------------------------------------------------
#
# NOTE: torch records an in-place op on a view as a CopySlices node on the view's base: its
# backward takes the base's gradient, runs the op's own node on the part the view covers and
# writes the result back there. Every view of that base whose node was recorded before the
# write (the modified view included) gets, when its grad_fn is next read, a new node
# AsStridedBackward0 from the base's current node (torch replays views as as_strided).
# The engine locates a view in its base by memory: `_flat_positions` maps each element of
# the view to its flat index in the base, and the three `v_*_flat` helpers below gather,
# scatter-add and overwrite by such an index, differentiably (for create_graph).

def _element_offsets(a: np.ndarray, base: np.ndarray) -> np.ndarray:
    """For each element of `a` (a numpy view of `base`'s memory), its offset in elements from `base`'s start."""
    item = base.itemsize
    out = np.full((), (a.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // item, np.int64)
    for axis, (n, stride) in enumerate(zip(a.shape, a.strides)):
        shape = [1] * a.ndim
        shape[axis] = n
        out = out + (np.arange(n, dtype=np.int64) * (stride // item)).reshape(shape)
    return np.broadcast_to(out, a.shape)


def _flat_positions(view: np.ndarray, base: np.ndarray) -> np.ndarray:
    """For each element of `view` (a numpy view of `base`'s memory), its flat C-order index in `base`."""
    if view.size == 0:
        return np.zeros(view.shape, np.int64)
    in_base = _element_offsets(base, base).ravel()
    order = np.argsort(in_base, kind="stable")
    return order[np.searchsorted(in_base[order], _element_offsets(view, base))]


def v_take_flat(x, index: np.ndarray):
    """The elements of `x` at flat indices `index` (shaped like `index`): torch's as_strided."""
    if isinstance(x, Tensor):
        return record(_TAKE_FLAT, (x,), x._data.reshape(-1)[index], x.dtype, index=index, shape=x._data.shape)
    return np.reshape(x, -1)[index]


def v_scatter_add_flat(x, index: np.ndarray, shape: tuple):
    """Zeros of `shape` with `x` (shaped like `index`) added at flat indices `index`:
    torch's as_strided_backward (overlapping elements of a view add up)."""
    if isinstance(x, Tensor):
        if not index.size:
            # NOTE: torch's as_strided_backward returns zeros outside the graph for a view with a
            # dim of size 0 (fuzzer finding: a double backward through an empty no_grad-modified
            # narrow raised "does not require grad" in torch only)
            return Tensor._make(np.zeros(shape, x.dtype.np), x.dtype)
        return record(_SCATTER_ADD_FLAT, (x,), v_scatter_add_flat(x._data, index, shape), x.dtype, index=index)
    out = np.zeros(int(np.prod(shape, dtype=np.int64)), x.dtype)
    np.add.at(out, index.reshape(-1), np.broadcast_to(x, index.shape).reshape(-1))
    return out.reshape(shape)


def v_put_flat(x, index: np.ndarray, values):
    """`x` with `values` written at flat indices `index`: torch's as_strided_scatter."""
    if isinstance(x, Tensor):
        values = values if isinstance(values, Tensor) else _scalar_tensor(values, x.dtype)
        return record(_PUT_FLAT, (x, values), v_put_flat(x._data, index, values._data), x.dtype, index=index)
    # NOTE: a C-order copy, so that reshape(-1) is a view the writes land in (a transposed
    # gradient's K-order copy would reshape to a copy: fuzzer finding, .T's explicit gradient).
    out = np.array(x, copy=True, order="C")
    out.reshape(-1)[index.reshape(-1)] = np.broadcast_to(values, index.shape).reshape(-1)
    return out


_TAKE_FLAT = Rule("AsStridedBackward0", lambda ctx, g: (v_scatter_add_flat(g, ctx.index, ctx.shape),))
_SCATTER_ADD_FLAT = Rule("AsStridedBackwardBackward0", lambda ctx, g: (v_take_flat(g, ctx.index),))
_PUT_FLAT = Rule("AsStridedScatterBackward0",
                 lambda ctx, g: (v_put_flat(g, ctx.index, 0) if ctx.needs[0] else None,
                                 v_take_flat(g, ctx.index) if ctx.needs[1] else None),
                 ("self", "src"))


def _node(rule: Rule, edges: tuple, meta: list, needs: list, node_type=None, saved=NOTHING_SAVED, **attrs):
    """A node made directly (not by an op's `record`), saving no tensors."""
    return new_node(node_type or rule.node, rule.backward, edges, meta, needs, saved, attrs)


class CopySlices(node_class("torch::autograd::CopySlices")):
    """The node of a base whose view was modified in place; it owns the op's node (`ctx.fn`)."""

    __slots__ = ()

    def _release(self):
        # NOTE: torch's CopySlices drops its op's node after a backward without retain_graph,
        # so a second backward through it raises even when nothing was saved, and the view's
        # node the op's node linked to can die then (see _rebase_view).
        self._saved = None
        self.fn._release()
        self.fn = None


def _invalid_gradient(node: str, index: int, got: tuple, expected: tuple) -> RuntimeError:
    """torch's validate_outputs error: a node's gradient for one of its inputs has a shape the
    input's does not take. It names the node whose outputs torch checks, which for an op
    applied in place to a view is the CopySlices around it (the shapes ride along for that)."""
    error = RuntimeError(f"Function {node} returned an invalid gradient at index {index} - got "
                         f"{list(got)} but expected shape compatible with {list(expected)}")
    error.invalid_gradient = (index, got, expected)
    return error


def _copy_slices_view_backward(ctx, g):
    """The base's gradient with the view's part replaced by the op's gradient of its input."""
    fn = ctx.fn
    try:
        grads = list(fn._apply(v_take_flat(g, ctx.index), isinstance(g, Tensor)))
    except RuntimeError as error:
        # NOTE: torch validates the gradients CopySlices returns (its op's, from index 1 on),
        # so the error names CopySlices (fuzzer finding: scatter_add_ on a permuted view)
        if not hasattr(error, "invalid_gradient"):
            raise
        raise _invalid_gradient("torch::autograd::CopySlices", *error.invalid_gradient) from None
    own = grads[0]
    base_grad = None
    if ctx.needs[0] and own is not None:
        if ctx.overlapping:   # NOTE: torch copies the gradient into the view's part of the base's
            raise RuntimeError(_OVERLAP_MESSAGE)   # gradient, which refuses overlapping memory
        shape = fn._input_meta[0][0]
        base_grad = v_put_flat(g, ctx.index, sum_to_shape(own, shape) if own.shape != shape else own)
    return (base_grad, *grads[1:])


_COPY_SLICES_VIEW = Rule("torch::autograd::CopySlices", _copy_slices_view_backward)


def _rebase_view(view: Tensor, node) -> None:
    """An in-place op recorded `node` for `view`: its base's node becomes CopySlices(node)."""
    base = view._base
    edge = base._edge()
    edges = (edge, *node.next_functions[1:])
    meta = [(base._data.shape, base.dtype), *node._input_meta[1:]]
    needs = [edge[0] is not None, *node.needs[1:]]
    index = _flat_positions(view._data, base._data)
    # (Saved: an empty list, not NOTHING_SAVED, so that the scheduler releases it; see _release.)
    _set_node(base, _node(_COPY_SLICES_VIEW, edges, meta, needs, CopySlices, [], fn=node, index=index,
                          overlapping=np.unique(index).size != index.size))
    # NOTE: as torch's CopySlices, the base's node takes the op's other edges; the op's node
    # keeps its own, so the view's old node lives as long as the op's node does (until a
    # backward without retain_graph releases it), which decides how a saved output's version
    # error names its producer (see write_result; campaign seed 20: AsStrided with retain_graph).
    base._requires_grad = True
_AS_STRIDED = Rule("AsStridedBackward0", lambda ctx, g: (v_scatter_add_flat(g, ctx.index, ctx.shape),))

def _view_rebase_message(view: Tensor, indirect: bool) -> str:
    """torch's refusal to modify in place a view made under no_grad or by a multi-output op
    (or a view of such a view), or its base afterwards (`indirect`)."""
    modified = "its base or another view of its base has been" if indirect else "is being"
    op = op_label(view._grad_fn) if view._grad_fn is not None else None
    if view._view_creation != "no_grad":
        # NOTE: a multi-output view without a node (of a tensor that does not require grad,
        # written with an operand that does) is described as made in no_grad mode.
        where = (f"Output {view._view_creation} of {op} is a view and {modified} modified inplace." if op else
                 f"A view was created in no_grad mode and {modified} modified inplace with grad mode enabled.")
        return (f"{where} This view is the output of a function that returns multiple views. Such functions do "
                "not allow the output views to be modified inplace. You should replace the inplace operation by "
                "an out-of-place one.")
    head = f"Output 0 of {op} is a view of a view which was created in" if op else "A view was created in"
    return (f"{head} no_grad mode and {modified} modified inplace with grad mode enabled. Given that this use "
            "case is ambiguous and error-prone, it is forbidden. You can clarify your code by moving both the "
            "view and the inplace either both inside the no_grad block (if you don't want the inplace to be "
            "tracked) or both outside (if you want the inplace to be tracked).")


def refresh_view_node(view: Tensor) -> None:
    """Regenerate the node of a view whose memory was modified in place since its node was recorded.

    NOTE: as torch's VariableHooks::grad_fn: a view without a node of a base that does not
    require grad stays without; a view made under no_grad or by a multi-output op raises;
    any other view gets AsStridedBackward0 from its base's node (or AccumulateGrad).
    """
    base = view._base
    if view._grad_fn is None and not base._requires_grad:
        view._view_version = view._vc[0]
        return
    if view._view_creation is not None:
        raise RuntimeError(_view_rebase_message(view, indirect=True))
    edge = base._edge()
    node = _node(_AS_STRIDED, (edge,), [(base._data.shape, base.dtype)], [edge[0] is not None],
                 index=_flat_positions(view._data, base._data), shape=base._data.shape)
    old, view.grad_fn = view._grad_fn, node
    if old is not None and old._retained is not None and old._retained() is view:
        # NOTE: the view still retains grad (no warning on reading .grad), as in torch.
        old._retained, node._retained = None, old._retained
    view._requires_grad = True


def _read_input_nodes(args: tuple, kwargs: dict) -> None:
    """Read the node of every tensor argument of an op, as torch's autograd wrapper does before
    the op's kernel checks its arguments (collect_next_edges), when grad mode is on and one of
    them requires grad: a multi-output or no_grad view whose base was modified in place since
    raises there (see refresh_view_node), before the op's own errors.

    NOTE: the engine reads the nodes as it records, after computing; an op that fails calls
    this first (engine/__init__.py), so x_split.clamp() after an in-place op on the split's base
    raises the Split message as torch, not clamp's argument error (campaign seed 12).
    """
    if not _GradMode.enabled:
        return
    tensors = []
    for arg in (*args, *kwargs.values()):
        if isinstance(arg, Tensor):
            tensors.append(arg)
        elif isinstance(arg, (tuple, list)):
            tensors.extend(item for item in arg if isinstance(item, Tensor))
    if any(t.requires_grad for t in tensors):
        for t in tensors:
            t.grad_fn   # noqa: B018  (reading it regenerates a stale view's node, or raises)


def _set_node(tensor: Tensor, node) -> None:
    """Give a tensor modified in place its new node.

    NOTE: retain_grad follows the tensor: its .grad is the gradient of the new value.
    """
    old = tensor.grad_fn
    tensor.grad_fn = node
    if old is not None and node is not None and old._retained is not None and old._retained() is tensor:
        old._retained, node._retained = None, old._retained


def inplace_method(fn, name: str, comparison: bool = False, elementwise: bool = True, meta=None):
    """The in-place method of an out-of-place op (`add` -> `add_`). `meta`: the op's checks that
    torch makes before any other (lerp's dtypes). An `elementwise` op refuses a tensor whose
    elements share memory, operands that partly share the tensor's memory, and operands that
    do not broadcast to the tensor's shape, as torch's TensorIterator as it is built (then it
    refuses a result dtype the tensor cannot hold: see _ops._check_output_cast); the others
    check what they need while they compute (`Written`)."""
    def method(self, *args, **kwargs):
        _check_tensor(self, name)
        check_writable(self, *args, *kwargs.values(), overlap_allowed=True)
        if meta is not None:
            meta(self, *args, **kwargs)
        if elementwise:   # NOTE: torch's TensorIterator refuses overlap as it is built, after the meta checks
            check_no_internal_overlap(self._data)
            operands = [t for t in (*args, *kwargs.values()) if isinstance(t, Tensor)]
            for other in operands:
                _assert_no_overlap(self._data, other._data, partial_only=True)
        else:   # (masked_fill_'s mask)
            operands = args[:1] if args and isinstance(args[0], Tensor) else ()
        shape = self._data.shape
        for other in operands:
            if other._data.shape != shape:
                # NOTE: torch checks that the operands broadcast to this tensor's shape before
                # anything about the op (its dtypes, its values): addcmul_ of bool with a
                # wider tensor2 raises this, not addcmul's refusal of bool.
                shape = _broadcast_shape(shape, other._data.shape)
        if shape != self._data.shape:
            raise RuntimeError(f"output with shape {list(self.shape)} doesn't match the broadcast shape "
                               f"{list(shape)}")
        Written.tensor = self
        if _zerotensor.ZeroArray in {type(getattr(a, "_data", None)) for a in args}:
            args = tuple(_zerotensor.plain(a) for a in args)
        try:
            result = fn(self, *args, **kwargs)
            if elementwise and operands and result.dtype is self.dtype and _reads_what_it_writes(self, operands):
                result._data[...] = _in_iterator_order(fn, self, args, kwargs)
            if comparison and _GradMode.enabled and (self._requires_grad or any(
                    isinstance(a, Tensor) and a._requires_grad for a in args)):
                result = _comparison_node(name, self, args, result)
        finally:
            Written.tensor = None
        if result.grad_fn is not None and "not_implemented" in result.grad_fn.__dict__:
            # NOTE: torch's error for a missing derivative names the in-place op called.
            result.grad_fn.not_implemented = name
        return write_result(self, result)
    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"In-place version of :func:`{fn.__name__}`."
    return method



def _reads_what_it_writes(self: Tensor, operands: list) -> bool:
    """Whether an operand of an elementwise in-place op reads memory the op writes, laid out
    otherwise than the tensor (where torch gave up judging the overlap: not dense), in the
    tensor's dtype (an operand of another dtype is first copied, as is a tensor computed in a
    wider dtype: the caller checks the result's dtype)."""
    x = self._data
    if x.size <= 1:
        return False
    for other in operands:
        y = other._data
        if other.dtype is self.dtype and y is not x and type(y) is np.ndarray and np.may_share_memory(x, y) \
                and not (y.shape == x.shape and y.strides == x.strides
                         and y.__array_interface__["data"][0] == x.__array_interface__["data"][0]) \
                and np.shares_memory(x, y, max_work=x.size * y.size):
            return True
    return False


def _in_iterator_order(fn, self: Tensor, args: tuple, kwargs: dict) -> np.ndarray:
    """The values an elementwise in-place op leaves in `self` when an operand reads memory it
    writes: torch's kernel walks the elements in TensorIterator's order (`_cpu.iterator_order`),
    each read just before it is written, so later elements read what earlier ones wrote; its
    vector loop reads two vectors of elements before writing them (`_cpu.vector_loop_mask`).

    NOTE: campaign seed 18: `v.t().addcmul_(v.t(), v)` of a non-contiguous v (torch finds such
    overlap too hard to judge and runs the kernel): engine 2.0 (all read first), torch 3.0.
    """
    from ._autograd import no_grad
    x = self._data
    shape, dtype = x.shape, self.dtype
    tensors = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
    named = [k for k, a in kwargs.items() if isinstance(a, Tensor)]
    inputs = [np.broadcast_to(args[i]._data, shape) for i in tensors] + \
             [np.broadcast_to(kwargs[k]._data, shape) for k in named]
    order = _cpu.iterator_order(shape, [_cpu.iterator_strides(a, shape) for a in (x, *inputs)])
    vector = _cpu.vector_loop_mask(x, *inputs, out=x).transpose(order).reshape(-1)
    walk = np.indices([shape[d] for d in order]).reshape(len(order), -1)   # outermost dim first
    places = [tuple(walk[order.index(d)]) for d in range(len(shape))]       # per dim, each element's index
    original = x.copy()
    step = 2 * _cpu.VECTOR_BYTES // x.itemsize
    with no_grad():
        start = 0
        while start < vector.size:
            stop = start + step if vector[start] else start + 1
            index = tuple(p[start:stop] for p in places)
            call_args, call_kwargs = list(args), dict(kwargs)
            for i, a in zip(tensors, inputs):
                call_args[i] = Tensor._make(a[index].copy(), args[i].dtype)
            for k, a in zip(named, inputs[len(tensors):]):
                call_kwargs[k] = Tensor._make(a[index].copy(), kwargs[k].dtype)
            values = fn(Tensor._make(x[index].copy(), dtype), *call_args, **call_kwargs)
            x[index] = values._data
            start = stop
    written = x.copy()
    x[...] = original
    return written

def _comparison_node(name: str, self: Tensor, args, result: Tensor) -> Tensor:
    """`x.eq_(y)` on a tensor in a graph: torch keeps it in the graph with a zero gradient
    (node EqBackward1 for a tensor `y`, EqBackward0 for a number)."""
    other = args[0] if args else None
    inputs = (self, other) if isinstance(other, Tensor) else (self,)
    node_name = name[:-1].capitalize() + ("Backward1" if isinstance(other, Tensor) else "Backward0")
    rule = Rule(node_name, lambda ctx, g: tuple(v_zeros_like(g) for _ in ctx.needs), ("self", "other"))
    return record(rule, inputs, result._data, result.dtype)


# ---- in-place ops without an out-of-place twin --------------------------------------

def _record_own(self: Tensor, rule: Rule, inputs: tuple, data, dt, **attrs) -> Tensor:
    """`record` for an in-place op without an out-of-place twin: torch records it even into an
    integral tensor (which `record` refuses out of place), as `inplace_method` does."""
    outer, Written.tensor = Written.tensor, self
    try:
        return record(rule, inputs, data, dt, **attrs)
    finally:
        Written.tensor = outer


_ZERO = Rule("ZeroBackward0", lambda ctx, g: (v_zeros_like(g),))
_FILL = Rule("FillBackward2", lambda ctx, g: (v_zeros_like(g),))
_FILL_TENSOR = Rule("FillBackward3", lambda ctx, g: (v_zeros_like(g), g.sum() if ctx.needs[1] else None),
                    ("self", "value"))


def zero_(self: Tensor) -> Tensor:
    """Fill with zeros in place."""
    check_writable(self, overlap_allowed=True)
    return write_result(self, _record_own(self, _ZERO, (self,), np.zeros_like(self._data), self.dtype))


def fill_(self: Tensor, value) -> Tensor:
    """Fill with a number (or a 0-d tensor) in place."""
    check_writable(self, value, overlap_allowed=True)
    if isinstance(value, Tensor):
        if value.ndim:
            raise RuntimeError(
                f"fill_ only supports 0-dimension value tensor but got tensor with {value.ndim} dimensions.")
        # NOTE: torch fills from a tensor by copy_, which refuses an expanded tensor (a number
        # fills it); so does setitem, which makes its value a tensor.
        check_no_internal_overlap(self._data)
        with _errstate():   # NOTE: a 0-d value is cast silently, as copy_ (nan into int64 is its minimum)
            data = np.full(self._data.shape, value._data, dtype=self.dtype.np)
        return write_result(self, _record_own(self, _FILL_TENSOR, (self, value), data, self.dtype))
    from ._ops_index import _fill_value   # circular: indexing writes through in-place ops
    # NOTE: a number is converted with torch's overflow checks (nan into int64, 1e300 into
    # float32 raise), not cast with numpy's warning (campaign seed 18).
    data = np.full(self._data.shape, _fill_value(value, self.dtype), dtype=self.dtype.np)
    return write_result(self, _record_own(self, _FILL, (self,), data, self.dtype))


_COPY_ = Rule("torch::autograd::CopyBackwards",
              lambda ctx, g: (v_zeros_like(g) if ctx.needs[0] else None, g if ctx.needs[1] else None),
              ("self", "src"))


def copy_(self: Tensor, other: Tensor, non_blocking: bool = False) -> Tensor:
    """Copy `other` (broadcast to this tensor's shape, converted to its dtype) into this tensor."""
    src = other
    if not isinstance(src, Tensor):
        # NOTE: torch takes a number as a 0-d tensor (scalar_to_tensor: a float is a double).
        src = _scalar_tensor(src, _dtype.wrapped_number_dtype(src))
    # NOTE: torch's copy_ returns before its kernel (and the kernel's overlap checks) when src
    # is the very memory of self: the same start, sizes, strides and dtype (setitem of a tensor
    # into its own expansion, x.expand(4, 2, 3)[:] = x: campaign seed 24).
    a, b = self._data, src._data
    unchanged = (a.shape == b.shape and a.strides == b.strides and a.dtype == b.dtype
                 and a.__array_interface__["data"][0] == b.__array_interface__["data"][0])
    check_writable(self, src, differentiable=self.dtype.is_floating_point, overlap_allowed=unchanged)
    if unchanged:
        data = a.copy()
        if not self.dtype.is_floating_point:
            return write_result(self, Tensor._make(data, self.dtype), unchanged=True)
        return write_result(self, record(_COPY_, (self, src), data, self.dtype), unchanged=True)
    _assert_no_overlap(self._data, src._data, partial_only=True)
    shape = _broadcast_shape(self._data.shape, src._data.shape)
    if shape != self._data.shape:
        raise RuntimeError(f"output with shape {list(self.shape)} doesn't match the broadcast shape {list(shape)}")
    with _errstate():   # (overflowing the tensor's dtype to inf silently, as torch)
        data = np.broadcast_to(src._data, shape).astype(self.dtype.np)
    if src.dtype is self.dtype and _reads_what_it_writes(self, [src]):
        data = _in_iterator_order(_copied, self, (src,), {})
    if not self.dtype.is_floating_point:   # NOTE: torch records a copy into a differentiable dtype only
        return write_result(self, Tensor._make(data, self.dtype))
    return write_result(self, record(_COPY_, (self, src), data, self.dtype))


def _copied(self: Tensor, src: Tensor) -> Tensor:
    """copy_'s kernel on elements (`_in_iterator_order`)."""
    return src


def _index_put_backward(ctx, g):
    """`x[index] = value` (index_put_): the gradient with the written part zeroed, and that part for `value`."""
    return (v_put_flat(g, ctx.index, 0) if ctx.needs[0] else None,
            v_take_flat(g, ctx.index) if ctx.needs[1] else None)


# NOTE: an index with tensors (advanced indexing, masks) is torch's index_put_, whose node
# saves the indices: a second backward without retain_graph raises.
_INDEX_PUT = Rule("IndexPutBackward0", _index_put_backward, ("self", "value"))


def __setitem__(self: Tensor, index, value) -> None:
    """`x[index] = value`: an in-place write of a number or a tensor broadcast to the indexed part.

    NOTE: as torch's set_item: a basic index (ints, slices, None, Ellipsis) writes into the
    view `x[index]` (copy_, or fill_ for a 0-d value into a larger part), so the base records
    CopySlices; an index of only whole slices and Ellipsis writes into `x` itself; any other
    index is index_put_ (IndexPutBackward0).
    """
    key = _numpy_index(index)
    value_tensor = value if isinstance(value, Tensor) else _scalar_tensor(value, _dtype.result_type([self], [value]))
    if _is_basic(key):
        region = self if _writes_whole(index, self._data.shape) else self[index]
        shape, src_shape = region._data.shape, value_tensor._data.shape
        if shape == src_shape:
            copy_(region, value_tensor)
        elif not src_shape:
            fill_(region, value_tensor)
        else:
            from ._ops_shape import _expand, _expand_shape   # circular: shape ops import the in-place ones
            # NOTE: torch's copy_to views the value without its leading 1-sized dims, then expands
            # it (expand's errors; ViewBackward0 and ExpandBackward0 in the graph), and copies
            # the expanded view: its stride 0 is a layout torch's overlap check gives up on
            # (campaign seed 24: v.expand(4, 2, 3)[0:] = v ran in torch, the engine refused).
            src = _reshape(value_tensor, _without_leading_ones(src_shape))
            copy_(region, _expand(src, _expand_shape(src, shape)))
        return
    split = _split_basic(index if isinstance(index, tuple) else (index,))
    if split is not None and not _writes_whole(split[0], self._data.shape):
        # NOTE: torch applies the ints, slices and Nones first (a view), then index_put_ on
        # that view, so the base records CopySlices around IndexPutBackward0.
        __setitem__(self[split[0]], split[1], value)
        return
    from ._ops_index import _count_specified_dims   # circular: indexing imports the in-place ops
    check_writable(self, value, overlap_allowed=True)
    # NOTE: torch's set_item views the value without its leading 1-sized dims before index_put_
    # (ViewBackward0 in the graph; fuzzer finding: a (1, 1) value written through a mask got a
    # gradient of the mask's count of elements, which cannot be summed to (1, 1) directly).
    stripped = _without_leading_ones(value_tensor._data.shape)
    if stripped != value_tensor._data.shape:
        value_tensor = _reshape(value_tensor, stripped)
    parts = index if isinstance(index, tuple) else (index,)
    by_mask = _fills_by_mask(parts, value_tensor)
    # NOTE: index_put_ writes into an expanded tensor with a warning (after Python's count of
    # the indices), then masked_fill_ warns too where it takes over.
    overlapping = has_internal_overlap(self._data) and _count_specified_dims(parts) <= self.ndim
    if overlapping:
        overlap_warning("index_put_", "tensor[indices] = tensor")
    index_tensors = [i for i in parts if isinstance(i, Tensor)]
    if not by_mask and _count_specified_dims(parts) <= self.ndim:
        # NOTE: torch's index_put_ refuses any overlap of self with the value or an index
        # before it reads the indices (bounds, mask shapes), unless masked_fill_ takes over (it
        # reads the value as a number first); too many indices are refused before, by indexing.
        # (campaign seed 23: eye(0)[x] = itself raised the bounds error in the engine)
        for other in ([value] if isinstance(value, Tensor) else []) + index_tensors:
            _assert_no_overlap(self._data, other._data, partial_only=False)
    data = self._data.copy()
    try:
        target = data[key].shape
    except IndexError as e:
        # NOTE: torch refuses a bad index (out of bounds, mask shape, too many indices) in
        # index_put_ with the words of indexing: let the engine's getitem raise them.
        self.detach()[index]
        raise IndexError(str(e)) from None
    if overlapping and by_mask:
        overlap_warning("masked_fill_", "tensor[mask] = scalar")
    src = _as(value_tensor, self.dtype)
    try:
        src = np.broadcast_to(src, target)
    except ValueError:
        raise RuntimeError(f"shape mismatch: value tensor of shape {list(src.shape)} cannot be "
                           f"broadcast to indexing result of shape {list(target)}") from None
    if isinstance(value, Tensor) and value.dtype is not self.dtype and not by_mask:
        raise RuntimeError(f"Index put requires the source and destination dtypes match, got "
                           f"{self.dtype.scalar_name} for the destination and {value.dtype.scalar_name} for the source.")
    data[key] = src
    positions = np.arange(data.size).reshape(data.shape)[key]   # the flat indices written
    if overlapping:
        data = aliased_write(self._data, data, positions)
    result = _record_own(self, _INDEX_PUT, (self, value_tensor), data, self.dtype, index=positions)
    if result.grad_fn is not None:
        for n, t in enumerate(index_tensors):
            save_for_backward(result, f"indices{n}", t)
    write_result(self, result)


def _split_basic(parts: tuple):
    """An index with tensors as (its basic part, which torch applies first as a view; the
    index left for index_put_ on that view), or None for parts this does not cover
    (sequences, Python bools, 0-d tensors), which index the tensor itself."""
    view, rest = [], []
    for p in parts:
        if isinstance(p, Tensor) and p.ndim and p.dtype in (_dtype.int64, _dtype.bool_):
            view += [slice(None)] * (p.ndim if p.dtype is _dtype.bool_ else 1)
            rest.append(p)
        elif p is None or isinstance(p, slice):
            view.append(p)
            rest.append(slice(None))
        elif p is Ellipsis:
            view.append(p)
            rest.append(p)
        elif _is_plain_int(p):
            view.append(p)
        else:
            return None
    return tuple(view), tuple(rest)


def _fills_by_mask(parts: tuple, value: Tensor) -> bool:
    """NOTE: torch's index_put_ with one bool mask and a one-element value is masked_fill_
    with value.item(), which converts any dtype; other index_put_s require the value's dtype
    to be the tensor's."""
    advanced = [p for p in parts if not (p is None or p is Ellipsis or isinstance(p, slice) or _is_plain_int(p))]
    return (value._data.size == 1 and len(advanced) == 1 and isinstance(advanced[0], Tensor)
            and advanced[0].dtype is _dtype.bool_)


def _is_plain_int(p) -> bool:
    return isinstance(p, (int, np.integer)) and not isinstance(p, (bool, np.bool_))


def _without_leading_ones(shape: tuple) -> tuple:
    return shape[next((i for i, n in enumerate(shape) if n != 1), len(shape)):]


def _writes_whole(index, shape: tuple) -> bool:
    """Whether a basic index is only Ellipsis and slices that keep their whole dim.

    NOTE: torch's set_item skips a slice with start 0 (as written: -size is not 0), step 1 and
    stop >= the dim's size, even a lone one (`x[0:] = v` fills `x` itself: FillBackward3).
    """
    from ._ops_index import _slice_bounds   # circular: indexing imports the in-place ops
    parts = index if isinstance(index, tuple) else (index,)
    if not all(p is Ellipsis or isinstance(p, slice) for p in parts):
        return False
    # Slices before the first Ellipsis index the leading dims, the others the trailing dims.
    ellipsis = next((i for i, p in enumerate(parts) if p is Ellipsis), len(parts))
    leading = parts[:ellipsis]
    trailing = [p for p in parts[ellipsis:] if p is not Ellipsis]
    if len(leading) + len(trailing) > len(shape):
        return False   # too many indices: the view `x[index]` raises torch's error
    dims = [*range(len(leading)), *range(len(shape) - len(trailing), len(shape))]
    for dim, p in zip(dims, [*leading, *trailing]):
        start, stop, step = _slice_bounds(p)
        if not (start == 0 and step == 1 and stop >= shape[dim]):
            return False
    return True


def _is_basic(key) -> bool:
    """A numpy key of ints, slices, None and Ellipsis only (its result is a view)."""
    items = key if isinstance(key, tuple) else (key,)
    return all(isinstance(k, (int, slice, type(None), type(Ellipsis))) and not isinstance(k, bool) for k in items)


def _numpy_index(index):
    """An index expression with engine tensors replaced by their arrays."""
    if isinstance(index, tuple):
        return tuple(_numpy_index(i) for i in index)
    if isinstance(index, Tensor):
        return index._data
    if isinstance(index, list):
        return [_numpy_index(i) for i in index]
    return index
