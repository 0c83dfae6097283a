"""The Program IR: one random op graph as plain, JSON-serializable data.

A Program names its inputs ``x0, x1, ...`` (leaf tensors with literal values),
a list of steps whose outputs are ``v0, v1, ...`` (one op call each, on inputs,
earlier outputs or Python scalar literals), and one final autograd action.
The interpreter (`fuzz.interpreter`) runs it on any backend that speaks torch;
the reproducer (`fuzz.repro`) renders it as a script.

Example::

    Program(
        inputs=(Input("x0", (2,), "float32", [1.0, -2.0], requires_grad=True),),
        steps=(Step("mul", "operator", (Literal(2), Ref("x0")), {}, "v0"),),
        action=Action(SUM_BACKWARD, "v0"),
    )

is ``v0 = 2 * x0; v0.sum().backward()``.

The JSON form is versioned (``"format"``). Version 2 added in-place steps
(form ``"inplace"``: ``x.add_(y)``, and the table's INPLACE ops ``zero_``,
``fill_``, ``copy_``, ``x[idx] = v``), ``detach``, ``retain_grad``,
``register_hook`` (a hook scaling the gradient by a constant, sometimes adding one), ``no_grad``
regions (a per-step flag), property forms (``x.mT``), structured operands
(tuples and lists, slices, ``...``, dtypes, strings), int64 and bool inputs,
and the actions repeated backward, double backward through
``autograd.grad(create_graph=True)``. Version 1 files still load. Floats round-trip
exactly: JSON numbers keep ``-0.0`` and the shortest repr of every double,
and the non-finite values that JSON lacks are written as the strings
``"nan"``, ``"inf"`` and ``"-inf"``.
"""
from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field, replace
from typing import Any, Callable

# Format 3 added a repeated backward that starts with autograd.grad (the action's "first_grad"): a
# reader of format 2 would run such a program as another one, so it refuses format 3 instead.
FORMAT_VERSION = 3
READABLE_FORMATS = (1, 2, 3)

DTYPES = ("float32", "float64")             # the dtypes a program is tested in
INPUT_DTYPES = DTYPES + ("int64", "bool")   # index tensors and masks are inputs too
FORMS = ("function", "method", "operator", "property", "inplace")
# form "inplace": the op table entry's in-place method, `args[0].<op.inplace>(*args[1:])`.

# Steps that are no op of the table (ops by these names are handled by the interpreter):
DETACH = "detach"                # out = x.detach()
RETAIN_GRAD = "retain_grad"      # x.retain_grad(); out = x  (x.grad is then part of the outcome)
REGISTER_HOOK = "register_hook"  # x.register_hook(lambda g: g * scale [+ shift]); out = x
SETITEM = "__setitem__"          # x[index] = value; out = x
SPECIAL_OPS = (DETACH, RETAIN_GRAD, REGISTER_HOOK)
# Steps whose output is their first argument itself (a statement, or an in-place op).
ALIASING_OPS = (RETAIN_GRAD, REGISTER_HOOK, SETITEM, "zero_", "fill_", "copy_")

# Final actions. Each says how the scalar loss is formed before backward:
SUM_BACKWARD = "sum_backward"            # target.sum().backward()
BACKWARD = "backward"                    # target.backward(); errors in torch unless target is scalar
BACKWARD_GRADIENT = "backward_gradient"  # target.backward(gradient); loss = sum(target * gradient)
# loss = target.sum(); loss.backward(retain_graph=retain_graph); loss.backward(). Leaf grads are
# recorded after each (the second raises when a node freed its saved tensors). With ``first_grad``
# the first call is autograd.grad(loss, <inputs that require grad>), with retain_graph=True if
# retain_graph, else its default (its grads are recorded): autograd.grad frees the graph as backward
# does unless told to keep it.
REPEATED_BACKWARD = "repeated_backward"
# grads = autograd.grad(target.sum(), <inputs that require grad>, create_graph=True);
# sum(g.sum() for g in grads).backward(): first-order grads and second-order leaf grads.
DOUBLE_BACKWARD = "double_backward"
ACTION_KINDS = (SUM_BACKWARD, BACKWARD, BACKWARD_GRADIENT, REPEATED_BACKWARD, DOUBLE_BACKWARD)

INPUT_NAME = re.compile(r"x\d+")
STEP_NAME = re.compile(r"v\d+")
_NAMES = 64  # the first names of each kind, made once (pruning renames every program)
_INPUT_NAMES, _STEP_NAMES = tuple(f"x{index}" for index in range(_NAMES)), tuple(f"v{index}" for index in range(_NAMES))

_NON_FINITE_TO_TEXT = {math.inf: "inf", -math.inf: "-inf"}
_TEXT_TO_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _frozen(cls, **fields):
    """An instance of the frozen dataclass ``cls`` with these fields, without running its __init__
    (nor __post_init__): for copies of values that were normalized and validated already."""
    instance = object.__new__(cls)
    instance.__dict__.update(fields)  # what object.__setattr__ would do, field by field
    return instance


def encode_values(values: Any) -> Any:
    """Nested lists of floats -> JSON-safe nested lists (non-finite floats as strings)."""
    if isinstance(values, (list, tuple)):
        return [encode_values(item) for item in values]
    if isinstance(values, float) and not math.isfinite(values):
        return "nan" if math.isnan(values) else _NON_FINITE_TO_TEXT[values]
    return values


def decode_values(values: Any) -> Any:
    """Inverse of `encode_values`."""
    if isinstance(values, list):
        return [decode_values(item) for item in values]
    if isinstance(values, str):
        try:
            return _TEXT_TO_NON_FINITE[values]
        except KeyError:
            raise ValueError(f"not a number: {values!r} (expected a number, 'nan', 'inf' or '-inf')") from None
    return values


def nested_shape(values: Any) -> tuple[int, ...]:
    """The shape of a (rectangular) nested list; a bare number has shape ()."""
    shape: list[int] = []
    while isinstance(values, list):
        shape.append(len(values))
        if not values:
            break
        values = values[0]
    return tuple(shape)


@dataclass(frozen=True)
class Ref:
    """An operand that names an input (``x0``) or an earlier step's output (``v0``)."""

    name: str

    def to_json(self) -> dict:
        return {"ref": self.name}


_REFS: dict[str, Ref] = {}


def ref(name: str) -> Ref:
    """``Ref(name)``, one shared object per name (a Ref is an immutable value; a frozen dataclass's
    __init__ costs ~0.8 us, and the program builder makes a dozen an example of a few names)."""
    made = _REFS.get(name)
    if made is None:
        made = Ref(name)
        if len(_REFS) < 4096:  # (names are x0.., v0..: few)
            _REFS[name] = made
    return made


@dataclass(frozen=True)
class Literal:
    """A Python constant operand: a number (``2 * x``; int and float stay distinct), a bool,
    None, or a string (einsum's equation)."""

    value: int | float | bool | str | None

    def to_json(self) -> dict:
        if isinstance(self.value, str):
            return {"str": self.value}
        return {"literal": encode_values(self.value)}


@dataclass(frozen=True)
class Seq:
    """A tuple or list of operands: ``torch.cat([x, y])``, ``x.reshape((2, 3))``, ``x[0, 1:]``."""

    items: tuple
    kind: str = "tuple"  # "tuple" or "list"

    def to_json(self) -> dict:
        return {self.kind: [item.to_json() for item in self.items]}


@dataclass(frozen=True)
class Slice:
    """``start:stop:step`` inside an index expression; each part an int or None."""

    start: int | None = None
    stop: int | None = None
    step: int | None = None

    def to_json(self) -> dict:
        return {"slice": [self.start, self.stop, self.step]}


@dataclass(frozen=True)
class Dots:
    """``...`` in an index expression."""

    def to_json(self) -> dict:
        return {"ellipsis": True}


@dataclass(frozen=True)
class DType:
    """A dtype operand, ``torch.int64``; the interpreter takes it from the backend."""

    name: str

    def to_json(self) -> dict:
        return {"dtype": self.name}


Arg = Ref | Literal | Seq | Slice | Dots | DType
_ARG_TYPES = frozenset(Arg.__args__)


def as_arg(value: Any) -> Arg:
    """An operand node for a plain Python value (numbers, str, None, tuples, lists, slices, ...)."""
    if isinstance(value, (Ref, Literal, Seq, Slice, Dots, DType)):
        return value
    if value is None or isinstance(value, (bool, int, float, str)):
        return Literal(value)
    if isinstance(value, (tuple, list)):
        return Seq(tuple(as_arg(item) for item in value), "list" if isinstance(value, list) else "tuple")
    if isinstance(value, slice):
        return Slice(value.start, value.stop, value.step)
    if value is Ellipsis:
        return Dots()
    raise ValueError(f"cannot express {value!r} ({type(value).__name__}) as a program operand")


def _plain(arg: Arg) -> Any:
    """A keyword's canonical form: plain Python data where the node holds only constants."""
    if isinstance(arg, Literal):
        return arg.value
    if isinstance(arg, Seq):
        items = [_plain(item) for item in arg.items]
        if not any(isinstance(item, (Ref, Seq, Slice, Dots, DType)) for item in items):
            return items if arg.kind == "list" else tuple(items)
        return Seq(tuple(as_arg(item) for item in items), arg.kind)
    return arg


def arg_refs(arg: Any) -> tuple[str, ...]:
    """Names of the tensors an operand (or keyword value) reads, nested ones included."""
    if isinstance(arg, Ref):
        return (arg.name,)
    if isinstance(arg, Seq):
        return tuple(name for item in arg.items for name in arg_refs(item))
    return ()


def map_refs(arg: Any, rename: Callable[[str], str]) -> Any:
    if isinstance(arg, Ref):
        return ref(rename(arg.name))
    if isinstance(arg, Seq):
        return Seq(tuple(map_refs(item, rename) for item in arg.items), arg.kind)
    return arg


def _arg_from_json(data: dict) -> Arg:
    if not isinstance(data, dict):
        raise ValueError(f"an argument must be a JSON object, got {data!r}")
    if "ref" in data:
        return Ref(data["ref"])
    if "literal" in data:
        return Literal(decode_values(data["literal"]))
    if "str" in data:
        return Literal(data["str"])
    for kind in ("tuple", "list"):
        if kind in data:
            return Seq(tuple(_arg_from_json(item) for item in data[kind]), kind)
    if "slice" in data:
        return Slice(*data["slice"])
    if "ellipsis" in data:
        return Dots()
    if "dtype" in data:
        return DType(data["dtype"])
    raise ValueError(f"an argument must be {{'ref': name}}, {{'literal': number}}, {{'str': text}}, "
                     f"{{'tuple'|'list': [...]}}, {{'slice': [start, stop, step]}}, {{'ellipsis': true}} "
                     f"or {{'dtype': name}}, got {data!r}")


@dataclass(frozen=True)
class Input:
    """A leaf tensor: ``torch.tensor(values, dtype=dtype, requires_grad=requires_grad)``."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    values: Any  # nested lists of floats, as numpy's .tolist(); a bare float for shape ()
    requires_grad: bool

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "values": encode_values(self.values),
            "requires_grad": self.requires_grad,
        }

    @classmethod
    def from_json(cls, data: dict) -> Input:
        return cls(data["name"], tuple(data["shape"]), data["dtype"],
                   decode_values(data["values"]), data["requires_grad"])


@dataclass(frozen=True)
class Step:
    """One op call: ``out = <op>(*args, **kwargs)`` in the given form.

    ``form`` is ``"function"`` (``backend.op(a, b)``; dotted names such as
    ``nn.functional.relu`` name a namespace), ``"method"`` (``a.op(b)``),
    ``"operator"`` (``a * b``, ``-a``), ``"property"`` (``a.mT``) or
    ``"inplace"`` (``a.add_(b)``, the table entry's in-place method), after
    the op table; ``op`` may also be one of SPECIAL_OPS (method form).
    Operands are Arg nodes (plain Python values are converted); keyword
    values are plain data (numbers, strings, None, tuples and lists of
    them) or Arg nodes where they hold tensors or dtypes. ``no_grad`` runs
    the step inside ``with torch.no_grad():``.
    """

    op: str
    form: str
    args: tuple[Arg, ...]
    kwargs: dict[str, Any]
    out: str
    no_grad: bool = False

    def __post_init__(self) -> None:
        args = self.args
        if type(args) is not tuple or not all(type(arg) in _ARG_TYPES for arg in args):
            args = tuple(map(as_arg, args))  # (the builder's steps have operand nodes already)
        kwargs = {key: _plain(as_arg(value)) for key, value in self.kwargs.items()} if self.kwargs else {}
        # Read often (validation, pruning, comparison): computed once (not a field).
        refs = [arg.name for arg in args if type(arg) is Ref]
        if len(refs) < len(args) or kwargs:  # tensors inside sequences or keywords: the general walk
            refs = [name for arg in (*args, *kwargs.values()) for name in arg_refs(arg)]
        self.__dict__.update(args=args, kwargs=kwargs, _refs=tuple(refs),  # (object.__setattr__'s effect)
                             aliases_first=self.form == "inplace" or self.op in ALIASING_OPS)

    def refs(self) -> tuple[str, ...]:
        """Names of the tensors this step reads."""
        return self._refs

    @functools.cached_property  # (set on construction; read a dozen times an example)
    def aliases_first(self) -> bool:
        """Whether the output is the first operand itself (in-place ops and statements)."""
        return self.form == "inplace" or self.op in ALIASING_OPS

    def renamed(self, rename: Callable[[str], str], out: str) -> Step:
        """This step reading ``rename(name)`` for each name it reads, its output named ``out``."""
        refs = tuple(map(rename, self._refs))
        if refs == self._refs and out == self.out:
            return self
        # The operands are normalized already: the copy skips __post_init__ (pruning renames every step).
        kwargs = self.kwargs
        return _frozen(Step, op=self.op, form=self.form,
                       args=tuple([ref(rename(arg.name)) if type(arg) is Ref else map_refs(arg, rename)
                                   for arg in self.args]),
                       kwargs={key: map_refs(value, rename) for key, value in kwargs.items()} if kwargs else {},
                       out=out, no_grad=self.no_grad, _refs=refs, aliases_first=self.aliases_first)

    def to_json(self) -> dict:
        data = {
            "op": self.op,
            "form": self.form,
            "args": [arg.to_json() for arg in self.args],
            "kwargs": {key: as_arg(value).to_json() for key, value in self.kwargs.items()},
            "out": self.out,
        }
        if self.no_grad:
            data["no_grad"] = True
        return data

    @classmethod
    def from_json(cls, data: dict, format: int = FORMAT_VERSION) -> Step:
        if format == 1:
            # Version 1 keywords are bare JSON values; every list-valued one is a tuple of dims.
            kwargs = {key: tuple(value) if isinstance(value, list) else value
                      for key, value in data["kwargs"].items()}
        else:
            kwargs = {key: _arg_from_json(value) for key, value in data["kwargs"].items()}
        return cls(data["op"], data["form"], tuple(_arg_from_json(arg) for arg in data["args"]),
                   kwargs, data["out"], bool(data.get("no_grad", False)))


@dataclass(frozen=True)
class Action:
    """The final autograd call on ``target`` (see ACTION_KINDS).

    ``gradient`` holds the explicit gradient's values (target's shape; the
    interpreter gives it target's dtype) for ``backward_gradient``, else None.
    ``retain_graph`` is the first backward's flag in ``repeated_backward``, and ``first_grad``
    makes that first call autograd.grad.
    """

    kind: str
    target: str
    gradient: Any = None
    retain_graph: bool = False
    first_grad: bool = False

    def to_json(self) -> dict:
        data = {"kind": self.kind, "target": self.target}
        if self.kind == BACKWARD_GRADIENT:
            data["gradient"] = encode_values(self.gradient)
        if self.kind == REPEATED_BACKWARD:
            data["retain_graph"] = self.retain_graph
            if self.first_grad:
                data["first_grad"] = True
        return data

    @classmethod
    def from_json(cls, data: dict) -> Action:
        return cls(data["kind"], data["target"], decode_values(data.get("gradient")),
                   bool(data.get("retain_graph", False)), bool(data.get("first_grad", False)))


@dataclass(frozen=True)
class Program:
    """Inputs, steps and a final action; validated on construction (ValueError)."""

    inputs: tuple[Input, ...]
    steps: tuple[Step, ...]
    action: Action
    format: int = field(default=FORMAT_VERSION, compare=False)

    def __post_init__(self) -> None:
        defined: set[str] = set()
        for tensor in self.inputs:
            if not INPUT_NAME.fullmatch(tensor.name) or tensor.name in defined:
                raise ValueError(f"input name {tensor.name!r} is not a fresh 'x<number>'")
            if tensor.dtype not in INPUT_DTYPES:
                raise ValueError(f"input {tensor.name}: dtype {tensor.dtype!r} is not one of {INPUT_DTYPES}")
            if nested_shape(tensor.values) != tuple(tensor.shape):
                raise ValueError(f"input {tensor.name}: values have shape {nested_shape(tensor.values)}, "
                                 f"declared shape is {tuple(tensor.shape)}")
            defined.add(tensor.name)
        for index, step in enumerate(self.steps):
            if step.form not in FORMS:
                raise ValueError(f"step {index}: form {step.form!r} is not one of {FORMS}")
            if step.aliases_first and not (step.args and isinstance(step.args[0], Ref)):
                raise ValueError(f"step {index} ({step.op}, {step.form}): the first operand must be a tensor")
            undefined = [name for name in step.refs() if name not in defined]
            if undefined:
                raise ValueError(f"step {index} ({step.op}) reads {undefined}, not defined before it")
            if not STEP_NAME.fullmatch(step.out) or step.out in defined:
                raise ValueError(f"step {index}: output name {step.out!r} is not a fresh 'v<number>'")
            defined.add(step.out)
        if self.action.kind not in ACTION_KINDS:
            raise ValueError(f"action kind {self.action.kind!r} is not one of {ACTION_KINDS}")
        if self.action.target not in defined:
            raise ValueError(f"action target {self.action.target!r} is not an input or step output")
        if (self.action.gradient is None) != (self.action.kind != BACKWARD_GRADIENT):
            raise ValueError(f"action {self.action.kind!r}: a gradient is required for "
                             f"{BACKWARD_GRADIENT!r} and only for it")
        if self.action.first_grad and self.action.kind != REPEATED_BACKWARD:
            raise ValueError(f"action {self.action.kind!r}: first_grad is for {REPEATED_BACKWARD!r} only")
        if self.format not in READABLE_FORMATS:
            raise ValueError(f"program format {self.format} is not supported "
                             f"(this gradfuzz reads {READABLE_FORMATS})")

    @property
    def dtype(self) -> str:
        """The floating inputs' common dtype (index and mask inputs aside), or ``"mixed"``."""
        dtypes = {tensor.dtype for tensor in self.inputs if tensor.dtype in DTYPES} or \
            {tensor.dtype for tensor in self.inputs}
        return dtypes.pop() if len(dtypes) == 1 else "mixed"

    def ops(self) -> tuple[str, ...]:
        """The op of each step, in order."""
        return tuple(step.op for step in self.steps)

    def ancestors(self, ref: str) -> list[int]:
        """Indices of the steps that ``ref`` depends on (its own step included), ascending."""
        return sorted(self._ancestors(ref, self._producers()))

    def _producers(self) -> dict[str, int]:
        """The index of the step that defines each step output."""
        return {step.out: index for index, step in enumerate(self.steps)}

    def _ancestors(self, ref: str, producer: dict[str, int]) -> set[int]:
        pending, found = [ref], set()
        while pending:
            index = producer.get(pending.pop())
            if index is not None and index not in found:
                found.add(index)
                pending.extend(self.steps[index].refs())
        return found

    def kept_steps(self) -> list[int]:
        """The steps the action's outcome depends on: the target's ancestors, plus every in-place
        op, hook or retain_grad on a tensor that shares an input or step with them (and its
        ancestors), since those change what backward sees."""
        producer = self._producers()
        kept = self._ancestors(self.action.target, producer)
        aliasing = [index for index, step in enumerate(self.steps) if step.aliases_first and step.refs()]
        if not aliasing:
            return sorted(kept)

        def lineage(indices) -> set:
            names = {name for index in indices for name in self.steps[index].refs()}
            return set(indices) | {name for name in names if name not in producer}

        def receiver_lineage(step: Step) -> set:
            receiver = step.refs()[0]
            return lineage(self._ancestors(receiver, producer)) | ({receiver} - set(producer))
        target_inputs = {self.action.target} - set(producer)
        while True:
            reached = lineage(kept) | target_inputs
            added = {index for index in aliasing
                     if index not in kept and receiver_lineage(self.steps[index]) & reached}
            if not added:
                return sorted(kept)
            for index in added:
                kept |= self._ancestors(self.steps[index].out, producer)

    def pruned(self) -> Program:
        """Only the steps and inputs the action depends on (`kept_steps`), renamed ``x0.., v0..`` in order."""
        return self.pruning()[0]

    def pruning(self) -> tuple[Program, list[int], dict[str, str]]:
        """`pruned`, with the indices of the steps it keeps and the new name of each kept input and step."""
        kept_indices = self.kept_steps()
        steps = self.steps
        kept = [steps[index] for index in kept_indices]
        used = {self.action.target}
        for step in kept:
            used.update(step._refs)
        inputs = [tensor for tensor in self.inputs if tensor.name in used]
        names: dict[str, str] = {}
        same = True
        for index, tensor in enumerate(inputs):
            names[tensor.name] = new = _INPUT_NAMES[index] if index < _NAMES else f"x{index}"
            same = same and new == tensor.name
        for index, step in enumerate(kept):
            names[step.out] = new = _STEP_NAMES[index] if index < _NAMES else f"v{index}"
            same = same and new == step.out
        if same and len(kept) == len(steps) and len(inputs) == len(self.inputs):
            return self, kept_indices, names  # nothing to prune or rename
        # A valid program, consistently renamed, is valid: no second validation (__post_init__).
        rename = names.__getitem__
        target = names[self.action.target]
        program = _frozen(
            Program,
            inputs=tuple(tensor if tensor.name == names[tensor.name] else
                         _frozen(Input, **{**tensor.__dict__, "name": names[tensor.name]}) for tensor in inputs),
            steps=tuple(step.renamed(rename, names[step.out]) for step in kept),
            action=self.action if self.action.target == target else
            _frozen(Action, **{**self.action.__dict__, "target": target}),
            format=self.format,
        )
        return program, kept_indices, names

    def loss_multiple(self) -> int | None:
        """How many times the action adds the gradient of its loss (``sum(target)``, or
        ``sum(target * gradient)``) into each leaf's ``.grad``: 2 for repeated backward, else 1.

        None when the leaves' gradients are not a multiple of one loss's derivative, so that
        finite differences have no opinion on them: double backward, and programs with
        hooks (which rescale or shift a gradient), detach or no_grad regions (which cut the graph
        where the loss's value still flows). ``retain_grad`` only records a gradient.
        """
        if self.action.kind == DOUBLE_BACKWARD or any(
                step.no_grad or step.op in (DETACH, REGISTER_HOOK) for step in self.steps):
            return None
        return 2 if self.action.kind == REPEATED_BACKWARD else 1

    def with_dtype(self, dtype: str) -> Program:
        """The same program with every floating input cast to ``dtype`` (values kept)."""
        return replace(self, inputs=tuple(replace(tensor, dtype=dtype) if tensor.dtype in DTYPES else tensor
                                          for tensor in self.inputs))

    def prefix(self, length: int, action: Action) -> Program:
        """The first ``length`` steps with another final action."""
        return replace(self, steps=self.steps[:length], action=action)

    def to_json(self) -> dict:
        return {
            "format": self.format,
            "inputs": [tensor.to_json() for tensor in self.inputs],
            "steps": [step.to_json() for step in self.steps],
            "action": self.action.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict) -> Program:
        """Parse `to_json` output; raises ValueError on malformed data."""
        try:
            version = data.get("format", FORMAT_VERSION)
            if version not in READABLE_FORMATS:
                raise ValueError(f"program format {version} is not supported (this gradfuzz reads {READABLE_FORMATS})")
            # Read in the stored version's layout; the result is a current-version Program.
            return cls(
                inputs=tuple(Input.from_json(item) for item in data["inputs"]),
                steps=tuple(Step.from_json(item, version) for item in data["steps"]),
                action=Action.from_json(data["action"]),
            )
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"malformed program JSON: {error!r}") from error
