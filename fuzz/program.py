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

The JSON form is versioned (``"format"``) so that later kinds of step (in-place
ops, detach, no_grad regions, hooks) and action (``autograd.grad``, repeated
backward) can be added without breaking stored findings. Floats round-trip
exactly: JSON numbers keep ``-0.0`` and the shortest repr of every double,
and the non-finite values that JSON lacks are written as the strings
``"nan"``, ``"inf"`` and ``"-inf"``.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Any

FORMAT_VERSION = 1

DTYPES = ("float32", "float64")
FORMS = ("function", "method", "operator")

# Final actions. Each says how the scalar loss is formed before backward:
SUM_BACKWARD = "sum_backward"            # target.sum().backward()
BACKWARD = "backward"                    # target.backward(); errors in torch unless target is scalar
BACKWARD_GRADIENT = "backward_gradient"  # target.backward(gradient); loss = sum(target * gradient)
ACTION_KINDS = (SUM_BACKWARD, BACKWARD, BACKWARD_GRADIENT)

INPUT_NAME = re.compile(r"x\d+")
STEP_NAME = re.compile(r"v\d+")

_NON_FINITE_TO_TEXT = {math.inf: "inf", -math.inf: "-inf"}
_TEXT_TO_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


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


@dataclass(frozen=True)
class Literal:
    """A Python scalar operand, as in ``2 * x`` or ``torch.pow(2, x)``; int and float stay distinct."""

    value: int | float

    def to_json(self) -> dict:
        return {"literal": encode_values(self.value)}


Arg = Ref | Literal


def _arg_from_json(data: dict) -> Arg:
    if "ref" in data:
        return Ref(data["ref"])
    if "literal" in data:
        return Literal(decode_values(data["literal"]))
    raise ValueError(f"an argument must be {{'ref': name}} or {{'literal': number}}, got {data!r}")


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

    ``form`` is ``"function"`` (``backend.op(a, b)``), ``"method"``
    (``a.op(b)``) or ``"operator"`` (``a * b``, ``-a``), after the op table.
    Keyword values are JSON scalars or tuples of ints (``dim=(0, 2)``).
    """

    op: str
    form: str
    args: tuple[Arg, ...]
    kwargs: dict[str, Any]
    out: str

    def refs(self) -> tuple[str, ...]:
        """Names of the tensors this step reads."""
        return tuple(arg.name for arg in self.args if isinstance(arg, Ref))

    def to_json(self) -> dict:
        return {
            "op": self.op,
            "form": self.form,
            "args": [arg.to_json() for arg in self.args],
            "kwargs": {key: list(value) if isinstance(value, tuple) else value
                       for key, value in self.kwargs.items()},
            "out": self.out,
        }

    @classmethod
    def from_json(cls, data: dict) -> Step:
        # JSON has no tuples; every list-valued keyword is a tuple of dims.
        kwargs = {key: tuple(value) if isinstance(value, list) else value
                  for key, value in data["kwargs"].items()}
        return cls(data["op"], data["form"], tuple(_arg_from_json(arg) for arg in data["args"]),
                   kwargs, data["out"])


@dataclass(frozen=True)
class Action:
    """The final autograd call on ``target`` (see ACTION_KINDS).

    ``gradient`` holds the explicit gradient's values (target's shape; the
    interpreter gives it target's dtype) for ``backward_gradient``, else None.
    """

    kind: str
    target: str
    gradient: Any = None

    def to_json(self) -> dict:
        data = {"kind": self.kind, "target": self.target}
        if self.kind == BACKWARD_GRADIENT:
            data["gradient"] = encode_values(self.gradient)
        return data

    @classmethod
    def from_json(cls, data: dict) -> Action:
        return cls(data["kind"], data["target"], decode_values(data.get("gradient")))


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
            if tensor.dtype not in DTYPES:
                raise ValueError(f"input {tensor.name}: dtype {tensor.dtype!r} is not one of {DTYPES}")
            if nested_shape(tensor.values) != tuple(tensor.shape):
                raise ValueError(f"input {tensor.name}: values have shape {nested_shape(tensor.values)}, "
                                 f"declared shape is {tuple(tensor.shape)}")
            defined.add(tensor.name)
        for index, step in enumerate(self.steps):
            if step.form not in FORMS:
                raise ValueError(f"step {index}: form {step.form!r} is not one of {FORMS}")
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
        if self.format != FORMAT_VERSION:
            raise ValueError(f"program format {self.format} is not supported (this gradfuzz reads {FORMAT_VERSION})")

    @property
    def dtype(self) -> str:
        """The inputs' common dtype, or ``"mixed"``."""
        dtypes = {tensor.dtype for tensor in self.inputs}
        return dtypes.pop() if len(dtypes) == 1 else "mixed"

    def ops(self) -> tuple[str, ...]:
        """The op of each step, in order."""
        return tuple(step.op for step in self.steps)

    def ancestors(self, ref: str) -> list[int]:
        """Indices of the steps that ``ref`` depends on (its own step included), ascending."""
        producer = {step.out: index for index, step in enumerate(self.steps)}
        pending, found = [ref], set()
        while pending:
            index = producer.get(pending.pop())
            if index is not None and index not in found:
                found.add(index)
                pending.extend(self.steps[index].refs())
        return sorted(found)

    def pruned(self) -> Program:
        """Only the steps and inputs the action's target depends on, renamed ``x0.., v0..`` in order."""
        kept = [self.steps[index] for index in self.ancestors(self.action.target)]
        used = {name for step in kept for name in step.refs()} | {self.action.target}
        inputs = [tensor for tensor in self.inputs if tensor.name in used]
        names = {tensor.name: f"x{index}" for index, tensor in enumerate(inputs)}
        names.update({step.out: f"v{index}" for index, step in enumerate(kept)})

        def rename(arg: Arg) -> Arg:
            return Ref(names[arg.name]) if isinstance(arg, Ref) else arg
        return replace(
            self,
            inputs=tuple(replace(tensor, name=names[tensor.name]) for tensor in inputs),
            steps=tuple(replace(step, args=tuple(rename(arg) for arg in step.args), out=names[step.out])
                        for step in kept),
            action=replace(self.action, target=names[self.action.target]),
        )

    def with_dtype(self, dtype: str) -> Program:
        """The same program with every input cast to ``dtype`` (values kept)."""
        return replace(self, inputs=tuple(replace(tensor, dtype=dtype) for tensor in self.inputs))

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
            return cls(
                inputs=tuple(Input.from_json(item) for item in data["inputs"]),
                steps=tuple(Step.from_json(item) for item in data["steps"]),
                action=Action.from_json(data["action"]),
                format=data.get("format", FORMAT_VERSION),
            )
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"malformed program JSON: {error!r}") from error
