"""The Tensor class: numpy storage plus the autograd metadata torch keeps."""
from __future__ import annotations

import itertools
import numbers
import warnings
import weakref

import numpy as np

from . import _dtype, _memory, _zerotensor
from ._autograd import AccumulateGrad, _GradMode
from ._dtype import dtype as _dtype_cls

_NON_LEAF_GRAD_WARNING = (
    "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its .grad "
    "attribute won't be populated during autograd.backward(). If you indeed want the .grad "
    "field to be populated for a non-leaf Tensor, use .retain_grad() on the non-leaf Tensor. "
    "If you access the non-leaf Tensor by mistake, make sure you access the leaf Tensor "
    "instead. See github.com/pytorch/pytorch/pull/30531 for more information.")


class Size(tuple):
    """torch.Size: a tuple of ints that prints as `torch.Size([2, 3])`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"torch.Size({list(self)!r})"

    __str__ = __repr__

    def numel(self) -> int:
        return int(np.prod(self, dtype=np.int64))


# Tensors created in inference mode, which autograd refuses to save for backward, by id
# (a WeakSet would compare tensors with ==, which is elementwise).
INFERENCE_TENSORS: "weakref.WeakValueDictionary[int, Tensor]" = weakref.WeakValueDictionary()


def is_inference_tensor(t: "Tensor") -> bool:
    return INFERENCE_TENSORS.get(id(t)) is t


class RemovableHandle:
    """The handle `register_hook` returns: `remove()` unregisters the hook."""

    _ids = itertools.count()

    def __init__(self, hooks: dict):
        self.id = next(RemovableHandle._ids)
        self._hooks = hooks

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def _require_float_for_grad(dt: _dtype_cls, legacy_message: bool = False):
    if not dt.is_floating_point:
        raise RuntimeError(
            "only Tensors of floating point dtype can require gradients" if legacy_message else
            "Only Tensors of floating point and complex dtype can require gradients")


class Tensor:
    """A multi-dimensional array that records the ops applied to it, as torch.Tensor.

    `Tensor([...])` is torch's legacy constructor (always float32); prefer
    `engine.tensor(data, dtype=None, requires_grad=False)`.
    """

    # _vc: the version counter, a one-element list shared by a tensor and its views
    # (and detached aliases), bumped by every in-place op. _base: the tensor this one
    # is a view of, or None. _view_version: for a view, the version its grad_fn was
    # recorded at (torch's attr_version); _view_creation: None, "no_grad" for a view made
    # under no_grad, or the output index of a view made by a multi-output op (unbind, split).
    __slots__ = ("_data", "dtype", "_requires_grad", "_grad_fn", "_grad", "_acc", "_vc", "_base",
                 "_view_version", "_view_creation", "__weakref__")
    __array_priority__ = 1000   # make `ndarray * Tensor` defer to Tensor.__rmul__

    def __init__(self, *args):
        if len(args) == 1 and not isinstance(args[0], numbers.Integral):
            data = np.asarray(args[0], dtype=np.float32)
        elif all(isinstance(a, numbers.Integral) for a in args):
            # NOTE: torch.Tensor(2, 3) allocates uninitialized memory; zeros are a valid instance.
            data = np.zeros(args, dtype=np.float32)
        else:
            raise TypeError("Tensor(): expected a sequence of numbers or sizes as ints")
        self._init(data, _dtype.float32)

    @classmethod
    def _make(cls, data: np.ndarray, dt: _dtype_cls, requires_grad=False, grad_fn=None) -> "Tensor":
        """A tensor around `data` (no copy, no checks): the engine's own constructor."""
        t = _make_tensor(data, dt, requires_grad)
        t._grad_fn = grad_fn
        return t

    def _init(self, data: np.ndarray, dt: _dtype_cls) -> None:
        """Set up a tensor that a constructor made (`Tensor(...)`, `Parameter(...)`) as `_make` does."""
        made = Tensor._make(data, dt)
        for name in _FIELDS:
            setattr(self, name, getattr(made, name))
        if _GradMode.inference:
            INFERENCE_TENSORS[id(self)] = self

    # ---- metadata -----------------------------------------------------------------
    @property
    def shape(self) -> Size:
        return Size(self._data.shape)

    def size(self, dim: int | None = None):
        if dim is None:
            return Size(self._data.shape)
        if not self._data.ndim:   # NOTE: torch wraps no dim of a 0-d tensor here
            raise IndexError(f"Dimension specified as {dim} but tensor has no dimensions")
        return self._data.shape[_wrap_dim(dim, self._data.ndim)]

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def dim(self) -> int:
        return self._data.ndim

    def numel(self) -> int:
        return self._data.size

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def is_inference(self) -> bool:
        return is_inference_tensor(self)

    def is_floating_point(self) -> bool:
        return self.dtype.is_floating_point

    # ---- autograd metadata ----------------------------------------------------------
    @property
    def grad_fn(self):
        if self._base is not None and self._vc[0] != self._view_version:
            # NOTE: torch regenerates the node of a view whose base (or another view of it)
            # was modified in place since the view's node was recorded, when it is read.
            from ._ops_inplace import refresh_view_node   # circular: in-place ops record nodes
            refresh_view_node(self)
        return self._grad_fn

    @grad_fn.setter
    def grad_fn(self, node):
        self._grad_fn = node
        self._view_version = self._vc[0]

    @property
    def requires_grad(self) -> bool:
        # NOTE: a view requires grad when its base does, as in torch.
        return self._requires_grad or (self._base is not None and self._base._requires_grad)

    @requires_grad.setter
    def requires_grad(self, value: bool):
        if self.grad_fn is not None:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables. If you want to use a "
                "computed variable in a subgraph that doesn't require differentiation use "
                "var_no_grad = var.detach()." if not value else
                "you can only change requires_grad flags of leaf variables.")
        if value:
            _require_float_for_grad(self.dtype)
        self._requires_grad = bool(value)

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if requires_grad and self.grad_fn is None:
            _require_float_for_grad(self.dtype, legacy_message=True)
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def grad(self):
        # NOTE: torch warns for a non-leaf without a gradient, leaf as its C++ is_leaf (see _node_unset).
        if self._grad is None and not self._node_unset() and not self.retains_grad:
            warnings.warn(_NON_LEAF_GRAD_WARNING, UserWarning, stacklevel=2)
        return self._grad

    @grad.setter
    def grad(self, value):
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f"assigned grad expected to be a Tensor or None but got grad of type {type(value).__name__}")
            if value.shape != self.shape:
                raise RuntimeError("assigned grad has data of a different size")
            if value.dtype is not self.dtype:
                raise RuntimeError("assigned grad has data of a different type")
        self._grad = value

    def _accumulator(self) -> AccumulateGrad | None:
        """The leaf's AccumulateGrad node; None for a view made under no_grad of a tensor that
        requires grad, which requires grad but accumulates nothing, as in torch. (A view of a
        tensor that does not, made to require grad itself, is a leaf like any other: fuzzer
        finding, arange(6.0).reshape(2, 3).requires_grad_() got no gradient.)

        NOTE: as torch's (a weak pointer in the tensor's autograd meta), the leaf refers to its
        accumulator weakly: the graphs that lead to it keep it alive, and the accumulator keeps
        the leaf. A strong reference would be a cycle, and a dead leaf and its `.grad` would
        wait for Python's cycle collector instead of going when the last reference does.
        One accumulator lives at a time, so every live graph reaches the same one.
        """
        acc = self._acc() if self._acc is not None else None
        if acc is None and (self._base is None or not self._base._requires_grad):
            acc = AccumulateGrad(self)
            self._acc = weakref.ref(acc)
        return acc

    def _edge(self):
        """The (node, input_nr) pair a consumer of this tensor links to."""
        if self.grad_fn is not None:
            return (self.grad_fn, 0)
        if self._requires_grad:
            return (self._accumulator(), 0)
        return (None, 0)

    @property
    def _version(self) -> int:
        return self._vc[0]

    @property
    def data(self) -> "Tensor":
        # NOTE: unlike detach(), .data does not share the version counter (torch's
        # documented way to modify values behind autograd's back).
        return Tensor._make(self._data, self.dtype)

    @data.setter
    def data(self, value: "Tensor"):
        self._data = value._data
        self.dtype = value.dtype

    def detach(self) -> "Tensor":
        """A tensor sharing this one's storage and version counter, outside the graph."""
        t = Tensor._make(self._data, self.dtype)
        t._vc = self._vc
        return t

    def detach_(self) -> "Tensor":
        """Detach this tensor from the graph in place: it becomes a leaf that does not require grad."""
        if self._base is not None:
            raise RuntimeError("Can't detach views in-place. Use detach() instead. If you are using "
                               "DistributedDataParallel (DDP) for training, and gradient_as_bucket_view "
                               "is set as True, gradients are views of DDP buckets, and hence detach_() "
                               "cannot be called on these gradients. To fix this error, please refer to "
                               "the Optimizer.zero_grad() function in torch/optim/optimizer.py as the solution.")
        self.grad_fn = None
        self._requires_grad = False
        return self

    def retain_grad(self) -> None:
        """Keep the gradient of this non-leaf tensor in `.grad` after backward."""
        if not self.requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self._node_unset():
            return
        self.grad_fn._retained = weakref.ref(self)

    def _node_unset(self) -> bool:
        """Whether the tensor is a leaf as torch's C++ `is_leaf` sees it: no node recorded, read
        without regenerating a view's node (Python's `is_leaf` reads `grad_fn`, which does).

        NOTE: a view of a base that did not require grad when the view was made, or a view made
        under no_grad, has no node until its `grad_fn` is read after its base was modified in
        place. Until then torch treats it as a leaf where it asks C++ `is_leaf`: retain_grad
        does nothing (even where reading grad_fn would raise), `.grad` does not warn, and an
        in-place op on it is refused as on a leaf that requires grad (fuzzer findings). A view of
        it made with grad mode on has a node of its own and retains its gradient."""
        return self._grad_fn is None

    @property
    def retains_grad(self) -> bool:
        if self._node_unset():   # a leaf never retains (see retain_grad)
            return False
        retained = self._grad_fn._retained   # (a regenerated node takes it over: refresh_view_node)
        return retained is not None and retained() is self

    def register_hook(self, hook) -> "RemovableHandle":
        """Call `hook(grad)` with this tensor's gradient during backward; a tensor it returns
        replaces the gradient. Returns a handle whose `remove()` unregisters the hook."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        node = self.grad_fn if self.grad_fn is not None else self._accumulator()
        if node is None:
            # NOTE: a view made under no_grad has neither node nor accumulator: torch accepts
            # the hook, and no gradient ever reaches it.
            return RemovableHandle({})
        if self.grad_fn is None:
            # NOTE: torch keeps a leaf's hooks in the tensor, so they outlive any one accumulator;
            # here they are the accumulator's, which the leaf now holds (see _accumulator).
            self._acc = _Held(node)
        if node._pre_hooks is None:
            node._pre_hooks = {}
        handle = RemovableHandle(node._pre_hooks)
        node._pre_hooks[handle.id] = hook
        return handle

    def _detached_copy(self) -> "Tensor":
        return Tensor._make(self._data.copy(), self.dtype)

    # ---- conversions -------------------------------------------------------------------
    def numpy(self, *, force: bool = False) -> np.ndarray:
        """The tensor's array (shared memory); `force`: of a tensor that requires grad or a
        ZeroTensor too (torch's force also copies off devices and resolves views, here none)."""
        if type(self._data) is _zerotensor.ZeroArray:
            if force:
                return self._data.copy()   # NOTE: torch's force materializes a ZeroTensor
            if not self._requires_grad:
                raise RuntimeError(_zerotensor.NUMPY_MESSAGE)
        if self._requires_grad and not force:
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
        return self._data

    def _is_zerotensor(self) -> bool:
        """Whether this is torch's efficient zero tensor (see _zerotensor): a gradient of sgn."""
        return type(self._data) is _zerotensor.ZeroArray

    def item(self):
        if self._data.size != 1:
            raise RuntimeError(
                f"a Tensor with {self._data.size} elements cannot be converted to Scalar")
        return self._data.reshape(()).item()

    def tolist(self):
        return self._data.tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        if self._data.size != 1:
            raise RuntimeError(
                "Boolean value of Tensor with more than one value is ambiguous")
        return bool(self._data.reshape(()).item())

    def __index__(self):
        if self.dtype.category == 2 or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    # ---- autograd --------------------------------------------------------------------
    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate d(self)/d(leaf) into every leaf's `.grad`, as torch.Tensor.backward."""
        api = _autograd_api or _load_autograd_api()
        if gradient is None and retain_graph is None and create_graph is False and inputs is None:
            api.backward_implicit(self)
        else:
            api.backward(self, gradient, retain_graph, create_graph, inputs=inputs)

    # ---- printing ---------------------------------------------------------------------
    def __repr__(self) -> str:
        from ._format import format_tensor
        suffixes = []
        if self.grad_fn is not None:
            suffixes.append(f"grad_fn=<{type(self.grad_fn).__name__}>")
        elif self._requires_grad:
            suffixes.append("requires_grad=True")
        return format_tensor(self._data, self.dtype.name, suffixes)

    __str__ = __repr__

    def __format__(self, spec):
        if self._data.ndim == 0 and spec:
            return format(self.item(), spec)
        return object.__format__(self, spec)

    def __hash__(self):
        return id(self)

    def __array__(self, dtype=None, copy=None):
        if self._requires_grad:
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
        return self._data if dtype is None else self._data.astype(dtype)


_new = object.__new__
_FIELDS = tuple(name for name in Tensor.__slots__ if name != "__weakref__")


class _Held:
    """A strong reference to a leaf's accumulator, called as the weak one it replaces is."""

    __slots__ = ("node",)

    def __init__(self, node):
        self.node = node

    def __call__(self):
        return self.node


def _make_tensor(data: np.ndarray, dt: _dtype_cls, requires_grad: bool) -> Tensor:
    """A Tensor around `data` (no copy, no checks), without a node: what every op's result
    starts as. (It runs once per op, so it sets the fields itself rather than call `_init`.)"""
    t = _new(Tensor)
    t._data = data
    t.dtype = dt
    t._requires_grad = requires_grad
    t._grad_fn = None
    t._grad = None
    t._acc = None
    t._vc = [0]
    t._base = None
    t._view_version = 0
    t._view_creation = None
    if _GradMode.inference:
        INFERENCE_TENSORS[id(t)] = t
    return t


class WrappedNumber:
    """A Python number taking part in an arithmetic op with a tensor (torch's "wrapped number").

    It holds the number as a 0-d array of the op's dtype and answers what `record` reads of
    an input that is outside the graph, at a fraction of a Tensor's cost. A node that saves
    it gives rules its array, and, in a create_graph backward, `as_tensor()`.
    """

    __slots__ = ("_data", "dtype")
    _requires_grad = False
    _base = None
    _grad_fn = None
    grad_fn = None
    _acc = None
    _vc = (0,)     # never modified in place: a saved wrapped number never fails the version check

    def __init__(self, data: np.ndarray, dt: _dtype_cls):
        self._data = data
        self.dtype = dt

    def as_tensor(self) -> Tensor:
        return Tensor._make(self._data.copy(), self.dtype)   # (a writable array of its own)


def _wrap_dim(dim: int, ndim: int) -> int:
    """Normalize a possibly negative dim, with torch's IndexError when out of range."""
    lo, hi = (-1, 0) if ndim == 0 else (-ndim, ndim - 1)
    if not lo <= dim <= hi:
        raise IndexError(f"Dimension out of range (expected to be in range of [{lo}, {hi}], but got {dim})")
    return dim % max(ndim, 1)


def tensor(data, dtype: _dtype_cls | None = None, requires_grad: bool = False) -> Tensor:
    """Build a tensor from (nested) Python numbers, a numpy array or a tensor, as torch.tensor."""
    if isinstance(data, Tensor):
        warnings.warn(
            "To copy construct from a tensor, it is recommended to use sourceTensor.detach().clone() "
            "or sourceTensor.detach().clone().requires_grad_(True), rather than torch.tensor(sourceTensor).",
            UserWarning, stacklevel=2)
        array = data._data.copy()
        dt = data.dtype
    elif isinstance(data, np.ndarray):
        dt = _dtype.from_numpy(data.dtype)
        array = _memory.empty(data.shape, data.dtype)   # a row-major copy, as torch's
        np.copyto(array, data)
    else:
        array, dt = _from_python(data, dtype)
    if dtype is not None:
        if not isinstance(dtype, _dtype_cls):
            raise TypeError(f"tensor(): argument 'dtype' must be torch.dtype, not {type(dtype).__name__}")
        if dtype is not dt:
            array = array.astype(dtype.np)
            dt = dtype
    if requires_grad:
        _require_float_for_grad(dt)
    return Tensor._make(array, dt, bool(requires_grad))


def _from_python(data, dtype=None):
    """numpy array and dtype (given, or inferred as torch does) for nested Python numbers."""
    kinds = set()
    _check_nested(data, 0, kinds)
    if float in kinds:
        dt = _dtype.float32
    elif int in kinds:
        dt = _dtype.int64
    elif bool in kinds:
        dt = _dtype.bool_
    else:
        dt = _dtype.float32    # empty: torch.tensor([]) is float32
    # NOTE: torch infers a numpy scalar's or a 0-d tensor's own dtype, and promotes the items' dtypes
    # (torch.tensor([1.0, np.float64(2)]) is float64; np.float64(0.5) alone too)
    typed = [kind for kind in kinds if isinstance(kind, _dtype_cls)]
    if typed:
        dt = dt if float in kinds or int in kinds or bool in kinds else None
        for kind in typed:
            dt = _dtype.promote(dt, kind)
    if dtype is not None:
        dt = dtype             # convert once, from the Python values, to keep float64 precision
    try:
        if dt is _dtype.float32 and float in kinds:
            # NOTE: torch converts a float beyond float32's range to inf without a warning (campaign seed 18).
            with np.errstate(over="ignore"):
                return np.array(data, dtype=dt.np), dt
        return np.array(data, dtype=dt.np), dt
    except (OverflowError, ValueError):
        if dt is not _dtype.int64:
            raise
        # NOTE: torch refuses an inf, a NaN or a number out of int64's range in the same words.
        raise RuntimeError("value cannot be converted to type int64 without overflow") from None


def _check_nested(data, dim, kinds):
    """Validate a nested sequence the way torch does and collect the Python number kinds."""
    if isinstance(data, (list, tuple)):   # first: the number checks below are ABC checks (slow on a list)
        _check_sequence(data, dim, kinds)
        return
    if isinstance(data, Tensor):
        if data.ndim:
            raise NotImplementedError("engine.tensor() of a list of tensors is not supported; use stack")
        kinds.add(data.dtype)
        return
    if isinstance(data, np.generic):   # a numpy scalar: its dtype (NotImplementedError if not the engine's)
        kinds.add(_dtype.from_numpy(data.dtype))
        return
    if isinstance(data, bool):
        kinds.add(bool)
        return
    if isinstance(data, numbers.Integral):
        kinds.add(int)
        return
    if isinstance(data, numbers.Real):
        kinds.add(float)
        return
    if isinstance(data, numbers.Complex):
        raise NotImplementedError("engine does not support complex tensors")
    raise TypeError(f"Could not infer dtype of {type(data).__name__}")


def _check_sequence(data, dim, kinds, shape=None):
    """`_check_nested` of a list or tuple at depth ``dim``; ``shape`` is the sides torch expects at each
    depth, read along the first elements (every sequence of a depth must have that depth's length)."""
    if shape is None:
        shape, item = [], data
        while isinstance(item, (list, tuple)):
            shape.append(len(item))
            item = item[0] if item else None
    if dim < len(shape) and len(data) != shape[dim]:
        raise ValueError(f"expected sequence of length {shape[dim]} at dim {dim} (got {len(data)})")
    if data and isinstance(data[0], (list, tuple)):
        for item in data:   # depth first, as torch's recursive_store
            if not isinstance(item, (list, tuple)):
                raise TypeError("not a sequence")
            _check_sequence(item, dim + 1, kinds, shape)
        return
    leaf_types = set(map(type, data))
    if leaf_types <= _PLAIN_NUMBERS:   # the common innermost list: its kinds at once
        kinds |= leaf_types
        return
    for item in data:
        _check_nested(item, dim + 1, kinds)


# Python number types that are their own kind in _check_nested (subclasses take the checks above).
_PLAIN_NUMBERS = frozenset((bool, int, float))


_autograd_api = None   # engine.autograd, imported on first backward (it imports this module)


def _load_autograd_api():
    global _autograd_api
    from . import autograd as _autograd_api
    return _autograd_api
