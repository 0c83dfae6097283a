"""Hypothesis strategies for random Programs, driven by the op table.

`programs()` builds a DAG one step at a time. Each step samples an op from
`engine.optable.OPS` (so a new table entry of a kind drawn here is fuzzed
without touching this module), a form the op offers, and operands by the op
kind's shape rule: existing tensors of a compatible shape, fresh inputs drawn
to fit, or Python scalars where torch takes them. Each step is evaluated on
torch as it is drawn, so the strategy knows every intermediate shape, dtype
and value: it picks operands inside the op's domain most of the time, and
ends the program at a step torch rejects (that step's error is then what gets
compared). The program is finally pruned to what the action's target depends
on.

Draws are ordered so failures shrink bottom-up: the number of steps first,
ops and forms with `sampled_from`, operands towards the inputs (so steps in
between become dead code and are pruned), small shapes, and simple values
(zeros, small integers) before arbitrary floats.
"""
from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays, broadcastable_shapes

from engine.optable import BINARY, BY_NAME, MATMUL, NONZERO, OPS, POSITIVE, REAL, REDUCTION, UNARY, Op
from fuzz import interpreter
from fuzz.program import ACTION_KINDS, BACKWARD_GRADIENT, DTYPES, SUM_BACKWARD, Action, Input, Literal, Program, Ref, Step

DRAWABLE_KINDS = (UNARY, BINARY, REDUCTION, MATMUL)
DRAWABLE_KWARG_TYPES = ("dim", "dims", "bool", "float", "int")

# Values beyond this size are legal operands but make tolerances meaningless
# after a few more ops, so the strategy avoids them (see _domains).
MODERATE = 1e4
# How close to the edge of a domain an operand may be (log(1e-3) is fine, log(1e-30) is not moderate).
DOMAIN_MARGIN = 1e-3
# 0.1 rounded to float32, so one bound serves float32 and float64 draws.
SMALLEST_MAGNITUDE = float(np.float32(0.1))

# Rare choices, as "one in N" (each shrinks to the common choice):
OUT_OF_DOMAIN_ONE_IN = 10  # an operand ignores the op's domain: edges are behaviour too
NO_GRAD_ONE_IN = 8         # an input does not require grad
MIXED_DTYPES_ONE_IN = 8    # a program's inputs mix dtypes (type promotion)
OTHER_TARGET_ONE_IN = 4    # the action targets another output than the newest one requiring grad

# Where an operand comes from, in shrink order, repeated to weight the draw:
# "any" existing tensor (oldest first), so that a failing program shrinks
# towards ops applied to its inputs (the steps in between then fall away as
# dead code); a "new" input; most often the "newest" tensor, so that generated
# programs are deep.
OPERAND_SOURCES = ("any", "new") + ("newest",) * 5

_SIMPLE_VALUES = {
    REAL: (0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 3.0),
    POSITIVE: (1.0, 2.0, 0.5, 3.0),
    NONZERO: (1.0, -1.0, 2.0, -2.0, 0.5, -0.5),
}
_SIMPLE_SCALARS = {
    REAL: (2, 1, -1, 0, 3, -2, 0.5, -0.5, 1.5),
    POSITIVE: (2, 1, 3, 0.5, 1.5),
    NONZERO: (2, 1, -1, 3, -2, 0.5, -0.5),
}


def programs(*, ops: Iterable[str] | None = None, max_steps: int = 6, max_inputs: int = 3,
             dtypes: Iterable[str] = DTYPES, max_dims: int = 3, max_side: int = 4) -> st.SearchStrategy[Program]:
    """Random Programs over the op table's ops.

    ops: op names to draw from (default: `drawable_ops()`, every op in
        `engine.optable.OPS` whose kind and keywords this module can draw).
    max_steps: at most this many steps (at least 1).
    max_inputs: at most this many input tensors (at least 1).
    dtypes: the input dtypes; a program usually uses one of them for all
        inputs and sometimes mixes them (type promotion).
    max_dims, max_side: bounds on every tensor's rank and side length.

    Example::

        from hypothesis import given
        from fuzz.strategies import programs

        @given(programs(ops=["mul", "sum"], max_steps=3))
        def test_mul_sum(program):
            ...
    """
    chosen = _validate(ops, max_steps, max_inputs, dtypes, max_dims, max_side)
    return _programs(_Limits(tuple(op.name for op in chosen), max_steps, max_inputs, tuple(dtypes),
                             max_dims, max_side))


@dataclass(frozen=True)
class _Limits:
    ops: tuple[str, ...]  # names, so that Hypothesis' reports print this briefly
    max_steps: int
    max_inputs: int
    dtypes: tuple[str, ...]
    max_dims: int
    max_side: int


def _validate(ops, max_steps, max_inputs, dtypes, max_dims, max_side) -> tuple[Op, ...]:
    for name, value, lowest in (("max_steps", max_steps, 1), ("max_inputs", max_inputs, 1),
                                ("max_dims", max_dims, 1), ("max_side", max_side, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < lowest:
            raise ValueError(f"programs(): {name} must be an int >= {lowest}, got {value!r}")
    if isinstance(dtypes, str):
        raise TypeError(f"programs(): dtypes must be a collection of dtype names, got the string {dtypes!r}")
    dtypes = tuple(dtypes)
    if not dtypes or any(dtype not in DTYPES for dtype in dtypes):
        raise ValueError(f"programs(): dtypes must be a non-empty selection of {DTYPES}, got {dtypes!r}")
    if isinstance(ops, str):
        raise TypeError(f"programs(): ops must be a collection of op names, got the string {ops!r}")
    if ops is None:
        return drawable_ops()
    names = list(ops)
    unknown = [name for name in names if name not in BY_NAME]
    if unknown or not names:
        raise ValueError(f"programs(): ops must be a non-empty selection of the op table; unknown: {unknown}")
    undrawable = [name for name in names if BY_NAME[name] not in drawable_ops()]
    if undrawable:
        raise ValueError(f"programs(): cannot draw arguments for {undrawable} yet; drawable ops: "
                         f"{[op.name for op in drawable_ops()]}")
    return tuple(BY_NAME[name] for name in names)


def _drawable(op: Op) -> bool:
    return op.kind in DRAWABLE_KINDS and all(
        isinstance(kind, tuple) or kind in DRAWABLE_KWARG_TYPES for kind in op.kwargs.values())


def drawable_ops() -> tuple[Op, ...]:
    """The table's ops whose arguments `programs()` can draw (the default op selection)."""
    return tuple(op for op in OPS if _drawable(op))


def _rarely(draw, one_in: int) -> bool:
    """True about once in ``one_in`` draws; shrinks to False."""
    return draw(st.integers(0, one_in - 1)) == one_in - 1


# Strategies are immutable; building them once per argument tuple (instead of
# per draw) keeps generation fast.
@functools.lru_cache(maxsize=None)
def _elements(domain: str, dtype: str) -> st.SearchStrategy[float]:
    """Moderate values in ``domain``: simple ones first (zeros, small integers), then 0.1 <= |x| <= 4."""
    width = 32 if dtype == "float32" else 64
    positive = st.floats(SMALLEST_MAGNITUDE, 4.0, width=width)
    negative = st.floats(-4.0, -SMALLEST_MAGNITUDE, width=width)
    general = (positive,) if domain == POSITIVE else (positive, negative)
    return st.one_of(st.sampled_from(_SIMPLE_VALUES[domain]), *general)


@functools.lru_cache(maxsize=None)
def _scalars(domain: str) -> st.SearchStrategy[int | float]:
    """Python scalar operands; floats are float32-exact so both backends see the same number."""
    positive = st.floats(SMALLEST_MAGNITUDE, 4.0, width=32)
    negative = st.floats(-4.0, -SMALLEST_MAGNITUDE, width=32)
    general = (positive,) if domain == POSITIVE else (positive, negative)
    return st.one_of(st.sampled_from(_SIMPLE_SCALARS[domain]), *general)


@functools.lru_cache(maxsize=None)
def _arrays(dtype: str, shape: tuple[int, ...], domain: str) -> st.SearchStrategy[np.ndarray]:
    return arrays(np.dtype(dtype), shape, elements=_elements(domain, dtype), fill=st.nothing())


@functools.lru_cache(maxsize=None)
def _shapes(min_dims: int, max_dims: int, max_side: int) -> st.SearchStrategy[tuple[int, ...]]:
    return array_shapes(min_dims=min_dims, max_dims=max_dims, max_side=max_side)


@functools.lru_cache(maxsize=None)
def _broadcastable(shape: tuple[int, ...], max_dims: int, max_side: int) -> st.SearchStrategy[tuple[int, ...]]:
    return broadcastable_shapes(shape, max_dims=max_dims, max_side=max_side)


def _pick(draw, options):
    """One of ``options``, shrinking towards the first."""
    # An index draw: Hypothesis caches `integers(0, n)`, while a sampled_from
    # over each new list of tensors would be a new strategy to validate.
    return options[draw(st.integers(0, len(options) - 1))]


def _domains(tensor: torch.Tensor) -> frozenset[str]:
    """The domains every element of ``tensor`` is moderate and inside of."""
    values = tensor.detach().abs()
    if not tensor.is_floating_point() or not bool(torch.isfinite(values).all()) or bool((values > MODERATE).any()):
        return frozenset()
    domains = {REAL}
    if bool((values > DOMAIN_MARGIN).all()):
        domains.add(NONZERO)
        if bool((tensor > 0).all()):
            domains.add(POSITIVE)
    return frozenset(domains)


def matmul_shape(left: tuple[int, ...], right: tuple[int, ...]) -> tuple[int, ...] | None:
    """torch.matmul's result shape, or None when the shapes do not multiply."""
    if not left or not right:
        return None
    left_matrix = (1,) + left if len(left) == 1 else left
    right_matrix = right + (1,) if len(right) == 1 else right
    if left_matrix[-1] != right_matrix[-2]:
        return None
    try:
        batch = np.broadcast_shapes(left_matrix[:-2], right_matrix[:-2])
    except ValueError:
        return None
    rows = () if len(left) == 1 else (left_matrix[-2],)
    columns = () if len(right) == 1 else (right_matrix[-1],)
    return tuple(batch) + rows + columns


@dataclass
class _Builder:
    """A program under construction, with every tensor evaluated on torch."""

    draw: Callable
    limits: _Limits
    dtype: str
    mixed: bool
    inputs: list[Input] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)  # successful outputs and inputs, in order
    domains: dict[str, frozenset[str]] = field(default_factory=dict)  # each tensor's, see _domains

    def add_tensor(self, name: str, tensor: torch.Tensor) -> None:
        self.tensors[name] = tensor
        self.domains[name] = _domains(tensor)

    def new_input(self, shape: tuple[int, ...], domain: str) -> Ref:
        draw = self.draw
        dtype = _pick(draw, self.limits.dtypes) if self.mixed else self.dtype
        values = draw(_arrays(dtype, shape, domain)).tolist()
        # Usually requires grad; shrinks to False. Sometimes no input does, so that
        # "element 0 of tensors does not require grad" is compared too.
        requires_grad = not _rarely(draw, NO_GRAD_ONE_IN)
        name = f"x{len(self.inputs)}"
        self.inputs.append(Input(name, shape, dtype, values, requires_grad))
        self.add_tensor(name, interpreter.make_input(torch, self.inputs[-1]))
        return Ref(name)

    def can_add_input(self) -> bool:
        return len(self.inputs) < self.limits.max_inputs

    def operand(self, domain: str, *, accept=lambda tensor: True,
                new_shape: st.SearchStrategy[tuple[int, ...]] | None = None) -> Ref:
        """An existing tensor that ``accept``s and fits ``domain`` (oldest first), or a new input.

        Once in a while (and when nothing fits and no input can be added) the
        domain is ignored: what an op does at its edges is behaviour too.
        """
        draw = self.draw
        ignore_domain = _rarely(draw, OUT_OF_DOMAIN_ONE_IN)
        # Bool results (all, any) end their chain: programs compute on floats.
        existing = [name for name, tensor in self.tensors.items() if tensor.is_floating_point() and accept(tensor)
                    and (ignore_domain or domain in self.domains[name])]
        sources = [source for source in OPERAND_SOURCES
                   if (source == "new" and self.can_add_input()) or (source != "new" and existing)]
        if not sources:
            existing = [name for name, tensor in self.tensors.items() if accept(tensor)] or list(self.tensors)
            sources = ["any"]
        source = _pick(draw, sources)
        if source == "any":
            return Ref(_pick(draw, existing))
        if source == "newest":
            return Ref(existing[-1])
        limits = self.limits
        if new_shape is None:
            new_shape = _shapes(0, limits.max_dims, limits.max_side)
        shape = draw(new_shape)
        return self.new_input(shape, REAL if ignore_domain else domain)

    def shape(self, ref: Ref) -> tuple[int, ...]:
        return tuple(self.tensors[ref.name].shape)

    def add_step(self, op: Op, form: str, args: tuple, kwargs: dict) -> bool:
        """Append the step and evaluate it on torch; False if torch raised (the program ends there)."""
        step = Step(op.name, form, args, kwargs, f"v{len(self.steps)}")
        self.steps.append(step)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.add_tensor(step.out, interpreter.apply_step(torch, step, self.tensors))
        except Exception:  # noqa: BLE001  (a step torch rejects is a valid test of error behaviour)
            return False
        return True


def _domain(op: Op, position: int) -> str:
    return op.domain[position] if position < len(op.domain) else REAL


def _unary_args(builder: _Builder, op: Op, form: str) -> tuple[tuple, dict]:
    anchor = builder.operand(_domain(op, 0))
    return (anchor,), _keywords(builder, op, anchor)


@functools.lru_cache(maxsize=None)
def torch_accepts_scalar(op_name: str, form: str, position: int) -> bool:
    """Whether torch takes a Python number as operand ``position`` of the op in this form.

    The table says either operand of a binary op may be a scalar; torch's
    signatures say otherwise for some (``torch.maximum(x, 2)``,
    ``torch.fmod(2, x)`` are TypeErrors), so ask torch once per case.
    """
    operands = [Ref("x"), Ref("x")]
    operands[position] = Literal(2.0)
    step = Step(op_name, form, tuple(operands), {}, "v0")
    try:
        interpreter.apply_step(torch, step, {"x": torch.ones(2)})
    except (TypeError, AttributeError):  # AttributeError: a method called on a number, `2 .pow(x)`
        return False
    return True


def _binary_args(builder: _Builder, op: Op, form: str) -> tuple[tuple, dict]:
    """A tensor (the anchor) and a broadcast-compatible tensor or Python scalar, in either order.

    A scalar goes where torch takes one: ``x.pow(2)``, ``torch.pow(2, x)``,
    ``2 ** x``, but not ``torch.maximum(x, 2)``.
    """
    draw, limits = builder.draw, builder.limits
    anchor_position = _pick(draw, (0, 1))
    other_position = 1 - anchor_position
    anchor = builder.operand(_domain(op, anchor_position))
    anchor_shape = builder.shape(anchor)
    other_domain = _domain(op, other_position)
    sources = ("tensor", "scalar") if torch_accepts_scalar(op.name, form, other_position) else ("tensor",)
    if _pick(draw, sources) == "scalar":
        other = Literal(draw(_scalars(other_domain)))
    else:
        def broadcasts(tensor: torch.Tensor) -> bool:
            try:
                np.broadcast_shapes(anchor_shape, tuple(tensor.shape))
            except ValueError:
                return False
            return True
        other = builder.operand(other_domain, accept=broadcasts,
                                new_shape=_broadcastable(anchor_shape, limits.max_dims, limits.max_side))
    return ((anchor, other) if anchor_position == 0 else (other, anchor)), _keywords(builder, op, anchor)


def _reduction_args(builder: _Builder, op: Op, form: str) -> tuple[tuple, dict]:
    anchor = builder.operand(_domain(op, 0))
    return (anchor,), _keywords(builder, op, anchor)


_OMITTED = object()


@functools.lru_cache(maxsize=None)
def _keyword(kind: str | tuple, rank: int) -> st.SearchStrategy:
    """A keyword's value by its table kind, or _OMITTED (drawn first, so it shrinks to omitted).

    "dim": one dim of a rank-``rank`` tensor; "dims": None, one dim or a tuple
    of distinct dims; "bool"; "float" (a moderate number); "int" (small); a
    tuple lists the literal choices.
    """
    dim = st.integers(-rank, rank - 1)
    dims = st.lists(st.integers(0, rank - 1), unique=True, max_size=rank).flatmap(
        lambda chosen: st.tuples(*(st.sampled_from((index, index - rank)) for index in chosen)))
    values = {"dim": dim, "dims": st.one_of(st.none(), dim, dims), "bool": st.booleans(),
              "float": _scalars(REAL), "int": st.integers(-2, 3)}
    return st.one_of(st.just(_OMITTED), st.sampled_from(kind) if isinstance(kind, tuple) else values[kind])


def _keywords(builder: _Builder, op: Op, anchor: Ref) -> dict:
    """Keyword arguments for ``op`` on ``anchor``, each omitted or drawn by its table kind."""
    rank = max(len(builder.shape(anchor)), 1)  # torch lets a 0-d tensor use dim 0 or -1
    takes_dims = any(kind in ("dim", "dims") for kind in op.kwargs.values())
    kwargs: dict = {}
    for key, kind in op.kwargs.items():
        # torch's reductions take keepdim only after a dim: `x.sum(keepdim=True)` is a TypeError.
        if kind == "bool" and takes_dims and not any(op.kwargs[given] in ("dim", "dims") for given in kwargs):
            continue
        value = builder.draw(_keyword(kind, rank))
        if value is not _OMITTED:
            kwargs[key] = value
    return kwargs


def _matmul_args(builder: _Builder, op: Op, form: str) -> tuple[tuple, dict]:
    """Two tensors whose shapes multiply: vector or (batched) matrix on each side."""
    draw, limits = builder.draw, builder.limits
    anchor_on_left = draw(st.booleans())
    anchor = builder.operand(_domain(op, 0 if anchor_on_left else 1), accept=lambda tensor: tensor.dim() >= 1,
                             new_shape=_shapes(1, limits.max_dims, limits.max_side))
    anchor_shape = builder.shape(anchor)

    def multiplies(tensor: torch.Tensor) -> bool:
        shapes = (anchor_shape, tuple(tensor.shape)) if anchor_on_left else (tuple(tensor.shape), anchor_shape)
        return matmul_shape(*shapes) is not None

    other = builder.operand(_domain(op, 1 if anchor_on_left else 0), accept=multiplies,
                            new_shape=_matmul_partner_shapes(anchor_shape, anchor_on_left, limits))
    return ((anchor, other) if anchor_on_left else (other, anchor)), {}


@st.composite
def _matmul_partner_shapes(draw, anchor: tuple[int, ...], anchor_on_left: bool, limits: _Limits):
    """A shape that multiplies with ``anchor``: a vector, or a matrix with a broadcastable batch."""
    inner = anchor[-1] if anchor_on_left else anchor[0] if len(anchor) == 1 else anchor[-2]
    if limits.max_dims < 2 or draw(st.sampled_from(("vector", "matrix"))) == "vector":
        return (inner,)
    anchor_batch = anchor[:-2]
    batch = draw(_broadcastable(anchor_batch, limits.max_dims - 2, limits.max_side))
    outer = draw(st.integers(1, limits.max_side))
    return batch + ((inner, outer) if anchor_on_left else (outer, inner))


_ARGUMENTS_BY_KIND = {UNARY: _unary_args, BINARY: _binary_args, REDUCTION: _reduction_args, MATMUL: _matmul_args}


@st.composite
def _programs(draw, limits: _Limits) -> Program:
    step_count = draw(st.integers(1, limits.max_steps))
    dtype = _pick(draw, limits.dtypes)
    mixed = len(limits.dtypes) > 1 and _rarely(draw, MIXED_DTYPES_ONE_IN)
    builder = _Builder(draw, limits, dtype, mixed)
    # One input exists before the first step, so every step's choices have the
    # same layout and the shrinker can delete any of them (even the first).
    builder.new_input(draw(_shapes(0, limits.max_dims, limits.max_side)), REAL)
    for _ in range(step_count):
        op = BY_NAME[draw(st.sampled_from(limits.ops))]
        form = draw(st.sampled_from(op.forms))
        args, kwargs = _ARGUMENTS_BY_KIND[op.kind](builder, op, form)
        if not builder.add_step(op, form, args, kwargs):
            break
    return Program(tuple(builder.inputs), tuple(builder.steps), _action(draw, builder)).pruned()


def _action(draw, builder: _Builder) -> Action:
    """The final action, on a step output that usually requires grad (or on the step torch rejected)."""
    last = builder.steps[-1]
    if last.out not in builder.tensors:
        return Action(SUM_BACKWARD, last.out)  # never runs: the program stops at this step
    # Usually the newest output that requires grad: the program is pruned to the
    # target's ancestors, and the action then usually reaches a backward pass.
    outputs = sorted(reversed([step.out for step in builder.steps]),
                     key=lambda name: not builder.tensors[name].requires_grad)
    target = _pick(draw, outputs) if _rarely(draw, OTHER_TARGET_ONE_IN) else outputs[0]
    kind = _pick(draw, ACTION_KINDS)
    gradient = None
    if kind == BACKWARD_GRADIENT:
        result = builder.tensors[target]
        # A bool target (all, any) gets float values, which backward rejects like torch does.
        dtype = interpreter.dtype_name(result.dtype) if result.is_floating_point() else builder.dtype
        gradient = draw(_arrays(dtype, tuple(result.shape), REAL)).tolist()
    return Action(kind, target, gradient)
