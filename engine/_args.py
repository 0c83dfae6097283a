"""torch's Python argument parser: the TypeErrors torch raises before an op runs.

torch binds every native op to Python through signatures written like
`logsumexp(Tensor input, IntArrayRef[1] dim, bool keepdim=False, *, Tensor out=None)`
(torch/csrc/utils/python_arg_parser.cpp). A call is matched against the op's
signatures in order; when none matches, torch raises a TypeError whose text
depends on what failed: a wrong type ("argument 'dim' (position 2) must be
tuple of ints, not NoneType"), a missing or extra argument, an unknown keyword,
or, when several signatures could have taken that many arguments, "received an
invalid combination of arguments" with every signature listed
(torch/csrc/utils/invalid_arguments.cpp). The engine declares its ops'
signatures in torch's syntax (`optable.SIGNATURES`) and `Parser` reproduces
those checks and messages, for the function form, the Tensor method form
(which does not count `self`, so positions are one lower) and in-place methods.

Only the checks are done here: the op receives the call unchanged, but for
keywords given by their numpy names (`axis=`), which it receives by torch's.
A call of plain values (a tensor, ints, a tuple of ints...) is accepted at a
glance (`Signature.fits`), so the common case costs little.
"""
from __future__ import annotations

import numbers
import os

import numpy as np

from ._dtype import dtype as _dtype
from ._tensor import Tensor

# Parser type -> the name torch prints for it.
_TYPE_NAMES = {"Tensor": "Tensor", "Scalar": "Number", "int64_t": "int", "SymInt": "int", "double": "float",
               "bool": "bool", "IntArrayRef": "tuple of ints", "SymIntArrayRef": "tuple of ints",
               "ScalarType": "torch.dtype", "c10::string_view": "str", "TensorList": "tuple of Tensors",
               "MemoryFormat": "torch.memory_format", "Layout": "torch.layout", "Device": "torch.device"}
_INT_LISTS = ("IntArrayRef", "SymIntArrayRef")
# NOTE: torch also takes some parameters by their numpy names (torch.sum(x, axis=0)).
_NUMPY_NAMES = {"dim": ("axis",), "keepdim": ("keepdims",), "input": ("x", "a", "x1"), "other": ("x2",)}


def type_name(value) -> str:
    """Python's tp_name of a value's type, as torch prints it ("float", "numpy.float64", "Tensor")."""
    if isinstance(value, Tensor):
        return "Tensor"
    if isinstance(value, _dtype):
        return "torch.dtype"
    cls = type(value)
    return cls.__name__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__name__}"


def _is_int(value) -> bool:
    """An int argument: a Python or numpy integer (not a bool), or an integral one-element tensor."""
    if isinstance(value, Tensor):
        return value.dtype.category == 1 and value._data.size == 1
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_int_item(value, first: bool) -> bool:
    """An element of an int list. NOTE: torch checks the first element's type while matching
    (a bool is refused there, a one-element bool tensor accepted) and reads the others with
    __index__ afterwards (a bool passes, a numpy bool does not)."""
    if isinstance(value, Tensor):
        return value.dtype.category < 2 and value._data.size == 1
    if first:
        return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    return isinstance(value, (int, np.integer)) and not isinstance(value, np.bool_)


def _check_int_list(p, value) -> bool:
    if isinstance(value, (tuple, list)):
        return not value or _is_int_item(value[0], True)
    return p.size > 0 and _is_int(value)   # IntArrayRef[N] also takes one int


def _check_tensor_list(p, value) -> bool:
    if not isinstance(value, (tuple, list)):
        return False
    for i, item in enumerate(value):
        if not isinstance(item, Tensor):   # NOTE: torch raises at once for such an element
            raise TypeError(f"expected Tensor as element {i} in argument {p.index}, but got {type_name(item)}")
    return True


def _is_number_tensor(value: Tensor) -> bool:
    return value.ndim == 0 and not value.requires_grad


# What each parameter type takes, as torch's FunctionParameter::check.
_CHECKS = {
    "Tensor": lambda p, value: isinstance(value, Tensor),
    # NOTE: a tensor passes for an int, a float or a number only when it is 0-d (and, for a
    # float or a number, does not require grad): torch.add(x, y, alpha=torch.tensor(2.)).
    "int64_t": lambda p, value: type(value) is int or (_is_int(value) and getattr(value, "ndim", 0) == 0),
    "bool": lambda p, value: value is True or value is False,
    "double": lambda p, value: (_is_number_tensor(value) if isinstance(value, Tensor)
                                else isinstance(value, (numbers.Real, np.number, np.bool_))),
    "Scalar": lambda p, value: (_is_number_tensor(value) if isinstance(value, Tensor)
                                else isinstance(value, (numbers.Number, np.number, np.bool_))),
    "IntArrayRef": _check_int_list,
    "ScalarType": lambda p, value: isinstance(value, _dtype),
    "c10::string_view": lambda p, value: isinstance(value, str),
    "TensorList": _check_tensor_list,
    "MemoryFormat": lambda p, value: False,   # the engine has no memory formats
    "Layout": lambda p, value: False,         # nor layouts (None only)
    "Device": lambda p, value: isinstance(value, str) or _is_int(value),   # a name or an index
}
_CHECKS["SymInt"], _CHECKS["SymIntArrayRef"] = _CHECKS["int64_t"], _CHECKS["IntArrayRef"]

# NOTE: the Tensor parameters of these ops also take a Python number (torch.add(2, x));
# torch's should_allow_numbers_as_tensors (python_arg_parser.cpp).
_NUMBERS_AS_TENSORS = frozenset(f"{name}{suffix}" for name in (
    "add", "div", "divide", "mul", "multiply", "sub", "subtract", "true_divide", "floor_divide")
    for suffix in ("", "_")) | {"to", "copy_"}


def _check_tensor_or_number(p, value) -> bool:
    return isinstance(value, (Tensor, numbers.Number, np.number, np.bool_))


def _plain_tensor_or_number(p, value) -> bool:
    return type(value) is Tensor or type(value) is float or type(value) is int or type(value) is bool

# The plain values of each type (exact Python types, every list element an int): a call made
# of them fits where its count and names do, and needs no further reading (`Signature.fits`).
_PLAIN = {
    "Tensor": lambda p, value: type(value) is Tensor,
    "int64_t": lambda p, value: type(value) is int,
    "bool": lambda p, value: value is True or value is False,
    "double": lambda p, value: type(value) is float or type(value) is int,
    "Scalar": lambda p, value: type(value) is float or type(value) is int or type(value) is bool,
    "IntArrayRef": lambda p, value: ((type(value) is tuple or type(value) is list)
                                     and all(type(item) is int for item in value)) or (
                                         p.size > 0 and type(value) is int),
    "ScalarType": lambda p, value: isinstance(value, _dtype),
    "c10::string_view": lambda p, value: type(value) is str,
    "TensorList": lambda p, value: ((type(value) is tuple or type(value) is list)
                                    and all(type(item) is Tensor for item in value)),
    "MemoryFormat": lambda p, value: False,
    "Layout": lambda p, value: False,
    "Device": lambda p, value: type(value) is str,
}
_PLAIN["SymInt"], _PLAIN["SymIntArrayRef"] = _PLAIN["int64_t"], _PLAIN["IntArrayRef"]


class Param:
    """One parameter of a signature, parsed from torch's syntax (`IntArrayRef[1]? dim=None`)."""

    __slots__ = ("name", "type", "size", "allow_none", "optional", "default", "keyword_only", "aliases", "index",
                 "check", "plain")

    def __init__(self, text: str, keyword_only: bool):
        decl, _, default = text.partition("=")
        kind, _, self.name = decl.rpartition(" ")
        self.allow_none = kind.endswith("?") or default == "None"
        kind = kind.rstrip("?")
        self.size = 0
        if kind.endswith("]"):
            kind, _, size = kind[:-1].partition("[")
            self.size = int(size)
        if kind not in _TYPE_NAMES:
            raise ValueError(f"unknown parameter type {kind!r} in {text!r}")
        self.type = kind
        self.optional = bool(default)
        self.default = default
        self.keyword_only = keyword_only
        self.aliases = _NUMPY_NAMES.get(self.name, ())
        self.check = _CHECKS[kind]
        self.plain = _PLAIN[kind]
        self.index = 0   # the parameter's place in its signature, set by Signature

    @property
    def type_name(self) -> str:
        return _TYPE_NAMES[self.type]

    def __str__(self) -> str:
        return f"{self.type_name} {self.name}" + (f" = {self.default}" if self.optional else "")


def _copy(p: Param) -> Param:
    copy = object.__new__(Param)
    for slot in Param.__slots__:
        setattr(copy, slot, getattr(p, slot))
    return copy


class Signature:
    """One of an op's signatures: its parameters and the matching of a call against them."""

    __slots__ = ("name", "params", "min_args", "max_args", "max_pos_args", "varargs", "deprecated", "by_name",
                 "required", "positional_required", "function_only")

    def __init__(self, name: str, params: list, deprecated: bool = False, function_only: bool = False):
        self.name = name
        if name in _NUMBERS_AS_TENSORS:
            params = [_copy(p) for p in params]
            for p in params:
                if p.type == "Tensor":
                    p.check, p.plain = _check_tensor_or_number, _plain_tensor_or_number
        self.params = params
        for index, p in enumerate(params):
            p.index = index
        self.by_name = {p.name: p for p in params}
        self.required = tuple(p for p in params if not p.optional)
        # How many positional arguments a call without keywords needs.
        self.positional_required = max((p.index + 1 if not p.keyword_only else len(params) + 1
                                        for p in self.required), default=0)
        # A deprecated overload ("...)|deprecated") is tried last and never listed in errors.
        self.deprecated = deprecated
        # A function-only overload ("...)|function", torch.mm's out_dtype) has no method form.
        self.function_only = function_only
        self.min_args = sum(not p.optional for p in params)
        self.max_args = len(params)
        self.max_pos_args = sum(not p.keyword_only for p in params)
        # A single positional int list also takes its ints as varargs: x.permute(1, 0). NOTE: not
        # one that takes a lone int (IntArrayRef[1]): torch tries varargs only where the first
        # int does not fit, so x.var(0, 0) has extra arguments.
        self.varargs = self.max_pos_args == 1 and params[0].type in _INT_LISTS and not params[0].size

    @classmethod
    def parse(cls, text: str) -> "Signature":
        name, _, rest = text.partition("(")
        rest, _, suffix = rest.partition(")")
        params, keyword_only = [], False
        for item in filter(None, rest.split(", ")):
            if item == "*":
                keyword_only = True
            else:
                params.append(Param(item, keyword_only))
        return cls(name, params, suffix == "|deprecated", suffix == "|function")

    @property
    def has_method(self) -> bool:
        """Whether the Tensor method has this signature: not where `self` is a number
        (torch.pow(2, x) has no method form), nor where it is marked function-only."""
        return not self.function_only and bool(self.params) and self.params[0].type == "Tensor"

    def method(self) -> "Signature":
        """The Tensor method's signature: without `input` (bound as self) and `out`."""
        return Signature(self.name, [_copy(p) for p in self.params[1:] if p.name != "out"], self.deprecated)

    def __str__(self) -> str:
        parts, keyword = [], False
        for p in self.params:
            if p.keyword_only and not keyword:
                parts.append("*")
                keyword = True
            parts.append(str(p))
        return "(" + ", ".join(parts) + ")"

    def fits(self, args: tuple, kwargs: dict) -> bool:
        """Whether the call fits at a glance: plain values in their places, by torch's names
        (the common case, which is decided here without `match`)."""
        nargs = len(args)
        if nargs > self.max_pos_args:   # x.permute(1, 0)
            return self.varargs and not kwargs and all(type(value) is int for value in args)
        for p, value in zip(self.params, args):
            if not p.plain(p, value) and not (value is None and p.allow_none):
                return False
        if not kwargs:
            return nargs >= self.positional_required
        for key, value in kwargs.items():
            p = self.by_name.get(key)
            if p is None or p.index < nargs or not (p.plain(p, value) or (value is None and p.allow_none)):
                return False
        for p in self.required:
            if p.index >= nargs and p.name not in kwargs:
                return False
        return True

    def match(self, args: tuple, kwargs: dict, raise_error: bool):
        """(the int lists of the call, to `unpack`; the keywords given by their numpy names) if
        it fits, else None; with `raise_error`, torch's TypeError where it does not fit."""
        nargs = len(args)
        name = self.name
        varargs = self.varargs and nargs >= 1 and _is_int(args[0])
        if nargs > self.max_pos_args and not varargs:
            return self._extra_args(nargs) if raise_error else None
        position = 0
        used_kwargs = 0
        lists, renamed = [], []
        for i, p in enumerate(self.params):
            keyword = False
            if position < nargs:
                if p.keyword_only:
                    return self._extra_args(nargs) if raise_error else None
                value, present = args[position], True
            else:
                keyword = True
                present = False
                if kwargs:
                    if p.name in kwargs:
                        value, present = kwargs[p.name], True
                    else:
                        for alias in p.aliases:
                            if alias in kwargs:
                                value, present = kwargs[alias], True
                                renamed.append((alias, p.name))
                                break
            if not present:
                if p.optional:
                    continue
                if raise_error:
                    missing = [f'"{q.name}"' for q in self.params[i:] if not q.optional]
                    raise TypeError(f"{name}() missing {len(missing)} required positional "
                                    f"argument{'s' if len(missing) == 1 else ''}: {', '.join(missing)}")
                return None
            if keyword:
                used_kwargs += 1
            if value is not None or not p.allow_none:
                ok = p.check(p, value)
                if not ok and varargs and position == 0:
                    lists.append((p, args))     # x.permute(1, 0): the positional ints are the list
                    position = nargs
                    continue
                if not ok:
                    if raise_error:
                        # the offending element: an int list's first (the only one checked here)
                        failed = 0 if p.type in _INT_LISTS and isinstance(value, (tuple, list)) else -1
                        self._wrong_type(p, value, None if keyword else position + 1, failed)
                    return None
                if p.type in _INT_LISTS and isinstance(value, (tuple, list)):
                    lists.append((p, value))
            if not keyword:
                position += 1
        if used_kwargs < len(kwargs):
            if raise_error:
                names = [p.name for p in self.params]   # NOTE: numpy names count as unexpected here
                for key in kwargs:
                    if key not in names:
                        raise TypeError(f"{name}() got an unexpected keyword argument '{key}'")
                    if names.index(key) < nargs:
                        raise TypeError(f"{name}() got multiple values for argument '{key}'")
            return None
        return lists, renamed

    def _wrong_type(self, p: Param, value, position, failed: int):
        if position is None:   # NOTE: torch names no position, nor the element, for a keyword
            raise TypeError(f"{self.name}(): argument '{p.name}' must be {p.type_name}, not {type_name(value)}")
        if failed >= 0:
            raise TypeError(f"{self.name}(): argument '{p.name}' (position {position}) must be {p.type_name}, "
                            f"but found element of type {type_name(value[failed])} at pos {failed}")
        raise TypeError(f"{self.name}(): argument '{p.name}' (position {position}) must be {p.type_name}, "
                        f"not {type_name(value)}")

    def _extra_args(self, nargs: int):
        if self.min_args != self.max_pos_args:
            raise TypeError(f"{self.name}() takes from {self.min_args} to {self.max_pos_args} positional "
                            f"arguments but {nargs} were given")
        raise TypeError(f"{self.name}() takes {self.max_pos_args} positional argument"
                        f"{'' if self.max_pos_args == 1 else 's'} but {nargs} {'was' if nargs == 1 else 'were'} given")

    def unpack(self, matched, kwargs: dict) -> dict:
        """torch's reading of a matched call: every element of an int list past the first must be
        an int. The keywords, with numpy names replaced by torch's."""
        lists, renamed = matched
        for p, value in lists:
            for index in range(1, len(value)):
                if not _is_int_item(value[index], False):
                    raise TypeError(f"{self.name}(): argument '{p.name}' failed to unpack the object at "
                                    f"pos {index + 1} with error \"type must be tuple of ints,but got "
                                    f"{type_name(value[index])}\"")
        if renamed:
            kwargs = dict(kwargs)
            for alias, name in renamed:
                kwargs[name] = kwargs.pop(alias)
        return kwargs


class Parser:
    """An op's signatures, checked in order as torch's PythonArgParser."""

    __slots__ = ("name", "signatures")

    def __init__(self, signatures: list):
        self.signatures = sorted(signatures, key=lambda s: s.deprecated)
        self.name = signatures[0].name

    @classmethod
    def from_text(cls, texts) -> "Parser":
        return cls([Signature.parse(text) for text in texts])

    def renamed(self, name: str) -> "Parser":
        """The parser of an alias (torch.clip for clamp), which names itself in its errors."""
        return Parser([Signature(name, s.params, s.deprecated, s.function_only) for s in self.signatures])

    def method(self, name: str | None = None) -> "Parser":
        """The Tensor method's parser; `name` renames it (the in-place method: "add_")."""
        return Parser([Signature(name or s.name, s.method().params, s.deprecated)
                       for s in self.signatures if s.has_method])

    @property
    def takes_nothing(self) -> bool:
        """A method without parameters (Tensor.exp), which Python binds as METH_NOARGS."""
        return len(self.signatures) == 1 and not self.signatures[0].params

    def check(self, args: tuple, kwargs: dict) -> dict:
        """Raise torch's TypeError unless a signature takes the call; the keywords to call the
        op with (numpy names replaced by torch's)."""
        for signature in self.signatures:
            if signature.fits(args, kwargs):
                if signature.deprecated:
                    break
                return kwargs
        if len(self.signatures) == 1:
            signature = self.signatures[0]
            return signature.unpack(signature.match(args, kwargs, True), kwargs)
        for signature in self.signatures:
            matched = signature.match(args, kwargs, False)
            if matched is not None:
                if signature.deprecated:
                    raise NotImplementedError(f"engine: the deprecated overload {signature.name}{signature} "
                                              "is not supported")
                return signature.unpack(matched, kwargs)
        count = len(args) + len(kwargs)
        listed = [s for s in self.signatures if not s.deprecated]
        plausible = [s for s in listed if s.min_args <= count <= s.max_args]
        if len(plausible) == 1:
            plausible[0].match(args, kwargs, True)
        raise TypeError(invalid_combination(f"{self.name}()", args, kwargs, [str(s) for s in listed]))


# ---- "received an invalid combination of arguments" (torch/csrc/utils/invalid_arguments.cpp) ----

def _printed_type_matches(printed: str, value) -> bool:
    """Whether a value fits a type as printed in a signature. NOTE: torch re-reads the printed
    signature here, so "float" takes ints too, and a type it cannot read back ("tuple of ints",
    "Number", or a parameter printed with its default) matches nothing."""
    name = type_name(value)
    if printed == "float":
        return name in ("float", "int")
    if printed == "int":
        return name == "int"
    return name == printed


def _describe(value) -> str:
    if isinstance(value, (tuple, list)):
        items = ", ".join(type_name(item) for item in value)
        if isinstance(value, tuple):
            return f"tuple of ({items}{',' if len(value) == 1 else ''})"
        return f"list of [{items}]"
    return type_name(value)


def _given(args: tuple, kwargs: dict) -> str:
    # NOTE: torch lists the keywords from a C++ unordered_map, which (for a few keys, in
    # distinct buckets) iterates in the reverse of their insertion order.
    text = "(" + "".join(f"{type_name(a)}, " for a in args) + "".join(
        f"{k}={type_name(v)}, " for k, v in reversed(kwargs.items()))
    return (text[:-2] if args else text) + ")"


def _read_back(option: str) -> list:
    """A printed signature read back as torch does: (type, name) per piece between ", "
    ("*" is a piece, "()" one piece with an empty name, "bool keepdim = False" the type
    "bool keepdim =" named "False")."""
    return [(piece.rpartition(" ")[0], piece.rpartition(" ")[2]) for piece in option[1:-1].split(", ")]


def _formatted(parsed: list, args: tuple, kwargs: dict) -> str:
    """The given arguments, those that do not fit the option marked."""
    colour = os.isatty(1) and os.isatty(2)
    red, reset = ("\33[31;1m", "\33[0m") if colour else ("!", "!")
    green, reset_green = ("\33[32;1m", "\33[0m") if colour else ("", "")
    described = []
    for i, value in enumerate(list(args) + list(kwargs.values())):
        printed, arg_name = parsed[i]
        text = (f"{arg_name}=" if i >= len(args) else "") + _describe(value)
        described.append(f"{green}{text}{reset_green}" if _printed_type_matches(printed, value)
                         else f"{red}{text}{reset}")
    # NOTE: torch drops the last ", " only after positional arguments: "(dim=NoneType, )".
    text = "".join(f"{item}, " for item in described)
    return "(" + (text[:-2] if args else text) + ")"


def _unmatched_keywords(parsed: list, kwargs: dict) -> list:
    start = max(len(parsed) - len(kwargs), 0)
    names = [name for _, name in parsed[start:]]
    return [key for key in reversed(kwargs) if key not in names]


def invalid_combination(function: str, args: tuple, kwargs: dict, options: list) -> str:
    """torch's message for a call that no signature takes, when none (or several) could
    have taken that many arguments."""
    head = f"{function} received an invalid combination of arguments - "
    if len(options) == 1:
        parsed = _read_back(options[0])
        unmatched = _unmatched_keywords(parsed, kwargs) if kwargs else []
        if unmatched:
            return head + "got unrecognized keyword arguments: " + ", ".join(unmatched)
        given = _formatted(parsed, args, kwargs) if len(args) + len(kwargs) == len(parsed) else _given(args, kwargs)
        return head + f"got {given}, but expected {options[0]}"
    lines = [head + f"got {_given(args, kwargs)}, but expected one of:\n"]
    for option in options:
        lines.append(f" * {option}\n")
        parsed = _read_back(option)
        if len(args) + len(kwargs) != len(parsed):
            continue
        unmatched = _unmatched_keywords(parsed, kwargs) if kwargs else []
        if unmatched:
            lines.append("      didn't match because some of the keywords were incorrect: "
                         + ", ".join(unmatched) + "\n")
        else:
            lines.append("      didn't match because some of the arguments have invalid types: "
                         + _formatted(parsed, args, kwargs) + "\n")
    return "".join(lines)


def attribute_of(value, name: str) -> None:
    """Where torch's Python function reads `value.<name>` first (input.softmax(dim), input.layout):
    for a value that is no tensor, Python's AttributeError ("'NoneType' object has no attribute
    'layout'")."""
    if not isinstance(value, Tensor):
        getattr(value, name)


def bind(fn, parser: Parser, method: bool = False, on_error=None):
    """`fn` behind torch's argument checks, as a function or (self first) as a Tensor method.
    `on_error(args, kwargs)`: called when `fn` raises a RuntimeError or IndexError, to raise
    what torch raises before the op's own checks (the autograd wrapper's reading of the
    inputs' nodes), if anything."""
    check = parser.check
    if method and parser.takes_nothing:
        name = parser.name

        def bound(self, *args, **kwargs):
            # NOTE: CPython's own messages for a METH_NOARGS method, keywords checked first
            if kwargs:
                raise TypeError(f"Tensor.{name}() takes no keyword arguments")
            if args:
                raise TypeError(f"Tensor.{name}() takes no arguments ({len(args)} given)")
            if on_error is None:
                return fn(self)
            try:
                return fn(self)
            except (RuntimeError, IndexError):
                on_error((self,), {})
                raise
    elif method:
        def bound(self, *args, **kwargs):
            checked = check(args, kwargs)
            if on_error is None:
                return fn(self, *args, **checked)
            try:
                return fn(self, *args, **checked)
            except (RuntimeError, IndexError):
                on_error((self, *args), checked)
                raise
    else:
        def bound(*args, **kwargs):
            checked = check(args, kwargs)
            if on_error is None:
                return fn(*args, **checked)
            try:
                return fn(*args, **checked)
            except (RuntimeError, IndexError):
                on_error(args, checked)
                raise
    bound.__name__ = bound.__qualname__ = fn.__name__
    bound.__doc__ = fn.__doc__
    bound.__wrapped__ = fn
    return bound
