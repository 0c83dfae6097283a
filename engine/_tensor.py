"""The Tensor class: numpy storage plus the autograd metadata torch keeps."""
from __future__ import annotations

import numbers
import warnings

import numpy as np

from . import _dtype
from ._autograd import AccumulateGrad, _GradMode, run_backward
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

    __slots__ = ("_data", "dtype", "_requires_grad", "grad_fn", "_grad", "_acc", "__weakref__")
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

    def _init(self, data, dt, requires_grad=False, grad_fn=None):
        self._data = data
        self.dtype = dt
        self._requires_grad = requires_grad
        self.grad_fn = grad_fn
        self._grad = None
        self._acc = None

    @classmethod
    def _make(cls, data: np.ndarray, dt: _dtype_cls, requires_grad=False, grad_fn=None) -> "Tensor":
        t = object.__new__(cls)
        t._data = data
        t.dtype = dt
        t._requires_grad = requires_grad
        t.grad_fn = grad_fn
        t._grad = None
        t._acc = None
        return t

    # ---- metadata -----------------------------------------------------------------
    @property
    def shape(self) -> Size:
        return Size(self._data.shape)

    def size(self, dim: int | None = None):
        if dim is None:
            return Size(self._data.shape)
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

    def is_floating_point(self) -> bool:
        return self.dtype.is_floating_point

    # ---- autograd metadata ----------------------------------------------------------
    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

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
        if self.grad_fn is not None:
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

    def _accumulator(self) -> AccumulateGrad:
        """The leaf's AccumulateGrad node (one per leaf, as torch keeps it)."""
        if self._acc is None:
            self._acc = AccumulateGrad(self)
        return self._acc

    def _edge(self):
        """The (node, input_nr) pair a consumer of this tensor links to."""
        if self.grad_fn is not None:
            return (self.grad_fn, 0)
        if self._requires_grad:
            return (self._accumulator(), 0)
        return (None, 0)

    @property
    def data(self) -> "Tensor":
        return Tensor._make(self._data, self.dtype)

    @data.setter
    def data(self, value: "Tensor"):
        self._data = value._data
        self.dtype = value.dtype

    def detach(self) -> "Tensor":
        """A tensor sharing this one's storage, outside the graph."""
        return Tensor._make(self._data, self.dtype)

    def _detached_copy(self) -> "Tensor":
        return Tensor._make(self._data.copy(), self.dtype)

    # ---- conversions -------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        if self._requires_grad:
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
        return self._data

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
                f"Boolean value of Tensor with more than one value is ambiguous")
        return bool(self._data.reshape(()).item())

    def __index__(self):
        if self.dtype.category == 2 or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def to(self, dtype: _dtype_cls, copy: bool = False) -> "Tensor":
        from ._ops import _to
        if not isinstance(dtype, _dtype_cls):
            raise NotImplementedError(f"Tensor.to() supports a dtype argument only, got {dtype!r}")
        if dtype is self.dtype and not copy:
            return self
        return _to(self, dtype)

    def float(self) -> "Tensor":
        return self.to(_dtype.float32)

    def double(self) -> "Tensor":
        return self.to(_dtype.float64)

    # ---- autograd --------------------------------------------------------------------
    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate d(self)/d(leaf) into every leaf's `.grad`, as torch.Tensor.backward."""
        if inputs is not None:
            raise NotImplementedError("backward(inputs=...) is not supported yet")
        if isinstance(gradient, (list, tuple)):
            # NOTE: torch reads a sequence as one gradient per output; there is one output.
            gradient = gradient[0] if gradient else None
        if gradient is not None and not isinstance(gradient, Tensor):
            raise TypeError(f"gradients can be either Tensors or None, but got {type(gradient).__name__}")
        if gradient is not None and gradient.shape != self.shape:
            raise RuntimeError(
                f"Mismatch in shape: grad_output[0] has a shape of {gradient.shape} and "
                f"output[0] has a shape of {self.shape}.")
        if not self._requires_grad:
            raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
        if gradient is None:
            if self._data.size != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            gradient = Tensor._make(np.ones(self._data.shape, self.dtype.np), self.dtype)
        elif gradient.dtype is not self.dtype:
            gradient = gradient.to(self.dtype)
        if retain_graph is None:
            retain_graph = create_graph
        run_backward((self,), (gradient,), retain_graph=retain_graph, create_graph=create_graph)

    def zero_(self) -> "Tensor":
        if self._requires_grad and self.grad_fn is None and _GradMode.enabled:
            raise RuntimeError(
                "a leaf Variable that requires grad is being used in an in-place operation.")
        self._data[...] = 0
        return self

    # ---- printing ---------------------------------------------------------------------
    def __repr__(self) -> str:
        from ._format import format_tensor
        suffixes = []
        if self.grad_fn is not None:
            suffixes.append(f"grad_fn=<{self.grad_fn.name()}>")
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
        array = data.copy()
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
    if dtype is not None:
        dt = dtype             # convert once, from the Python values, to keep float64 precision
    return np.array(data, dtype=dt.np), dt


def _check_nested(data, dim, kinds):
    """Validate a nested sequence the way torch does and collect the Python number kinds."""
    if isinstance(data, Tensor):
        if data.ndim:
            raise NotImplementedError("engine.tensor() of a list of tensors is not supported; use stack")
        kinds.add(float if data.dtype.is_floating_point else int if data.dtype.category else bool)
        return
    if isinstance(data, (bool, np.bool_)):
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
    if not isinstance(data, (list, tuple)):
        raise TypeError(f"Could not infer dtype of {type(data).__name__}")
    if data and isinstance(data[0], (list, tuple)):
        length = len(data[0])
        for item in data:
            if not isinstance(item, (list, tuple)):
                raise TypeError("not a sequence")
            if len(item) != length:
                raise ValueError(f"expected sequence of length {length} at dim {dim + 1} (got {len(item)})")
    for item in data:
        _check_nested(item, dim + 1, kinds)
