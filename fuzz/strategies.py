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

Ops of the kinds without a shape rule here (shape, indexing, join, linalg,
nn, factory, comparison, in-place) are drawn from their table samples: a
sample is a template whose tensors come from the program (or new inputs of
the sample's shapes, or the newest tensor with the other shapes following
it) and whose keywords vary by their table spec. Besides op calls, steps
are in-place ops, ``detach``, ``retain_grad``, gradient hooks and
``no_grad`` regions; actions include repeated and double backward; input
values hit zeros, negative zeros, kinks, domain edges, ties and (rarely)
extreme magnitudes; and a share of programs is invalid on purpose (shape
or dtype mismatches, in-place ops on leaves, backward on what does not
require grad), so errors are compared too.

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

from engine.optable import (BINARY, BY_NAME, COMPARISON, INPLACE, MATMUL, NONZERO, OPS, POSITIVE, PROPERTY, REAL,
                            REDUCTION, UNARY, Op, T)
from fuzz import interpreter
from fuzz.program import (ACTION_KINDS, BACKWARD, BACKWARD_GRADIENT, DETACH, DOUBLE_BACKWARD, DTYPES, REGISTER_HOOK,
                          REPEATED_BACKWARD, RETAIN_GRAD, SETITEM, SUM_BACKWARD, Action, DType, Input, Literal,
                          Program, Ref, Seq, Slice, Step, as_arg)

# Kinds with a shape rule of their own here; every other op is drawn from its table samples
# (a sample is a template: its tensors come from the program, its keywords vary by their spec).
DRAWABLE_KINDS = (UNARY, BINARY, REDUCTION, MATMUL)
DRAWABLE_KWARG_TYPES = ("dim", "dims", "bool", "float", "int")

# Ops the fuzzer never draws, and why (tests/fuzz/test_strategies.py checks every other op is reached).
EXCLUDED_OPS = {
    "rand": "random values: the engine's generator is not torch's, so values cannot be compared "
            "(tests/engine/test_factory.py checks shapes, dtypes and ranges)",
    "randn": "random values, as rand",
    "randint": "random values, as rand",
    "manual_seed": "returns a torch.Generator, not a tensor; only meaningful with the random factories",
    "int": "gives int32, which the engine does not support (it raises NotImplementedError naming it)",
}
# Keywords whose sample values are kept: any other value makes the op random.
FROZEN_KWARGS = {"nn.functional.dropout": ("p", "training")}

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
NO_GRAD_STEP_ONE_IN = 16   # a step runs inside `with torch.no_grad():`
INVALID_ONE_IN = 12        # a program contains one step (or action) that is invalid on purpose
VARY_ONE_IN = 3            # a template's keyword value is redrawn from its spec (else the sample's is kept)
EXTRA_KEYWORD_ONE_IN = 6   # a template gets one more keyword of its spec

# What a step is, in shrink order (an op call first), repeated to weight the draw; the
# autograd features are drawn when `programs()` fuzzes the whole table.
STEP_KINDS = ("op",) * 10 + ("inplace", "inplace", DETACH, RETAIN_GRAD, REGISTER_HOOK)
# How a template op gets its tensors: "template" (the sample's shapes, from existing tensors
# of that shape or new inputs) or "adapt" (the newest tensor, other shapes following it).
TEMPLATE_MODES = ("template", "adapt", "adapt", "adapt")
# How an input's values are drawn, in shrink order: "plain" moderate values; "edges" mixes
# in zeros, negative zeros, the op's kinks and its domain's edges; "ties" repeats two values
# (max, amax, sort-like ops, maximum); "extreme" mixes in huge, tiny and non-finite values
# (a small share: they make tolerances meaningless after a few ops).
VALUE_FLAVOURS = ("plain",) * 8 + ("edges", "edges", "ties", "ties", "extreme")
INVALID_MODES = ("shape", "dtype", "leaf-inplace", "no-grad-target")
HOOK_SCALES = (2.0, -1.0, 0.5, 0.0, 3.0)
# Action kinds, in shrink order.
ACTIONS = (SUM_BACKWARD, SUM_BACKWARD, BACKWARD_GRADIENT, BACKWARD, REPEATED_BACKWARD, DOUBLE_BACKWARD)

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
_f32 = lambda value: float(np.float32(value))  # noqa: E731  (float32-exact, for both dtypes)
_EDGE_VALUES = {REAL: (0.0, -0.0), POSITIVE: (0.0, -0.0, -1.0, _f32(1e-30)), NONZERO: (0.0, -0.0, _f32(1e-30))}
_TIE_VALUES = {REAL: (1.0, -1.0, 0.0), POSITIVE: (1.0, 2.0), NONZERO: (1.0, -1.0)}
_EXTREME_VALUES = (_f32(1e30), _f32(-1e30), _f32(1e-30), _f32(-1e-30), _f32(3e38), _f32(1e-40),
                   float("inf"), float("-inf"), float("nan"))
_SIMPLE_SCALARS = {
    REAL: (2, 1, -1, 0, 3, -2, 0.5, -0.5, 1.5, -0.0),
    POSITIVE: (2, 1, 3, 0.5, 1.5),
    NONZERO: (2, 1, -1, 3, -2, 0.5, -0.5),
}


def programs(*, ops: Iterable[str] | None = None, max_steps: int = 6, max_inputs: int = 3,
             dtypes: Iterable[str] = DTYPES, max_dims: int = 3, max_side: int = 4,
             autograd_features: bool | None = None) -> st.SearchStrategy[Program]:
    """Random Programs over the op table's ops.

    ops: op names to draw from (default: `drawable_ops()`, every op in
        `engine.optable.OPS` but the EXCLUDED_OPS).
    max_steps: at most this many steps (at least 1); a multi-output op adds
        one indexing step for the output that goes on.
    max_inputs: at most this many input tensors (at least 1); index tensors
        and masks that samples spell out do not count.
    dtypes: the input dtypes; a program usually uses one of them for all
        inputs and sometimes mixes them (type promotion).
    max_dims, max_side: bounds on the rank and side length of drawn shapes.
    autograd_features: also draw in-place steps, detach, retain_grad, hooks,
        no_grad regions and programs invalid on purpose (default: only when
        ``ops`` is not given, so a selection of ops gets plain programs).

    Example::

        from hypothesis import given
        from fuzz.strategies import programs

        @given(programs(ops=["mul", "sum"], max_steps=3))
        def test_mul_sum(program):
            ...
    """
    chosen = _validate(ops, max_steps, max_inputs, dtypes, max_dims, max_side)
    features = ops is None if autograd_features is None else bool(autograd_features)
    return _programs(_Limits(tuple(op.name for op in chosen), max_steps, max_inputs, tuple(dtypes),
                             max_dims, max_side, features))


@dataclass(frozen=True)
class _Limits:
    ops: tuple[str, ...]  # names, so that Hypothesis' reports print this briefly
    max_steps: int
    max_inputs: int
    dtypes: tuple[str, ...]
    max_dims: int
    max_side: int
    features: bool = False

    @functools.cached_property
    def inplace_ops(self) -> tuple[str, ...]:
        return tuple(name for name in self.ops if BY_NAME[name].inplace
                     and (BY_NAME[name].kind in (UNARY, BINARY) or BY_NAME[name].samples))


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
        raise ValueError(f"programs(): cannot draw arguments for {undrawable} "
                         f"({'; '.join(EXCLUDED_OPS.get(name, 'no samples') for name in undrawable)})")
    return tuple(BY_NAME[name] for name in names)


def _by_kind_rule(op: Op) -> bool:
    return op.kind in DRAWABLE_KINDS and all(
        isinstance(kind, tuple) or kind in DRAWABLE_KWARG_TYPES for kind in op.kwargs.values())


def _drawable(op: Op) -> bool:
    if op.name in EXCLUDED_OPS:
        return False
    return _by_kind_rule(op) or bool(op.samples) or op.name == SETITEM


@functools.lru_cache(maxsize=None)
def drawable_ops() -> tuple[Op, ...]:
    """The table's ops whose arguments `programs()` can draw (the default op selection)."""
    return tuple(op for op in OPS if _drawable(op))


def _rarely(draw, one_in: int) -> bool:
    """True about once in ``one_in`` draws; shrinks to False."""
    return draw(st.integers(0, one_in - 1)) == one_in - 1


# Strategies are immutable; building them once per argument tuple (instead of
# per draw) keeps generation fast.
@functools.lru_cache(maxsize=None)
def _elements(domain: str, dtype: str, flavour: str = "plain", kinks: tuple = ()) -> st.SearchStrategy:
    """Values for an input in ``domain``.

    "plain": simple ones first (zeros, small integers), then moderate 0.1 <= |x| <= 4;
    "edges", "ties", "extreme": see VALUE_FLAVOURS. Special values are
    `sampled_from` choices that shrink to the first (simple) one.
    """
    if dtype == "int64":
        return st.integers(-3, 3)
    if dtype == "bool":
        return st.booleans()
    width = 32 if dtype == "float32" else 64
    positive = st.floats(SMALLEST_MAGNITUDE, 4.0, width=width)
    negative = st.floats(-4.0, -SMALLEST_MAGNITUDE, width=width)
    general = (positive,) if domain == POSITIVE else (positive, negative)
    plain = st.one_of(st.sampled_from(_SIMPLE_VALUES[domain]), *general)
    if flavour == "edges":
        edges = tuple(dict.fromkeys(_EDGE_VALUES[domain] + tuple(_f32(kink) for kink in kinks)))
        return st.one_of(st.sampled_from(edges), plain)
    if flavour == "ties":
        return st.sampled_from(_TIE_VALUES[domain])
    if flavour == "extreme":
        return st.one_of(plain, st.sampled_from(_EXTREME_VALUES))
    return plain


@functools.lru_cache(maxsize=None)
def _scalars(domain: str) -> st.SearchStrategy[int | float]:
    """Python scalar operands; floats are float32-exact so both backends see the same number."""
    positive = st.floats(SMALLEST_MAGNITUDE, 4.0, width=32)
    negative = st.floats(-4.0, -SMALLEST_MAGNITUDE, width=32)
    general = (positive,) if domain == POSITIVE else (positive, negative)
    return st.one_of(st.sampled_from(_SIMPLE_SCALARS[domain]), *general)


@functools.lru_cache(maxsize=None)
def _arrays(dtype: str, shape: tuple[int, ...], domain: str, flavour: str = "plain",
            kinks: tuple = ()) -> st.SearchStrategy[np.ndarray]:
    return arrays(np.dtype(dtype), shape, elements=_elements(domain, dtype, flavour, kinks), fill=st.nothing())


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


def _domains(tensor) -> frozenset[str]:
    """The domains every element of ``tensor`` is moderate and inside of."""
    if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
        return frozenset()
    values = tensor.detach().abs()
    if not bool(torch.isfinite(values).all()) or bool((values > MODERATE).any()):
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
    env: dict[str, object] = field(default_factory=dict)  # the tensors and multi-output results, by name
    domains: dict[str, frozenset[str]] = field(default_factory=dict)  # each tensor's, see _domains
    kinks: tuple = ()              # the kinks of the op whose operands are being drawn
    forced: Ref | None = None      # the next operand() (an in-place op's receiver)
    no_grad: bool = False          # the step being drawn runs under no_grad
    failed: bool = False           # torch rejected the last step

    def add_tensor(self, name: str, tensor: torch.Tensor) -> None:
        self.tensors[name] = self.env[name] = tensor
        self.domains[name] = _domains(tensor)

    def new_input(self, shape: tuple[int, ...], domain: str, *, dtype: str | None = None, values=None,
                  requires_grad: bool | None = None) -> Ref:
        draw = self.draw
        if dtype is None:
            dtype = _pick(draw, self.limits.dtypes) if self.mixed else self.dtype
        if values is None:
            flavour = _pick(draw, VALUE_FLAVOURS)
            values = draw(_arrays(dtype, shape, domain, flavour, self.kinks if flavour == "edges" else ())).tolist()
        if requires_grad is None:
            # Usually requires grad; shrinks to False. Sometimes no input does, so that
            # "element 0 of tensors does not require grad" is compared too.
            requires_grad = dtype in DTYPES and not _rarely(draw, NO_GRAD_ONE_IN)
        name = f"x{len(self.inputs)}"
        self.inputs.append(Input(name, shape, dtype, values, requires_grad))
        self.add_tensor(name, interpreter.make_input(torch, self.inputs[-1]))
        return Ref(name)

    def can_add_input(self) -> bool:
        return sum(tensor.dtype in DTYPES for tensor in self.inputs) < self.limits.max_inputs

    def operand(self, domain: str, *, accept=lambda tensor: True,
                new_shape: st.SearchStrategy[tuple[int, ...]] | None = None) -> Ref:
        """An existing tensor that ``accept``s and fits ``domain`` (oldest first), or a new input.

        Once in a while (and when nothing fits and no input can be added) the
        domain is ignored: what an op does at its edges is behaviour too.
        """
        if self.forced is not None:
            forced, self.forced = self.forced, None
            return forced
        draw = self.draw
        ignore_domain = _rarely(draw, OUT_OF_DOMAIN_ONE_IN)
        # Bool and integer results (comparisons, argmax) reach float ops only through templates.
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

    def add_step(self, op: str, form: str, args: tuple, kwargs: dict) -> bool:
        """Append the step and evaluate it on torch; False if torch raised (the program ends there).

        A multi-output op (split, max along a dim) is followed by an indexing
        step that picks the output the program goes on with.
        """
        step = Step(op, form, args, kwargs, f"v{len(self.steps)}", self.no_grad)
        self.steps.append(step)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = interpreter.apply_step(torch, step, self.env)
        except Exception:  # noqa: BLE001  (a step torch rejects is a valid test of error behaviour)
            self.failed = True
            return False
        if isinstance(result, (tuple, list)):
            self.env[step.out] = result  # read by the indexing step only
            if not result:
                return True
            self.no_grad = False
            return self.add_step("__getitem__", "method",
                                 (Ref(step.out), Literal(_pick(self.draw, range(len(result))))), {})
        self.add_tensor(step.out, result)
        if step.aliases_first:  # an in-place op changed a tensor other names see too
            for name, tensor in self.tensors.items():
                if tensor is result:
                    self.domains[name] = self.domains[step.out]
        return True

    def float_tensors(self, *, non_leaf: bool = False) -> list[str]:
        return [name for name, tensor in self.tensors.items() if tensor.is_floating_point()
                and not (non_leaf and name.startswith("x"))]


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
    ``2 ** x``, but not ``torch.maximum(x, 2)``. An in-place op's receiver
    is the anchor, first.
    """
    draw, limits = builder.draw, builder.limits
    anchor_position = 0 if builder.forced is not None else _pick(draw, (0, 1))
    other_position = 1 - anchor_position
    anchor = builder.operand(_domain(op, anchor_position))
    anchor_shape = builder.shape(anchor)
    other_domain = _domain(op, other_position)
    scalar_form = "method" if form == "inplace" else form
    sources = ("tensor", "scalar") if torch_accepts_scalar(op.name, scalar_form, other_position) else ("tensor",)
    if _pick(draw, sources) == "scalar":
        other = Literal(draw(_scalars(other_domain)))
    else:
        def broadcasts(tensor: torch.Tensor) -> bool:
            try:
                np.broadcast_shapes(anchor_shape, tuple(tensor.shape))
            except ValueError:
                return False
            return True
        if form == "inplace":  # the result is written into the anchor: the other side broadcasts to it
            def broadcasts(tensor: torch.Tensor) -> bool:
                try:
                    return np.broadcast_shapes(anchor_shape, tuple(tensor.shape)) == anchor_shape
                except ValueError:
                    return False
            new_shape = _broadcastable(anchor_shape, len(anchor_shape), limits.max_side)
        else:
            new_shape = _broadcastable(anchor_shape, limits.max_dims, limits.max_side)
        other = builder.operand(other_domain, accept=broadcasts, new_shape=new_shape)
    return ((anchor, other) if anchor_position == 0 else (other, anchor)), _keywords(builder, op, anchor)


def _reduction_args(builder: _Builder, op: Op, form: str) -> tuple[tuple, dict]:
    anchor = builder.operand(_domain(op, 0))
    return (anchor,), _keywords(builder, op, anchor)


_OMITTED = object()


@functools.lru_cache(maxsize=None)
def _spec_values(kind: str | tuple, rank: int) -> st.SearchStrategy:
    """A keyword's value by its table kind.

    "dim": one dim of a rank-``rank`` tensor; "dims": None, one dim or a tuple
    of distinct dims; "bool"; "float" (a moderate number); "int" (small); a
    tuple lists the literal choices.
    """
    if isinstance(kind, tuple):
        return st.sampled_from(kind)
    dim = st.integers(-rank, rank - 1)
    if kind == "dim":
        return dim
    if kind == "dims":
        dims = st.lists(st.integers(0, rank - 1), unique=True, max_size=rank).flatmap(
            lambda chosen: st.tuples(*(st.sampled_from((index, index - rank)) for index in chosen)))
        return st.one_of(st.none(), dim, dims)
    return {"bool": st.booleans(), "float": _scalars(REAL), "int": st.integers(-2, 3)}[kind]


@functools.lru_cache(maxsize=None)
def _keyword(kind: str | tuple, rank: int) -> st.SearchStrategy:
    """A keyword's value by its table kind, or _OMITTED (drawn first, so it shrinks to omitted)."""
    return st.one_of(st.just(_OMITTED), _spec_values(kind, rank))


def _keywords(builder: _Builder, op: Op, anchor: Ref) -> dict:
    """Keyword arguments for ``op`` on ``anchor``, each omitted or drawn by its table kind."""
    rank = max(len(builder.shape(anchor)), 1)  # torch lets a 0-d tensor use dim 0 or -1
    takes_dims = any(kind in ("dim", "dims") for kind in op.kwargs.values())
    kwargs: dict = {}
    for key, kind in op.kwargs.items():
        # torch's reductions take keepdim only after a dim: `x.sum(keepdim=True)` is a TypeError.
        if kind == "bool" and takes_dims and not any(op.kwargs[given] in ("dim", "dims") for given in kwargs):
            continue
        if kind == "shape":
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


# ---- templates: ops drawn from their table samples ---------------------------------------

def _tensors_in(value) -> list[T]:
    if isinstance(value, T):
        return [value]
    if isinstance(value, (list, tuple)):
        return [tensor for item in value for tensor in _tensors_in(item)]
    return []


def _free(tensor: T) -> bool:
    """A tensor of the dtype under test whose values are drawn: any program tensor of its shape may stand in."""
    return tensor.dtype is None and tensor.values is None


@dataclass
class _Template:
    """One sample of an op being turned into a step's operands."""

    builder: _Builder
    op: Op
    adapt: bool
    anchor: T | None
    shapes: dict  # template shape -> the program's shape standing in for it
    receiver: bool = False  # the first tensor is an in-place receiver (zero_, fill_, copy_)
    bound: dict = field(default_factory=dict)  # id of a sample T already given a tensor

    def tensor(self, spec: T, first: bool) -> Ref:
        builder, draw = self.builder, self.builder.draw
        if first and self.receiver:
            ref = _receiver(builder, tuple(spec.shape) if not self.adapt else None)
            if self.adapt:
                self.shapes[tuple(spec.shape)] = builder.shape(ref)
            return ref
        if spec is self.anchor and id(spec) in self.bound:
            return self.bound[id(spec)]
        shape = self.standing_in(tuple(spec.shape))
        if spec.values is not None:
            if spec.dtype == "bool" and _pick(draw, (False, True)):
                masks = [name for name, tensor in builder.tensors.items() if tensor.dtype == torch.bool
                         and tuple(tensor.shape) == shape]
                if masks:
                    return Ref(_pick(draw, masks))
            values = np.asarray(spec.values).tolist()
            dtype = spec.dtype if spec.dtype not in (None, "no_grad") else builder.dtype
            requires_grad = None if spec.dtype is None else False
            return builder.new_input(tuple(np.shape(values)), spec.domain, dtype=dtype, values=values,
                                     requires_grad=requires_grad)
        if spec.dtype is None:
            fits = lambda tensor: tuple(tensor.shape) == shape and tensor.is_floating_point()  # noqa: E731
            if builder.can_add_input() or any(fits(tensor) for tensor in builder.tensors.values()):
                return builder.operand(spec.domain, accept=fits, new_shape=st.just(shape))
            return builder.new_input(shape, spec.domain)  # the sample's shape, over max_inputs
        dtype = builder.dtype if spec.dtype == "no_grad" else spec.dtype
        return builder.new_input(shape, spec.domain, dtype=dtype, requires_grad=False)


    def standing_in(self, shape: tuple) -> tuple:
        """The shape a template shape becomes: the anchor's stand-in, or the same suffix of it
        (a broadcast partner, a mask, a weight); other shapes stay as the sample has them."""
        if not self.shapes or not shape:
            return shape
        (template, actual), = self.shapes.items()
        if shape == template:
            return actual
        if len(shape) < len(template) and template[len(template) - len(shape):] == shape:
            return actual[len(actual) - len(shape):]
        return shape


def _receiver(builder: _Builder, shape: tuple | None) -> Ref:
    """An in-place op's receiver: a step output (legal), else a new input that does not require grad."""
    draw = builder.draw
    # Not a leaf that requires grad (a factory's `requires_grad=True` output): that is the invalid case.
    names = [name for name in builder.float_tensors(non_leaf=True)
             if (shape is None or tuple(builder.tensors[name].shape) == shape)
             and (builder.tensors[name].grad_fn is not None or not builder.tensors[name].requires_grad)]
    if names and _pick(draw, (True, False)):
        return Ref(names[-1] if _pick(draw, (True, False)) else _pick(draw, names))
    if shape is None:
        shape = draw(_shapes(0, builder.limits.max_dims, builder.limits.max_side))
    return builder.new_input(shape, REAL, requires_grad=False)


def _derived_shapes(shape: tuple) -> list:
    """Shapes a "shape" keyword may take for a tensor of ``shape``: views and broadcasts of it."""
    return [tuple(shape), (-1,), (1,) + tuple(shape), (2,) + tuple(shape), tuple(reversed(shape))]


def _vary(template: _Template, kind, value, rank: int, anchor_shape: tuple | None):
    """A keyword or positional value of a template: the sample's, or (sometimes) another by its spec."""
    draw = template.builder.draw
    if kind == "shape":
        if not isinstance(value, (tuple, list)) or anchor_shape is None:
            return value
        if template.adapt or _rarely(draw, VARY_ONE_IN):
            return _pick(draw, _derived_shapes(anchor_shape))
        return value
    # A value is redrawn only when the sample's value has the type the spec draws: positional
    # values are matched to the table's keywords by position, and a mismatch (an int dim meeting
    # a bool or float keyword) would otherwise put a bool or float where torch wants an int.
    fits = {"dim": isinstance(value, int) and not isinstance(value, bool),
            "dims": value is None or isinstance(value, int) or (
                isinstance(value, (tuple, list)) and all(isinstance(item, int) for item in value)),
            "int": isinstance(value, int) and not isinstance(value, bool),
            "float": isinstance(value, float),
            "bool": isinstance(value, bool)}.get(kind, True) if not isinstance(kind, tuple) else \
        any(type(value) is type(choice) and value == choice for choice in kind)
    if not fits:
        return value
    out_of_range = kind in ("dim", "dims") and isinstance(value, int) and not -rank <= value < rank
    if out_of_range or _rarely(draw, VARY_ONE_IN):
        return draw(_spec_values(kind, rank))
    return value


def _adaptable(anchor: T, tensors: list[T]) -> bool:
    """Whether another tensor may stand in for the sample's anchor: every other drawn tensor's shape
    is the anchor's, a suffix of it, or () (so `_Template.standing_in` can follow it)."""
    shape = tuple(anchor.shape)
    return all(tensor.values is not None or not tensor.shape or
               shape[len(shape) - len(tensor.shape):] == tuple(tensor.shape) for tensor in tensors)


def _template_args(builder: _Builder, op: Op, form: str) -> tuple[tuple, dict]:
    """Operands from one of the op's samples (`sampled_from`, shrinking to the first)."""
    draw = builder.draw
    args, kwargs = _pick(draw, op.samples)
    tensors = _tensors_in((args, tuple(kwargs.values())))
    anchor = next((tensor for tensor in tensors if _free(tensor)), None)
    receiver = op.kind == INPLACE or form == "inplace"
    adapt = anchor is not None and _adaptable(anchor, tensors) and _pick(draw, TEMPLATE_MODES) == "adapt"
    template = _Template(builder, op, adapt, anchor, {}, receiver)
    anchor_shape = None
    if receiver:
        anchor_shape = None
    elif anchor is not None:
        if adapt:
            # Any tensor of the sample's rank stands in (so dims and index expressions still fit).
            ref = builder.operand(anchor.domain, accept=lambda tensor: tensor.dim() == len(anchor.shape),
                                  new_shape=st.just(tuple(anchor.shape)))
            template.shapes[tuple(anchor.shape)] = builder.shape(ref)
        else:
            ref = template.tensor(anchor, False)
        template.bound[id(anchor)] = ref
        anchor_shape = builder.shape(ref)
    rank = max(len(anchor_shape), 1) if anchor_shape is not None else 1
    frozen = FROZEN_KWARGS.get(op.name, ())
    names = [key for key in op.kwargs if key not in kwargs]
    first_tensor = [True]

    def build(value, spec=None):
        if isinstance(value, T):
            first, first_tensor[0] = first_tensor[0], False
            ref = template.tensor(value, first)
            return ref
        if isinstance(value, (list, tuple)) and _tensors_in(value):
            return Seq(tuple(build(item) for item in value), "list" if isinstance(value, list) else "tuple")
        return as_arg(value)

    built_args = []
    for value in args:
        if _tensors_in(value):
            built_args.append(build(value))
            continue
        key = names.pop(0) if names else None
        if key is not None and key not in frozen:
            value = _vary(template, op.kwargs[key], value, rank, anchor_shape)
        built_args.append(build(value))
    built_kwargs = {}
    for key, value in kwargs.items():
        if key == "dtype" and isinstance(value, str):
            built_kwargs[key] = DType(value)
        elif _tensors_in(value):
            built_kwargs[key] = build(value)
        elif key in op.kwargs and key not in frozen:
            built_kwargs[key] = _vary(template, op.kwargs[key], value, rank, anchor_shape)
        else:
            built_kwargs[key] = value
    if names and _rarely(draw, EXTRA_KEYWORD_ONE_IN):
        key = _pick(draw, names)
        if key not in frozen:
            kind = op.kwargs[key]
            built_kwargs[key] = (_pick(draw, _derived_shapes(anchor_shape or ())) if kind == "shape"
                                 else draw(_spec_values(kind, rank)))
    return tuple(built_args), built_kwargs


def _setitem_args(builder: _Builder, op: Op, form: str) -> tuple[tuple, dict]:
    """``x[index] = value`` on a receiver: an int, a slice, ``[:, i]`` or a mask; a number or a tensor."""
    draw = builder.draw
    receiver = _receiver(builder, None)
    shape = builder.shape(receiver)
    side = shape[0] if shape else 1
    kind = _pick(draw, ("int", "slice", "column", "mask", "repeated"))
    if kind == "int" or not shape:
        index = Literal(draw(st.integers(-side, side - 1))) if shape else Literal(None)
    elif kind == "slice":
        index = Slice(draw(st.integers(0, side)), None, None)
    elif kind == "column" and len(shape) >= 2:
        index = Seq((Slice(), Literal(draw(st.integers(0, shape[1] - 1)))))
    elif kind == "mask":
        index = builder.new_input(shape, REAL, dtype="bool", requires_grad=False)
    else:  # repeated positions: which write wins is torch's business, compared too
        index = builder.new_input((2,), REAL, dtype="int64", values=[0, 0], requires_grad=False)
    if _pick(draw, ("scalar", "tensor")) == "scalar":
        value = Literal(draw(_scalars(REAL)))
    else:
        value = builder.operand(REAL, accept=lambda tensor: tensor.dim() == 0, new_shape=st.just(()))
    return (receiver, index, value), {}


_ARGUMENTS_BY_KIND = {UNARY: _unary_args, BINARY: _binary_args, REDUCTION: _reduction_args, MATMUL: _matmul_args}


@functools.lru_cache(maxsize=None)
def _makers(name: str) -> tuple[Callable, ...]:
    """The ways to draw an op's operands, in shrink order (a kind rule first, where there is one)."""
    op = BY_NAME[name]
    if op.name == SETITEM:
        return (_setitem_args,)
    makers = []
    if _by_kind_rule(op):
        makers.append(_ARGUMENTS_BY_KIND[op.kind])
    if op.samples:
        makers.append(_template_args)
    if op.kind == COMPARISON and op.samples:
        first = op.samples[0][0]
        if first and isinstance(first[0], T) and first[0].dtype is None:
            makers.append(_binary_args if len(first) == 2 else _unary_args)
    return tuple(makers)


def _form(draw, op: Op, args: tuple, kwargs: dict) -> str:
    forms = [form for form in op.forms
             if not (form == "operator" and (kwargs or len(args) not in (1, 2) or not any(
                 isinstance(arg, Ref) for arg in args)))
             and not (form in ("method", PROPERTY) and not (args and isinstance(args[0], Ref)))
             and not (form == PROPERTY and (len(args) > 1 or kwargs))]
    return _pick(draw, forms) if forms else op.forms[0]


def _op_step(builder: _Builder, op: Op) -> bool:
    draw = builder.draw
    builder.kinks = op.kinks
    maker = _pick(draw, _makers(op.name))
    form = None
    if maker in _ARGUMENTS_BY_KIND.values():
        form = draw(st.sampled_from(op.forms))
    args, kwargs = maker(builder, op, form)
    if form is None:
        form = _form(draw, op, args, kwargs)
    return builder.add_step(op.name, form, args, kwargs)


def _inplace_step(builder: _Builder, *, on_leaf: bool = False) -> bool:
    """``receiver.<op>_(...)`` for a table op with an in-place method (its receiver a step output,
    or on purpose a leaf that requires grad)."""
    draw = builder.draw
    op = BY_NAME[_pick(draw, builder.limits.inplace_ops)]
    builder.kinks = op.kinks
    if op.kind not in _ARGUMENTS_BY_KIND:  # e.g. lerp_: the sample's first tensor is the receiver
        args, kwargs = _template_args(builder, op, "inplace")
        # A sample whose first operand is not a tensor (`True & mask`) has no receiver: call the op.
        form = "inplace" if args and isinstance(args[0], Ref) else _form(draw, op, args, kwargs)
        return builder.add_step(op.name, form, args, kwargs)
    if on_leaf:
        leaves = [tensor.name for tensor in builder.inputs if tensor.requires_grad]
        builder.forced = Ref(leaves[-1]) if leaves else None
    if builder.forced is None:
        builder.forced = _receiver(builder, None)
    args, kwargs = _ARGUMENTS_BY_KIND[op.kind](builder, op, "inplace")
    builder.forced = None
    return builder.add_step(op.name, "inplace", args, kwargs)


def _special_step(builder: _Builder, kind: str) -> bool:
    """detach, retain_grad or a gradient-scaling hook on an existing float tensor."""
    draw = builder.draw
    # Usually on a tensor that requires grad; once in a while not, for torch's error.
    wants_grad = not _rarely(draw, NO_GRAD_ONE_IN)
    names = [name for name in builder.float_tensors(non_leaf=kind == RETAIN_GRAD)
             if builder.tensors[name].requires_grad == wants_grad]
    if not names:
        return True  # nothing to act on: no step
    target = Ref(names[-1] if _pick(draw, (True, False)) else _pick(draw, names))
    args = (target, Literal(_pick(draw, HOOK_SCALES))) if kind == REGISTER_HOOK else (target,)
    return builder.add_step(kind, "method", args, {})


def _invalid_step(builder: _Builder, mode: str) -> bool:
    """A step that is wrong on purpose: torch's error is then what gets compared."""
    draw, limits = builder.draw, builder.limits
    names = builder.float_tensors()
    if mode == "leaf-inplace" and limits.inplace_ops:
        return _inplace_step(builder, on_leaf=True)
    anchor = Ref(names[-1])
    shape = builder.shape(anchor)
    binary = [name for name in limits.ops if BY_NAME[name].kind in (BINARY, MATMUL)] or ["add"]
    op = BY_NAME[_pick(draw, binary)]
    if mode == "dtype":  # an integer or bool operand where floats are expected
        other = builder.new_input(shape, REAL, dtype=_pick(draw, ("int64", "bool")), requires_grad=False)
    else:  # "shape": sides that neither broadcast nor multiply
        other_shape = shape[:-1] + (shape[-1] + 1,) if shape else (2, 3)
        other = builder.new_input(other_shape, REAL)
        if not shape:
            anchor = builder.new_input((4,), REAL)
    form = "function" if "function" in op.forms else op.forms[0]
    return builder.add_step(op.name, form, (anchor, other), {})


@st.composite
def _programs(draw, limits: _Limits) -> Program:
    step_count = draw(st.integers(1, limits.max_steps))
    dtype = _pick(draw, limits.dtypes)
    mixed = len(limits.dtypes) > 1 and _rarely(draw, MIXED_DTYPES_ONE_IN)
    builder = _Builder(draw, limits, dtype, mixed)
    # One input exists before the first step, so every step's choices have the
    # same layout and the shrinker can delete any of them (even the first).
    builder.new_input(draw(_shapes(0, limits.max_dims, limits.max_side)), REAL)
    invalid_mode, invalid_at = None, None
    if limits.features and _rarely(draw, INVALID_ONE_IN):
        invalid_mode = _pick(draw, INVALID_MODES)
        invalid_at = draw(st.integers(0, step_count - 1))
    for index in range(step_count):
        builder.no_grad = limits.features and _rarely(draw, NO_GRAD_STEP_ONE_IN)
        kind = _pick(draw, STEP_KINDS) if limits.features else "op"
        if index == invalid_at and invalid_mode in ("shape", "dtype", "leaf-inplace"):
            ok = _invalid_step(builder, invalid_mode)
        elif kind == "op" or (kind == "inplace" and not limits.inplace_ops):
            ok = _op_step(builder, BY_NAME[draw(st.sampled_from(limits.ops))])
        elif kind == "inplace":
            ok = _inplace_step(builder)
        else:
            ok = _special_step(builder, kind)
        if not ok:
            break
    if not builder.steps:  # only possible with special steps that found nothing to act on
        builder.add_step("clone" if "clone" in BY_NAME else "neg", "function", (Ref("x0"),), {})
    action = _action(draw, builder, no_grad_target=invalid_mode == "no-grad-target")
    return Program(tuple(builder.inputs), tuple(builder.steps), action).pruned()


def _action(draw, builder: _Builder, *, no_grad_target: bool = False) -> Action:
    """The final action, on a step output that usually requires grad (or on the step torch rejected)."""
    last = builder.steps[-1]
    if builder.failed:
        return Action(SUM_BACKWARD, last.out)  # never runs: the program stops at this step
    outputs = [step.out for step in builder.steps if step.out in builder.tensors]
    if not outputs:
        return Action(SUM_BACKWARD, last.out)
    if no_grad_target:
        # Backward on what does not require grad: a detached output.
        builder.add_step(DETACH, "method", (Ref(outputs[-1]),), {})
        return Action(_pick(draw, (SUM_BACKWARD, BACKWARD)), builder.steps[-1].out)
    # Usually the newest output that requires grad: the program is pruned to the
    # target's ancestors, and the action then usually reaches a backward pass.
    newest = outputs[-1]
    outputs = sorted(reversed(outputs), key=lambda name: not builder.tensors[name].requires_grad)
    # Otherwise the newest output itself, even when it does not require grad (comparisons, argmax,
    # factories): its values are compared, and what backward says about it.
    choice = _pick(draw, ("grad", "newest", "any")) if _rarely(draw, OTHER_TARGET_ONE_IN // 2) else "grad"
    target = {"grad": outputs[0], "newest": newest, "any": _pick(draw, outputs) if choice == "any" else None}[choice]
    kinds = ACTIONS if builder.limits.features else ACTION_KINDS[:3]
    kind = _pick(draw, kinds)
    gradient, retain_graph = None, False
    if kind == BACKWARD_GRADIENT:
        result = builder.tensors[target]
        # A bool target (all, any) gets float values, which backward rejects like torch does.
        dtype = interpreter.dtype_name(result.dtype) if result.is_floating_point() else builder.dtype
        gradient = draw(_arrays(dtype, tuple(result.shape), REAL)).tolist()
    if kind == REPEATED_BACKWARD:
        retain_graph = _pick(draw, (True, False))
    return Action(kind, target, gradient, retain_graph)
