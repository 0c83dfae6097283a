"""Random Programs, driven by the op table: a Hypothesis strategy and a fast random source.

One program builder makes every program; it takes each decision from a
`ChoiceSource` (an integer in a range, a boolean or a bounded float). Under
`programs()` the source is Hypothesis (`HypothesisSource`: each choice one
`st.integers` / `st.booleans` / `st.floats` draw, so Hypothesis replays and
shrinks programs); under `fast_programs()` it is a seeded `random.Random`
(`RandomSource`), many times faster, which records each choice as the
Hypothesis choice it stands for: `choices_blob` turns a random program into
an example-database entry from which `programs()` builds the same program
again, so a campaign searches fast and still shrinks with Hypothesis. A
tensor's values take two choices (a flavour and a seed), not one per element.
`fast_examples()` also gives torch's Outcome of each program, recorded while
the builder evaluated its steps (torch then runs each program once).

The builder builds a DAG one step at a time. Each step samples an op from
`engine.optable.OPS` (so a new table entry of a kind drawn here is fuzzed
without touching this module), a form the op offers, and operands by the op
kind's shape rule: existing tensors of a compatible shape, fresh inputs drawn
to fit, or Python scalars where torch takes them. Each step is evaluated on
torch as it is drawn, so the builder knows every intermediate shape, dtype
and value: it picks operands inside the op's domain most of the time, and
at a step torch rejects it either ends the program there (that step's error
is then what gets compared; one in KEEP_STEP_ERROR_ONE_IN) or takes the step
back and goes on. The program is finally pruned to what the action's target
depends on, so the builder grows a chain: it draws a length (geometric, see
`_chain_length`), prefers operands that depend on the target so far (a
step's anchor mostly the newest such tensor that requires grad, and samples
that fit it), joins an output that cannot carry the gradient (a comparison's
mask, a factory's tensor, a detached or no_grad result) into the chain by
the next step (`_join`), and stops once the target depends on that many steps.

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

Choices are ordered so failures shrink bottom-up: the chain length first,
ops and forms as indices, operands towards the inputs (so steps in between
become dead code and are pruned), small shapes, and simple values (a tensor
of one simple value, zeros first) before pseudo-random ones.
"""
from __future__ import annotations

import functools
import itertools
import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.database import choices_to_bytes

from engine.optable import (BINARY, BY_NAME, COMPARISON, INPLACE, MATMUL, NONZERO, OPS, POSITIVE, PROPERTY, REAL,
                            REDUCTION, UNARY, Op, T)
from fuzz import interpreter
from fuzz.outcome import Outcome, StepResult
from oracle import foreseen
from oracle.reference import normalize_message, torch_input
from fuzz.program import (ALIASING_OPS, ACTION_KINDS, BACKWARD, BACKWARD_GRADIENT, DETACH, DOUBLE_BACKWARD, DTYPES, INPUT_DTYPES,
                          REGISTER_HOOK,
                          REPEATED_BACKWARD, RETAIN_GRAD, SETITEM, SUM_BACKWARD, Action, Arg, DType, Input, Literal,
                          FORMAT_VERSION, Program, Ref, Seq, Slice, Step, _frozen, as_arg)
from fuzz.program import ref as _ref

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

# Each chain length (how many steps the action's target depends on, see _chain_length) is this many
# times as likely as the one before; with the programs torch rejects early, the kept programs are then
# at least as long at every length as when the builder drew 1..max_steps steps and pruned 60 % of them.
CHAIN_RATIO = 0.6

# Rare choices, as "one in N" (each shrinks to the common choice):
OUT_OF_DOMAIN_ONE_IN = 10  # an operand ignores the op's domain: edges are behaviour too
NO_GRAD_ONE_IN = 8         # an input does not require grad
MIXED_DTYPES_ONE_IN = 6    # a program's inputs mix dtypes (type promotion)
INTEGRAL_DTYPES = tuple(dtype for dtype in INPUT_DTYPES if dtype not in DTYPES)
INTEGRAL_INPUT_ONE_IN = 3  # in such a program, an input is int64 or bool (integer arithmetic, int / int, ...)
# NOTE: torch's reductions and cumulative ops have result dtypes of their own for integral operands: sums
# and products of int64 or bool are int64 (sum, prod, cumsum, cumprod, trace), mean/var/std refuse them,
# all/any give bool, amax/amin keep the dtype. These ops take an int64 or bool first operand one in
# INTEGRAL_REDUCTION_ONE_IN draws, in any program of several dtypes; the step then ends the program and
# the action targets its result (which requires no grad, so no later step would keep it). Mixed programs
# alone gave sum no integral operand in 10,000 programs (a planted bool.sum() -> bool went unfound in 60 s).
ACCUMULATING_OPS = frozenset(op.name for op in OPS if op.kind == REDUCTION) | {"cumsum", "cumprod", "trace"}
INTEGRAL_REDUCTION_ONE_IN = 4
# Elementwise ops promote integral operands by rules of their own too (int / int is float32, int * bool
# int64, sqrt of int64 float32, floor_divide of ints int64): one in INTEGRAL_ELEMENTWISE_ONE_IN draws, every
# tensor operand of a unary or binary op is int64 or bool, and the step ends the program as above. The
# builder's operands are otherwise floating: mixed programs alone gave div no int / int in 4,000 programs
# (a planted int / int -> int64 went unfound in 60 s).
INTEGRAL_ELEMENTWISE_ONE_IN = 12
OTHER_TARGET_ONE_IN = 6    # the action targets another output than the newest one requiring grad
# A step torch rejects ends the program there (its error is what gets compared) one in KEEP_STEP_ERROR_ONE_IN
# times; otherwise the builder takes the step back and goes on (see `_Builder.retract`). Kept always, 26 % of
# programs ended at such a step (template keyword variations, bitwise ops of floats, split sizes) and pruned
# to it: the chain drawn before it was evaluated for nothing, and no gradient was compared.
KEEP_STEP_ERROR_ONE_IN = 3
NO_GRAD_STEP_ONE_IN = 16   # a step runs inside `with torch.no_grad():`
INVALID_ONE_IN = 12        # a program contains one step (or action) that is invalid on purpose
VARY_ONE_IN = 3            # a template's keyword value is redrawn from its spec (else the sample's is kept)
OTHER_DIMS_ONE_IN = 4      # ... and for a permutation (permute's dims), any dims value rather than another order
FIRST_GRAD_ONE_IN = 3      # a repeated backward's first call is autograd.grad (else backward)
EXTRA_KEYWORD_ONE_IN = 6   # a template gets one more keyword of its spec
# Reach of broadcasting and layouts a sample's own shapes never give (issue 5's unseen plants missed them):
BATCHED_MATMUL_ONE_IN = 3  # matmul of two 3-d+ operands whose batch dims differ and broadcast (1 against n)
VIEW_OF_TRANSPOSE_ONE_IN = 4  # view of a transposed tensor (non-contiguous: torch checks strides, may refuse)
LOSS_TARGET_ONE_IN = 5     # an elementwise loss's target has another shape that broadcasts (torch warns)
BROADCAST_TARGET_LOSSES = frozenset(("nn.functional.mse_loss", "nn.functional.l1_loss",
                                     "nn.functional.smooth_l1_loss"))

# What a step is, in shrink order (an op call first), repeated to weight the draw; the
# autograd features are drawn when `programs()` fuzzes the whole table.
STEP_KINDS = ("op",) * 10 + ("inplace", "inplace", DETACH, RETAIN_GRAD, REGISTER_HOOK)
# How a template op gets its tensors: "template" (the sample's shapes, from existing tensors
# of that shape or new inputs) or "adapt" (the newest tensor, other shapes following it).
TEMPLATE_MODES = ("template", "adapt", "adapt", "adapt")
# How an input's values are drawn, in shrink order (see _values): "constant" one simple value;
# "plain" moderate values; "edges" mixes in zeros, negative zeros, the op's kinks and its
# domain's edges; "ties" repeats two or three values (max, amax, sort-like ops, maximum);
# "extreme" mixes in huge, tiny and non-finite values (a small share: they make tolerances
# meaningless after a few ops).
VALUE_FLAVOURS = ("constant",) + ("plain",) * 7 + ("edges", "edges", "ties", "ties", "extreme")
INVALID_MODES = ("shape", "dtype", "leaf-inplace", "no-grad-target", "gradient-shape")
HOOK_SCALES = (2.0, -1.0, 0.5, 0.0, 3.0)
HOOK_SHIFT_ONE_IN = 3      # a hook also adds a constant (hooks that do not commute: their order shows)
HOOK_SHIFTS = (1.0, -0.5)
# Action kinds, in shrink order.
ACTIONS = (SUM_BACKWARD, SUM_BACKWARD, BACKWARD_GRADIENT, BACKWARD, REPEATED_BACKWARD, DOUBLE_BACKWARD)

# Where an operand comes from, in shrink order, repeated to weight the draw:
# "any" existing tensor (oldest first), so that a failing program shrinks
# towards ops applied to its inputs (the steps in between then fall away as
# dead code); a "new" input; most often the "newest" tensor, so that generated
# programs are deep.
OPERAND_SOURCES = ("any", "new") + ("newest",) * 5
# A step's anchor (its first operand, the one its shape rule follows) reads the newest tensor on the
# target's chain more often: an anchor from "any" or "new" starts a chain of its own, which the program
# keeps only if a later step joins it (most were pruned: evaluated on torch for nothing).
ANCHOR_SOURCES = ("any", "new") + ("newest",) * 14


def _open_sources(sources: tuple[str, ...]) -> dict[tuple[bool, bool], tuple[str, ...]]:
    """The sources open, by (whether a tensor fits, whether an input can be added)."""
    return {(fits, new): tuple(source for source in sources if (new if source == "new" else fits))
            for fits in (False, True) for new in (False, True)}


_OPERAND_SOURCES, _ANCHOR_SOURCES = _open_sources(OPERAND_SOURCES), _open_sources(ANCHOR_SOURCES)
# An in-place op's receiver is an existing step output (else a new input, through a clone), and that or a
# special step's tensor the newest one on the target's chain (else any), three times in four: the other
# way starts a chain of its own, usually pruned. (Shrinks to True, the first.)
MOSTLY = (True, True, True, False)
# A step output that cannot carry the gradient (a comparison's mask, an integer result, a factory's tensor, a
# no_grad result) while the target requires grad is joined into the chain by the next step three times in
# four (shrinking to not joined): `target * output`, `target + output` or `where(mask, target, number)`.
# Unjoined, nearly all of them were pruned (evaluated on torch for nothing), or the chain went on from them
# and the program could only end in backward's error.
JOIN = (False, True, True, True)
JOIN_OPS = ("mul", "add", "where")
# A stepped slice (`x[1::2]`) is 2 of the 39 `__getitem__` samples and shows its step only along a side of
# 3 or more: an unseen planted bug (a stepped slice's gradient written packed at its start) went unfound in
# 60 s. One in STEPPED_SLICE_ONE_IN `__getitem__` draws is a stepped slice along such a side (`_getitem_args`).
STEPPED_SLICE_ONE_IN = 4
# plain backward() of a target of more than one element is torch's error ("grad can be implicitly created
# only for scalar outputs"): kept one in NON_SCALAR_BACKWARD_ONE_IN, else the action sums the target first.
NON_SCALAR_BACKWARD_ONE_IN = 3

_SIMPLE_VALUES = {
    REAL: (0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 3.0, -0.0),
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
    return _programs(_limits(ops, max_steps, max_inputs, dtypes, max_dims, max_side, autograd_features))


def _limits(ops=None, max_steps=6, max_inputs=3, dtypes=DTYPES, max_dims=3, max_side=4,
            autograd_features=None) -> _Limits:
    """The builder's limits from `programs()`'s arguments (its defaults), validated."""
    chosen = _validate(ops, max_steps, max_inputs, dtypes, max_dims, max_side)
    features = ops is None if autograd_features is None else bool(autograd_features)
    return _Limits(tuple(op.name for op in chosen), max_steps, max_inputs, tuple(dtypes), max_dims, max_side,
                   features)


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
    def join_ops(self) -> tuple[str, ...]:
        """The JOIN_OPS among the ops drawn (see `_join`)."""
        return tuple(name for name in JOIN_OPS if name in self.ops)

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


class ChoiceSource:
    """Where the program builder gets its choices from.

    Every decision of the builder is one of three choices, made through this
    interface: an ``integer`` in a closed range, a ``boolean``, or a ``float``
    in a closed range. Two sources implement it: `HypothesisSource` (each
    choice is one Hypothesis draw, so Hypothesis replays and shrinks programs)
    and `RandomSource` (a plain `random.Random`, fast, recording each choice as
    the Hypothesis choice it stands for, so that a program it built can be
    handed to Hypothesis to shrink; see `choices_blob`).
    """

    def integer(self, low: int, high: int) -> int:
        raise NotImplementedError

    def boolean(self) -> bool:
        raise NotImplementedError

    def float(self, low: float, high: float) -> float:
        raise NotImplementedError

    def pick(self, options):
        """One of ``options``, shrinking towards the first (one integer choice, as `st.sampled_from`)."""
        return options[self.integer(0, len(options) - 1)]

    def rarely(self, one_in: int) -> bool:
        """True about once in ``one_in`` draws; shrinks to False."""
        return self.integer(0, one_in - 1) == one_in - 1

    def shape(self, min_dims: int, max_dims: int, max_side: int) -> tuple[int, ...]:
        """A shape of rank min_dims..max_dims, sides 1..max_side (shrinks to low rank, sides 1)."""
        return tuple(self.integer(1, max_side) for _ in range(self.integer(min_dims, max_dims)))


@functools.lru_cache(maxsize=None)
def _integers(low: int, high: int) -> st.SearchStrategy[int]:
    return st.integers(low, high)


@functools.lru_cache(maxsize=None)
def _floats(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(low, high)


_BOOLEANS = st.booleans()


class HypothesisSource(ChoiceSource):
    """Choices drawn by Hypothesis: `st.integers`, `st.booleans`, `st.floats` (one choice each)."""

    def __init__(self, draw: Callable):
        self.draw = draw

    def integer(self, low: int, high: int) -> int:
        return self.draw(_integers(low, high))

    def boolean(self) -> bool:
        return self.draw(_BOOLEANS)

    def float(self, low: float, high: float) -> float:
        return self.draw(_floats(low, high))


class RandomSource(ChoiceSource):
    """Choices from a `random.Random`, each recorded (in ``choices``) as the Hypothesis choice
    `HypothesisSource` would have made: replaying ``choices`` through Hypothesis builds the same
    program, which Hypothesis can then shrink."""

    def __init__(self, rng: random.Random):
        self.random = rng.random
        self.choices: list = []

    def integer(self, low: int, high: int) -> int:
        value = low + int(self.random() * (high - low + 1))
        self.choices.append(value)
        return value

    def boolean(self) -> bool:
        value = self.random() < 0.5
        self.choices.append(value)
        return value

    def float(self, low: float, high: float) -> float:
        value = min(max(low + self.random() * (high - low), low), high)
        self.choices.append(value)
        return value

    # The two most frequent choices, without the detour through integer() (the same choices).
    def pick(self, options):
        index = int(self.random() * len(options))
        self.choices.append(index)
        return options[index]

    def rarely(self, one_in: int) -> bool:
        value = int(self.random() * one_in)
        self.choices.append(value)
        return value == one_in - 1


def choices_blob(source: RandomSource) -> bytes:
    """The recorded choices as an example-database entry (`hypothesis.database.choices_to_bytes`)."""
    return choices_to_bytes(source.choices)


def fast_programs(rng: random.Random, *, ops: Iterable[str] | None = None, max_steps: int = 6,
                  max_inputs: int = 3, dtypes: Iterable[str] = DTYPES, max_dims: int = 3, max_side: int = 4,
                  autograd_features: bool | None = None):
    """Endless ``(program, source)`` pairs built from ``rng`` by the same builder as `programs()`
    (same arguments); ``choices_blob(source)`` makes `programs()` build that program again.
    Each program draws from its own `random.Random` (`example_rngs`)."""
    limits = _limits(ops, max_steps, max_inputs, dtypes, max_dims, max_side, autograd_features)
    for example_rng in example_rngs(rng):
        source = RandomSource(example_rng)
        yield _build(source, limits), source


def fast_examples(rng: random.Random, *, start: int = 0, **options):
    """`fast_programs` (same arguments, same programs) with torch's outcome of each: endless
    ``(program, torch_outcome, source)``. The outcome is what `oracle.run_torch(program)` records,
    taken from the builder's own evaluation of the steps (so torch runs each step once); it is None
    where the builder cannot tell (then run the oracle). ``start``: begin at that example (the
    ones before it are not drawn; see `example_rngs`)."""
    limits = _limits(**options)
    for example_rng in example_rngs(rng, start):
        source = RandomSource(example_rng)
        program, outcome = _build(source, limits, trace=True)
        yield program, outcome, source


def warm_up(max_rank: int = 6) -> None:
    """Fill the builder's per-op tables for every drawable op now (each op's ways to draw operands,
    its samples' layouts, its samples by anchor rank up to ``max_rank``, where torch takes a scalar
    operand), rather than one entry at a time as programs first need them: a campaign's examples
    kept meeting new entries for thousands of examples (~0.4 an example after 500, 26K instructions
    each). ~20 ms."""
    for op in drawable_ops():
        _makers(op.name)
        for sample in op.samples:
            _layout(sample)
        if op.samples:
            for rank in range(max_rank + 1):
                _samples_of_rank(op.name, rank)
        if op.kind == BINARY or (op.kind == COMPARISON and _binary_args in _makers(op.name)):
            for form in {"method" if form == "inplace" else form for form in op.forms} | {"method"}:
                for position in (0, 1):
                    torch_accepts_scalar(op.name, form, position)


def example_rngs(rng: random.Random, start: int = 0):
    """The random generators of examples ``start, start + 1, ...`` of a stream seeded by ``rng``.

    Example k draws from a `random.Random` seeded by rng's first word and k alone, so any
    example can be drawn without those before it: a campaign whose worker died inside example k
    (torch or the backend crashed) goes on at k + 1, and a reproducer draws example k alone.
    Seeding costs ~5 us an example."""
    base = rng.getrandbits(64)
    for index in itertools.count(start):
        yield random.Random(base | index << 64)


# ---- values ------------------------------------------------------------------------------

_STREAMS = 6  # pseudo-random words per element: magnitude, sign, simple?, which simple, special?, which special


_U64 = np.uint64
_GOLDEN, _MIX1, _MIX2 = _U64(0x9E3779B97F4A7C15), _U64(0xBF58476D1CE4E5B9), _U64(0x94D049BB133111EB)
_KEY = _U64(0xD1B54A32D192ED03)
_SHIFTS = (_U64(30), _U64(27), _U64(31), _U64(11))
_ONE, _SEVEN = _U64(1), _U64(7)


def _words(start: int, count: int, streams: int = _STREAMS) -> np.ndarray:
    """``(streams, count)`` pseudo-random uint64 words of the positions ``start .. start+count-1``
    (splitmix64 of each position's counter): a word depends only on its stream and position."""
    counter = (np.arange(start, start + count, dtype=np.uint64) * _U64(_STREAMS))[None, :] + \
        np.arange(streams, dtype=np.uint64)[:, None]
    x = counter * _GOLDEN + _KEY
    x ^= x >> _SHIFTS[0]
    x *= _MIX1
    x ^= x >> _SHIFTS[1]
    x *= _MIX2
    x ^= x >> _SHIFTS[2]
    return x


def _uniform(words: np.ndarray) -> np.ndarray:
    return (words >> _SHIFTS[3]).astype(np.float64) * 2.0 ** -53


@functools.lru_cache(maxsize=None)
def _table(values: tuple) -> tuple[np.ndarray, np.uint64]:
    return np.asarray(values, dtype=np.float64), _U64(len(values))


def _chosen(values: tuple, words: np.ndarray) -> np.ndarray:
    table, size = _table(values)
    return table[(words % size).astype(np.intp)]


@functools.lru_cache(maxsize=None)
def _specials(flavour: str, domain: str, kinks: tuple) -> tuple:
    """The values a flavour mixes in (see `_values`)."""
    if flavour == "edges":
        # Distinct by value and sign: 0.0 == -0.0, so a plain dict.fromkeys dropped the negative zero.
        values = _EDGE_VALUES[domain] + tuple(_f32(kink) for kink in kinks)
        return tuple({(value, math.copysign(1.0, value)): value for value in values}.values())
    return _TIE_VALUES[domain] if flavour == "ties" else _EXTREME_VALUES


# The share of elements a flavour replaces by its special values.
_SPECIAL_SHARES = {"edges": 0.5, "ties": 1.0, "extreme": 0.25}


# Seeds of the pseudo-random values of one tensor (a Hypothesis integer choice).
VALUE_SEEDS = 2 ** 16
# A tensor's values are the elements at positions p .. p+count-1 of its kind's endless sequence
# (`_sequence`), p = its value seed (65,536 windows of values per kind and shape, as many as seeds).
# The first _POSITIONS + _POOLED elements of a kind are computed once, when the kind is first drawn
# (`_pool`: 0.5 MB, 1-2 ms from the words every kind shares, 6.3 MB computed once in ~10 ms): a tensor
# of up to _POOLED elements then costs a slice, not two dozen numpy calls. (Windows overlap: seeds 1
# apart share all values but one, shifted.)
_POSITIONS, _POOLED = 2 ** 16, 256


def _sequence(kind: tuple, start: int, count: int) -> np.ndarray:
    """Elements ``start .. start+count-1`` of the value sequence of ``kind``: ``("int64",)`` -3..3,
    ``("bool",)``, or ``(flavour, domain, kinks)`` floats (float64) of a non-constant flavour."""
    if kind[0] == "int64":
        return (_words(start, count, 1)[0] % _SEVEN).astype(np.int64) - 3
    if kind[0] == "bool":
        return (_words(start, count, 1)[0] & _ONE) == 1
    flavour, domain, kinks = kind
    # "plain" reads the first four streams, the other flavours all six.
    words = _words(start, count, 4 if flavour == "plain" else _STREAMS)
    uniform = _uniform(words)
    values = _plain(domain, words, uniform)
    if flavour != "plain":
        values = np.where(uniform[4] < _SPECIAL_SHARES[flavour],
                          _chosen(_specials(flavour, domain, kinks), words[5]), values)
    return values


def _plain(domain: str, words: np.ndarray, uniform: np.ndarray) -> np.ndarray:
    """The "plain" flavour's values of ``words`` (streams 0-3) and their ``uniform``s: moderate values,
    0.1 <= |x| <= 4 (positive for POSITIVE), a quarter of them simple ones."""
    values = SMALLEST_MAGNITUDE + uniform[0] * (4.0 - SMALLEST_MAGNITUDE)
    if domain != POSITIVE:
        values = np.where(words[1] & _ONE, -values, values)
    return np.where(uniform[2] < 0.25, _chosen(_SIMPLE_VALUES[domain], words[3]), values)


@functools.lru_cache(maxsize=None)
def _pool(kind: tuple) -> np.ndarray:
    """The first _POSITIONS + _POOLED elements of ``kind``'s sequence (read-only: slices are copied).

    The same elements as ``_sequence(kind, 0, _POSITIONS + _POOLED)``, from the pooled words, uniforms
    and plain values (`_pooled_words`, `_pooled_plain`) every kind shares: a kind's pool costs a
    few array operations instead of its own two dozen over all positions (the first round of a
    campaign drew ~15 kinds, 7-10 ms each)."""
    if kind[0] == "int64" or kind[0] == "bool" or kind[0] == "plain":
        values = _pooled_plain(kind)
    else:
        flavour, domain, kinks = kind
        words, uniform = _pooled_words()
        values = np.where(uniform[4] < _SPECIAL_SHARES[flavour],
                          _chosen(_specials(flavour, domain, kinks), words[5]), _pooled_plain(("plain", domain, ())))
    values.flags.writeable = False
    return values


@functools.lru_cache(maxsize=None)
def _pooled_words() -> tuple[np.ndarray, np.ndarray]:
    """`_words` of the pooled positions (all streams) and their `_uniform`s."""
    words = _words(0, _POSITIONS + _POOLED)
    return words, _uniform(words)


@functools.lru_cache(maxsize=None)
def _pooled_plain(kind: tuple) -> np.ndarray:
    """`_sequence` of an int64, bool or plain ``kind`` over the pooled positions, from `_pooled_words`
    (the words of a position do not depend on how many streams are asked for)."""
    words, uniform = _pooled_words()
    if kind[0] == "int64":
        return (words[0] % _SEVEN).astype(np.int64) - 3
    if kind[0] == "bool":
        return (words[0] & _ONE) == 1
    return _plain(kind[1], words, uniform)


def _values(source: ChoiceSource, dtype: str, shape: tuple[int, ...], domain: str, kinks: tuple = ()) -> list:
    """An input's values (nested lists): `_value_array`'s."""
    return _value_array(source, dtype, shape, domain, kinks).tolist()


def _value_array(source: ChoiceSource, dtype: str, shape: tuple[int, ...], domain: str,
                 kinks: tuple = ()) -> np.ndarray:
    """An input's values (a new array of ``dtype``) from two choices: a flavour and a seed (or a simple value).

    Flavours (VALUE_FLAVOURS, in shrink order): "constant", every element one simple
    value (what failures shrink to); "plain", moderate values (a quarter of them simple);
    "edges", half of them zeros, negative zeros, the op's kinks and its domain's edges;
    "ties", repeats of two or three values; "extreme", a quarter huge, tiny or non-finite.
    A few choices per tensor, not one per element, keep generation fast; Hypothesis
    still shrinks the flavour to "constant" and the seed to 0.
    """
    count = 1
    for side in shape:
        count *= side
    if dtype == "int64" or dtype == "bool":
        kind = (dtype,)
    else:
        flavour = source.pick(VALUE_FLAVOURS)
        if flavour == "constant":
            return np.full(shape, source.pick(_SIMPLE_VALUES[domain]), dtype=dtype)
        kind = (flavour, domain, kinks if flavour == "edges" else ())
    seed = source.integer(0, VALUE_SEEDS - 1)
    position = seed % _POSITIONS
    values = _pool(kind)[position:position + count] if count <= _POOLED else _sequence(kind, position, count)
    return values.astype(dtype).reshape(shape)  # (astype copies: the pool stays as it is)


def _scalar(source: ChoiceSource, domain: str) -> int | float:
    """A Python scalar operand: a simple one first, else a moderate float32-exact number (so both
    backends see the same number)."""
    branch = source.integer(0, 1 if domain == POSITIVE else 2)
    if branch == 0:
        return source.pick(_SIMPLE_SCALARS[domain])
    magnitude = _f32(source.float(SMALLEST_MAGNITUDE, 4.0))
    return magnitude if branch == 1 else -magnitude


def _broadcastable(source: ChoiceSource, shape: tuple[int, ...], max_dims: int, max_side: int, *,
                   grow: bool = True) -> tuple[int, ...]:
    """A shape that broadcasts with ``shape``: rank 0..max_dims; each side the same, or (rarely) 1;
    where ``shape`` has a 1 (and ``grow``), any side; leading sides beyond ``shape``'s rank 1..max_side."""
    rank = source.integer(0, max_dims)
    sides = []
    for position in range(rank):
        aligned = len(shape) - rank + position
        if aligned >= 0 and shape[aligned] == 1 and grow:
            sides.append(source.integer(1, max_side))
        elif aligned >= 0:
            sides.append(1 if source.rarely(3) else shape[aligned])
        else:
            sides.append(source.integer(1, max_side))
    return tuple(sides)


def _other_broadcastable(source: ChoiceSource, shape: tuple[int, ...], max_dims: int, max_side: int, *,
                         min_dims: int = 0) -> tuple[int, ...]:
    """A shape other than ``shape`` that broadcasts with it (rank min_dims..max_dims): a side set to 1
    or grown from 1, leading dims dropped, or a leading dim added; ``shape`` itself if none is."""
    ways = [way for way, possible in (("one", any(side != 1 for side in shape)), ("grow", 1 in shape and max_side > 1),
                                      ("drop", len(shape) > max(min_dims, 0)), ("add", len(shape) < max_dims))
            if possible]
    if not ways:
        return shape
    way, sides = source.pick(ways), list(shape)
    if way == "one":
        sides[source.pick([dim for dim, side in enumerate(shape) if side != 1])] = 1
    elif way == "grow":
        sides[source.pick([dim for dim, side in enumerate(shape) if side == 1])] = source.integer(2, max_side)
    elif way == "drop":
        del sides[:source.integer(1, len(shape) - min_dims)]
    else:
        sides.insert(0, source.integer(2, max_side) if max_side > 1 else 1)
    return tuple(sides)


_INTEGRAL_TORCH_DTYPES = (torch.int64, torch.bool)
_JUST_REAL, _NONZERO_DOMAINS = frozenset({REAL}), frozenset({REAL, NONZERO})
_POSITIVE_DOMAINS = frozenset({REAL, NONZERO, POSITIVE})


def _domains(tensor) -> frozenset[str]:
    """The domains every element of ``tensor`` is moderate and inside of."""
    if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
        return frozenset()
    try:
        data = tensor.detach().numpy()
    except (TypeError, RuntimeError):  # a dtype numpy lacks (bfloat16)
        return frozenset()
    if not data.size:
        return _POSITIVE_DOMAINS  # every element of nothing is in every domain
    if data.size <= _POOLED:
        return _small_domains(data)
    low, high = data.min(), data.max()
    if not (-MODERATE <= low and high <= MODERATE):  # also when a value is NaN (then both are)
        return frozenset()
    if low > DOMAIN_MARGIN:
        return _POSITIVE_DOMAINS
    if high < -DOMAIN_MARGIN:
        return _NONZERO_DOMAINS
    if not np.abs(data).min() > DOMAIN_MARGIN:  # both signs: is any element near zero?
        return _JUST_REAL
    return _NONZERO_DOMAINS


def _small_domains(data: np.ndarray) -> frozenset[str]:
    """`_domains` of a small array, in Python floats (a third of the three numpy reductions' cost)."""
    moderate, margin = _thresholds(data.dtype)
    values = data.ravel().tolist()
    total = sum(values)
    if total != total:  # a NaN (or inf and -inf): not moderate
        return frozenset()
    low, high = min(values), max(values)
    if not (-moderate <= low and high <= moderate):
        return frozenset()
    if low > margin:
        return _POSITIVE_DOMAINS
    if high < -margin:
        return _NONZERO_DOMAINS
    if not min(map(abs, values)) > margin:
        return _JUST_REAL
    return _NONZERO_DOMAINS


@functools.lru_cache(maxsize=None)
def _thresholds(dtype: np.dtype) -> tuple[float, float]:
    """MODERATE and DOMAIN_MARGIN as numpy compares them with an array scalar of ``dtype``: rounded
    to it (a Python float is a weak scalar), so `_small_domains` says what `_domains`' reductions say."""
    return float(dtype.type(MODERATE)), float(dtype.type(DOMAIN_MARGIN))


def broadcast_shape(left: tuple[int, ...], right: tuple[int, ...]) -> tuple[int, ...] | None:
    """The broadcast of two shapes (as `np.broadcast_shapes`), or None when they do not broadcast."""
    if len(left) < len(right):
        left, right = right, left
    offset = len(left) - len(right)
    result = list(left)
    for position, side in enumerate(right, offset):
        mine = result[position]
        if side != mine and side != 1:
            if mine != 1:
                return None
            result[position] = side
    return tuple(result)


def matmul_shape(left: tuple[int, ...], right: tuple[int, ...]) -> tuple[int, ...] | None:
    """torch.matmul's result shape, or None when the shapes do not multiply."""
    if not left or not right:
        return None
    left_matrix = (1,) + left if len(left) == 1 else left
    right_matrix = right + (1,) if len(right) == 1 else right
    if left_matrix[-1] != right_matrix[-2]:
        return None
    batch = broadcast_shape(left_matrix[:-2], right_matrix[:-2])
    if batch is None:
        return None
    rows = () if len(left) == 1 else (left_matrix[-2],)
    columns = () if len(right) == 1 else (right_matrix[-1],)
    return tuple(batch) + rows + columns


_PLAIN_OPERANDS = (Ref, Literal)


@dataclass
class _Builder:
    """A program under construction, with every tensor evaluated on torch."""

    source: ChoiceSource
    limits: _Limits
    dtype: str
    mixed: bool
    inputs: list[Input] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)  # successful outputs and inputs, in order
    # Each tensor's shape, and the floating ones' names in order: what operands are chosen by (in-place
    # ops change neither a tensor's shape nor its dtype, so they are read once).
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    floats: list[str] = field(default_factory=list)
    env: dict[str, object] = field(default_factory=dict)  # the tensors and multi-output results, by name
    # Each tensor's domains (see _domains), computed when first asked (`in_domain`): most are never.
    domains: dict[str, frozenset[str]] = field(default_factory=dict)
    kinks: tuple = ()              # the kinks of the op whose operands are being drawn
    forced: Ref | None = None      # the next operand() (an in-place op's receiver)
    integral: bool = False         # the next operand() is int64 or bool (ACCUMULATING_OPS)
    integral_all: bool = False     # ... and every operand() after it in this step (elementwise ops)
    final: str | None = None       # a step output the program ends with, the action's target
    no_grad: bool = False          # the step being drawn runs under no_grad
    failed: bool = False           # torch rejected the last step
    # Tracing (see `outcome`): the list the build's warnings land in (None: no tracing), each step's
    # result (None while pending) and warnings as the oracle records them, and each input's warnings.
    caught: list | None = None
    trace: list[list] = field(default_factory=list)
    # Step results not read yet (most steps are pruned away): index -> (tensor, its version then).
    pending: dict[int, tuple[torch.Tensor, int]] = field(default_factory=dict)
    input_warnings: dict[str, list] = field(default_factory=dict)
    untraceable: bool = False      # a step raised ProgramError: only the oracle's run says what happens
    # Each step output's ancestors: the indices of the steps it depends on, its own included.
    ancestors: dict[str, frozenset[int]] = field(default_factory=dict)
    targets: tuple[int, str | None] = (-1, None)  # (step count, `target()` then)
    retracted: tuple | None = None  # the last step taken back (`retract`) and its trace entry

    def add_tensor(self, name: str, tensor: torch.Tensor) -> None:
        self.tensors[name] = self.env[name] = tensor
        self.shapes[name] = tuple(tensor.shape)
        if tensor.is_floating_point():
            self.floats.append(name)

    def in_domain(self, name: str, domain: str) -> bool:
        """Whether every element of tensor ``name`` is moderate and inside ``domain`` (see _domains)."""
        domains = self.domains.get(name)
        if domains is None:
            domains = self.domains[name] = _domains(self.tensors[name])
        return domain in domains

    def new_input(self, shape: tuple[int, ...], domain: str, *, dtype: str | None = None, values=None,
                  requires_grad: bool | None = None) -> Ref:
        source = self.source
        if dtype is None:
            if not self.mixed:
                dtype = self.dtype
            elif source.rarely(INTEGRAL_INPUT_ONE_IN):
                dtype = source.pick(INTEGRAL_DTYPES)
            else:
                dtype = source.pick(self.limits.dtypes)
        array = None
        if values is None:
            # NOTE: nested lists cannot spell an empty side before another side (`[]` is shape (0,)
            # whatever follows): such a side (from a tensor like eye(0) this input goes with) is 1.
            if 0 in shape[:-1]:
                shape = tuple(1 if side == 0 and index < len(shape) - 1 else side
                              for index, side in enumerate(shape))
            array = _value_array(source, dtype, shape, domain, self.kinks)
            values = array.tolist()
        if requires_grad is None:
            # Usually requires grad; shrinks to False. Sometimes no input does, so that
            # "element 0 of tensors does not require grad" is compared too.
            requires_grad = dtype in DTYPES and not source.rarely(NO_GRAD_ONE_IN)
        name = f"x{len(self.inputs)}"
        self.inputs.append(Input(name, shape, dtype, values, requires_grad))
        mark = len(self.caught) if self.caught is not None else 0
        # A float input's tensor straight from its drawn array: the same numbers `torch_input` would
        # parse from the values (float32 values are exact in the lists' Python floats).
        self.add_tensor(name, torch.from_numpy(array).requires_grad_(requires_grad)
                        if array is not None and dtype in DTYPES else torch_input(self.inputs[-1]))
        if self.caught is not None:
            self.input_warnings[name] = self.caught[mark:]
        return _ref(name)

    def can_add_input(self) -> bool:
        inputs = self.inputs
        if len(inputs) < self.limits.max_inputs:  # (the count below only matters past that)
            return True
        return sum(tensor.dtype in DTYPES for tensor in inputs) < self.limits.max_inputs

    def operand(self, domain: str, *, accept: Callable[[tuple[int, ...]], bool] | None = None,
                new_shape: Callable[[], tuple[int, ...]] | None = None, floats_only: bool = False,
                anchor: bool = False) -> Ref:
        """An existing floating tensor whose shape ``accept``s (default: any) and that fits ``domain``
        (oldest first), or a new input.

        Once in a while (and when nothing fits and no input can be added) the
        domain is ignored: what an op does at its edges is behaviour too; then
        tensors of any dtype are taken (``floats_only``: floating ones still).
        """
        if self.forced is not None:
            forced, self.forced = self.forced, None
            return forced
        if self.integral:
            self.integral = self.integral_all
            return self.integral_operand(accept, new_shape)
        source = self.source
        ignore_domain = source.rarely(OUT_OF_DOMAIN_ONE_IN)
        # Bool and integer results (comparisons, argmax) reach float ops only through templates.
        shapes, floats = self.shapes, self.floats

        def fits(name: str) -> bool:
            return (accept is None or accept(shapes[name])) and (ignore_domain or self.in_domain(name, domain))
        # The fitting tensors are found newest first and only as far as the choice needs (a tensor's
        # domains cost numpy reductions): the newest one says whether any fits, "newest" usually
        # stops at it, and only "any" lists them all (oldest first).
        newest_fit = next((name for name in reversed(floats) if fits(name)), None)
        sources = (_ANCHOR_SOURCES if anchor else _OPERAND_SOURCES)[newest_fit is not None, self.can_add_input()]
        existing = None
        if not sources:
            existing = [name for name in (floats if floats_only else self.tensors)
                        if accept is None or accept(shapes[name])] or list(self.tensors)
            sources = ("any",)
        where = source.pick(sources)
        if where == "any":
            return _ref(source.pick(existing or [name for name in floats if fits(name)]))
        if where == "newest":
            if anchor:
                # An anchor follows the tensors that require grad (on the chain, else any): a detached or
                # no_grad output is then read as another operand (its gradient compared as cut), not
                # carried on as the chain, whose program could only end in backward's error.
                tensors = self.tensors
                name = self.newest_of(reversed(floats), lambda name: tensors[name].requires_grad and fits(name))
                if name is None and not self.carries_grad():
                    name = next((name for name in reversed(floats) if tensors[name].requires_grad and fits(name)),
                                None)
                if name is not None:
                    return _ref(name)
            return _ref(self.newest_of(reversed(floats), fits) or newest_fit)
        limits = self.limits
        shape = new_shape() if new_shape is not None else source.shape(0, limits.max_dims, limits.max_side)
        return self.new_input(shape, REAL if ignore_domain else domain)

    def integral_operand(self, accept: Callable[[tuple[int, ...]], bool] | None,
                         new_shape: Callable[[], tuple[int, ...]] | None) -> Ref:
        """An int64 or bool operand (see ACCUMULATING_OPS): sometimes an existing one whose shape
        ``accept``s (the newest on the target's chain: a comparison's mask, an argmax), else a new input."""
        source, shapes = self.source, self.shapes
        existing = [name for name, tensor in self.tensors.items() if tensor.dtype in _INTEGRAL_TORCH_DTYPES
                    and (accept is None or accept(shapes[name]))]
        if existing and source.boolean():
            return _ref(self.newest(existing))
        limits = self.limits
        shape = new_shape() if new_shape is not None else source.shape(0, limits.max_dims, limits.max_side)
        return self.new_input(shape, REAL, dtype=source.pick(INTEGRAL_DTYPES), requires_grad=False)

    def shape(self, ref: Ref) -> tuple[int, ...]:
        return self.shapes[ref.name]

    def add_step(self, op: str, form: str, args: tuple, kwargs: dict) -> bool:
        """Append the step and evaluate it on torch; False if torch raised (the program ends there).

        A multi-output op (split, max along a dim) is followed by an indexing
        step that picks the output the program goes on with.
        """
        if not kwargs and type(args) is tuple and all(type(arg) in _PLAIN_OPERANDS for arg in args):
            # Tensors by name and constants (most steps): the Step __post_init__ would make, without
            # its normalization (nothing to normalize) and its general walk for names.
            step = _frozen(Step, op=op, form=form, args=args, kwargs={}, out=f"v{len(self.steps)}",
                           no_grad=self.no_grad, _refs=tuple(arg.name for arg in args if type(arg) is Ref),
                           aliases_first=form == "inplace" or op in ALIASING_OPS)
        else:
            step = Step(op, form, args, kwargs, f"v{len(self.steps)}", self.no_grad)
        caught = self.caught
        if caught is not None and step.aliases_first:
            # This step writes a tensor in place, or attaches to its node (retain_grad, a hook):
            # read what it may change first, as the oracle reads each result right after its step.
            # (Reading a view's grad_fn after an in-place write through it makes its new node, which
            # retain_grad then attaches to: campaign seed 25, a retained view's gradient was None
            # in the builder's torch run and not in the oracle's.)
            self.settle_sharing(step)
        self.steps.append(step)
        mark = len(caught) if caught is not None else 0
        try:
            error = foreseen.step_error(step, self.env)  # (torch's own error, where asking torch costs much)
            if error is not None:
                raise error
            result = interpreter.apply_step(torch, step, self.env)
        except Exception as error:  # noqa: BLE001  (a step torch rejects is a valid test of error behaviour)
            self.failed = True
            if caught is not None:
                self.trace.append([StepResult(step.out, error=interpreter.failure(error)), caught[mark:]])
                self.untraceable |= isinstance(error, interpreter.ProgramError)
            return False
        if caught is not None:
            if isinstance(result, torch.Tensor):  # read later, if the step is kept (see settle)
                self.trace.append([None, caught[mark:]])
                self.pending[len(self.steps) - 1] = (result, result._version)
            else:
                self.trace.append([interpreter.step_result(step.out, result), caught[mark:]])
        index = len(self.steps) - 1
        self.ancestors[step.out] = frozenset((index,)).union(
            *(self.ancestors[name] for name in step.refs() if name in self.ancestors))
        if isinstance(result, (tuple, list)):
            self.env[step.out] = result  # read by the indexing step only
            if not result:
                return True
            self.no_grad = False
            return self.add_step("__getitem__", "method",
                                 (_ref(step.out), Literal(self.source.integer(0, len(result) - 1))), {})
        self.add_tensor(step.out, result)
        if step.aliases_first:  # an in-place op changed a tensor other names see too: their domains are stale
            for name, tensor in self.tensors.items():
                if tensor is result:
                    self.domains.pop(name, None)
        return True

    def retract(self) -> bool:
        """Take back the step torch just rejected (True), unless it is kept to end the program (one in
        KEEP_STEP_ERROR_ONE_IN, shrinking to taken back), it wrote in place (a kernel may have written
        part of its receiver before raising) or the interpreter could not run it (ProgramError)."""
        if self.steps[-1].aliases_first or self.untraceable or self.source.rarely(KEEP_STEP_ERROR_ONE_IN):
            return False
        self.retracted = (self.steps.pop(), self.trace.pop() if self.caught is not None else None)
        self.failed = False
        return True

    def settle(self, caught: list, indices: Iterable[int] | None = None) -> bool:
        """Read the pending step results (of ``indices``, default all) as the oracle reads each right
        after its step; the warnings reading raises land in ``caught``, a `recording_warnings` list.

        A tensor's data, requires_grad and grad_fn change only with its version (in-place ops,
        through a view too), so a result whose version is unchanged reads as it did after its
        step. The results sharing storage with what a step writes in place are settled before
        it (`settle_sharing`); False if a version changed all the same (the result as its step
        left it is lost: the oracle must run).
        """
        changed = False
        for index in list(self.pending) if indices is None else [i for i in indices if i in self.pending]:
            tensor, version = self.pending.pop(index)
            changed |= tensor._version != version
            mark = len(caught)
            self.trace[index][0] = interpreter.step_result(self.steps[index].out, tensor)
            self.trace[index][1] = self.trace[index][1] + caught[mark:]
        return not changed

    def settle_sharing(self, step: Step) -> None:
        """Settle the pending results that share storage with ``step``'s first operand (which it writes)."""
        receiver = self.env.get(step.args[0].name)
        if not isinstance(receiver, torch.Tensor):
            self.settle(self.caught)
            return
        storage = receiver.untyped_storage().data_ptr()
        self.settle(self.caught, [index for index, (tensor, _) in self.pending.items()
                                  if tensor.untyped_storage().data_ptr() == storage])

    def outcome(self, built: Program, program: Program, kept: list[int], names: dict[str, str]) -> Outcome | None:
        """torch's Outcome of ``program`` (``built`` pruned: `Program.pruning`) from this evaluation,
        exactly as `oracle.run_torch(program)` records it; None where this run cannot stand for that
        one (then run the oracle).

        The pruned steps do not change what the kept ones compute (that is what pruning keeps), so
        the kept steps' results, errors and warnings are the oracle's; the action then runs here on
        the same tensors. Warnings torch raises once per process may differ, as between any two
        runs (the comparator leaves them out). Called inside the build's `recording_warnings`.
        """
        if not self.settle(self.caught, kept) or self.untraceable:
            return None
        caught = [warning for tensor in built.inputs if tensor.name in names
                  for warning in self.input_warnings[tensor.name]]
        values = []
        for index in kept:
            result, raised = self.trace[index]
            ref = names[built.steps[index].out]
            values.append(result if result.ref == ref else StepResult(ref, result.value, result.requires_grad,
                                                                      result.grad_fn, result.error))
            caught.extend(raised)
        if any(value.error is not None for value in values[:-1]):
            return None  # a result that could not be read ends the oracle's run there; the builder went on
        error = replace(values[-1].error, where=f"step {len(values) - 1}") \
            if values and values[-1].error is not None else None
        env = {new: self.env[old] for old, new in names.items() if old in self.env}
        if error is None:  # (torch's own error, where asking torch costs much: `finish` then skips the action)
            raised = foreseen.action_error(program.action, env)
            error = None if raised is None else interpreter.failure(raised, "action")
        return interpreter.finish(program, torch, env, tuple(values), error, caught,
                                  recording=self.caught).with_messages(normalize_message)

    def target(self) -> str | None:
        """The action's default target (`_default_target`) if the program ended here."""
        steps = len(self.steps)
        if self.targets[0] != steps:  # asked for every operand: computed once per step
            outputs = [step.out for step in self.steps if step.out in self.tensors]
            self.targets = (steps, _default_target(self, outputs) if outputs else None)
        return self.targets[1]

    def carries_grad(self) -> bool:
        """Whether the action's default target requires grad (False before the first step)."""
        target = self.target()
        return target is not None and self.tensors[target].requires_grad

    def chain(self) -> int:
        """How many steps the action's default target depends on so far: 0 while it requires no grad
        though an input does (a comparison, a factory or a detached input as the program's only
        output made a program that could only end in backward's error; see `operand` for anchors)."""
        target = self.target()
        if target is None:
            return 0
        if not self.tensors[target].requires_grad and any(tensor.requires_grad for tensor in self.inputs):
            return 0
        return len(self.ancestors[target])

    def newest(self, names: list[str]) -> str:
        """The newest of ``names`` (oldest first) that depends on the default target (the target
        itself, or a step that read it, so the chain grows and is not pruned), else the newest."""
        return self.newest_of(reversed(names)) or names[-1]

    def newest_of(self, names: Iterable[str], fits: Callable[[str], bool] | None = None) -> str | None:
        """The first of ``names`` (newest first) that depends on the default target and ``fits``, or None."""
        target = self.target()
        if target is not None:
            chain, ancestors = self.ancestors[target], self.ancestors
            for name in names:
                if name in ancestors and chain <= ancestors[name] and (fits is None or fits(name)):
                    return name
        return None

    def float_tensors(self, *, non_leaf: bool = False) -> list[str]:
        return [name for name in self.floats if not name.startswith("x")] if non_leaf else self.floats[:]


def _domain(op: Op, position: int) -> str:
    return op.domain[position] if position < len(op.domain) else REAL


def _unary_args(builder: _Builder, op: Op, form: str) -> tuple[tuple, dict]:
    anchor = builder.operand(_domain(op, 0), anchor=True)
    return (anchor,), _keywords(builder, op, anchor)


@functools.lru_cache(maxsize=None)
def torch_accepts_scalar(op_name: str, form: str, position: int) -> bool:
    """Whether torch takes a Python number as operand ``position`` of the op in this form.

    The table says either operand of a binary op may be a scalar; torch's
    signatures say otherwise for some (``torch.maximum(x, 2)``,
    ``torch.fmod(2, x)`` are TypeErrors), so ask torch once per case.
    """
    operands = [_ref("x"), _ref("x")]
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
    src, limits = builder.source, builder.limits
    anchor_position = 0 if builder.forced is not None else src.pick((0, 1))
    other_position = 1 - anchor_position
    anchor = builder.operand(_domain(op, anchor_position), anchor=True)
    anchor_shape = builder.shape(anchor)
    other_domain = _domain(op, other_position)
    scalar_form = "method" if form == "inplace" else form
    sources = ("tensor", "scalar") if torch_accepts_scalar(op.name, scalar_form, other_position) else ("tensor",)
    if src.pick(sources) == "scalar":
        other = Literal(_scalar(src, other_domain))
    else:
        into_anchor = form == "inplace"  # the result is written into the anchor: the other side broadcasts to it

        def broadcasts(shape: tuple[int, ...]) -> bool:
            result = broadcast_shape(anchor_shape, shape)
            return result is not None and (result == anchor_shape or not into_anchor)

        def new_shape():
            if into_anchor:
                return _broadcastable(src, anchor_shape, len(anchor_shape), limits.max_side, grow=False)
            return _broadcastable(src, anchor_shape, limits.max_dims, limits.max_side)
        other = builder.operand(other_domain, accept=broadcasts, new_shape=new_shape)
    return ((anchor, other) if anchor_position == 0 else (other, anchor)), _keywords(builder, op, anchor)


def _reduction_args(builder: _Builder, op: Op, form: str) -> tuple[tuple, dict]:
    anchor = builder.operand(_domain(op, 0), anchor=True)
    return (anchor,), _keywords(builder, op, anchor)


def _spec_value(src: ChoiceSource, kind: str | tuple, rank: int):
    """A keyword's value by its table kind.

    "dim": one dim of a rank-``rank`` tensor; "dims": None, one dim or a tuple
    of distinct dims; "bool"; "float" (a moderate number); "int" (small); a
    tuple lists the literal choices.
    """
    if isinstance(kind, tuple):
        return src.pick(kind)
    if kind == "dim":
        return src.integer(-rank, rank - 1)
    if kind == "dims":
        form = src.integer(0, 2)
        if form == 0:
            return None
        if form == 1:
            return src.integer(-rank, rank - 1)
        remaining, dims = list(range(rank)), []
        for _ in range(src.integer(0, rank)):
            index = remaining.pop(src.integer(0, len(remaining) - 1))
            dims.append(index - rank if src.boolean() else index)
        return tuple(dims)
    if kind == "bool":
        return src.boolean()
    if kind == "float":
        return _scalar(src, REAL)
    return src.integer(-2, 3)  # "int"


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
        # Omitted first, so that a keyword shrinks away.
        if builder.source.boolean():
            kwargs[key] = _spec_value(builder.source, kind, rank)
    return kwargs


def _matmul_args(builder: _Builder, op: Op, form: str) -> tuple[tuple, dict]:
    """Two tensors whose shapes multiply: vector or (batched) matrix on each side."""
    src, limits = builder.source, builder.limits
    anchor_on_left = src.boolean()
    if limits.max_dims >= 3 and src.rarely(BATCHED_MATMUL_ONE_IN):
        return _batched_matmul_args(builder, op, anchor_on_left)
    anchor = builder.operand(_domain(op, 0 if anchor_on_left else 1), accept=lambda shape: len(shape) >= 1,
                             new_shape=lambda: src.shape(1, limits.max_dims, limits.max_side), anchor=True)
    anchor_shape = builder.shape(anchor)

    def multiplies(shape: tuple[int, ...]) -> bool:
        shapes = (anchor_shape, shape) if anchor_on_left else (shape, anchor_shape)
        return matmul_shape(*shapes) is not None

    other = builder.operand(_domain(op, 1 if anchor_on_left else 0), accept=multiplies,
                            new_shape=lambda: _matmul_partner_shape(src, anchor_shape, anchor_on_left, limits))
    return ((anchor, other) if anchor_on_left else (other, anchor)), {}


def _batched_matmul_args(builder: _Builder, op: Op, anchor_on_left: bool) -> tuple[tuple, dict]:
    """Two 3-d+ operands whose batch dims differ and broadcast: (1, m, k) @ (4, k, n), (3, m, k) @ (k, n)'s
    batched cousins, so that a matmul (or its backward) that does not broadcast (or reduce) batch dims
    is reached; the plain draw gives equal batch dims almost always."""
    src, limits = builder.source, builder.limits
    anchor = builder.operand(_domain(op, 0 if anchor_on_left else 1), accept=lambda shape: len(shape) >= 3,
                             new_shape=lambda: src.shape(3, limits.max_dims, limits.max_side), anchor=True)
    if len(builder.shape(anchor)) == 2 and builder.add_step("unsqueeze", "method", (anchor, Literal(0)), {}):
        anchor = _ref(builder.steps[-1].out)  # a matrix already in the program (no input to add): (1, m, k)
    anchor_shape = builder.shape(anchor)
    if len(anchor_shape) < 2:  # nothing fitted and no input could be added: the plain partner
        shape = (_matmul_partner_shape(src, anchor_shape, anchor_on_left, limits) if anchor_shape
                 else (src.integer(1, limits.max_side),))  # (a 0-d operand is torch's error)
    else:
        batch = _other_broadcastable(src, anchor_shape[:-2], limits.max_dims - 2, limits.max_side,
                                     min_dims=min(len(anchor_shape) - 2, 1))
        inner, outer = anchor_shape[-1] if anchor_on_left else anchor_shape[-2], src.integer(1, limits.max_side)
        shape = batch + ((inner, outer) if anchor_on_left else (outer, inner))
    other = builder.operand(_domain(op, 1 if anchor_on_left else 0), accept=shape.__eq__, new_shape=lambda: shape)
    return ((anchor, other) if anchor_on_left else (other, anchor)), {}


def _matmul_partner_shape(src: ChoiceSource, anchor: tuple[int, ...], anchor_on_left: bool,
                          limits: _Limits) -> tuple[int, ...]:
    """A shape that multiplies with ``anchor``: a vector, or a matrix with a broadcastable batch."""
    inner = anchor[-1] if anchor_on_left else anchor[0] if len(anchor) == 1 else anchor[-2]
    if limits.max_dims < 2 or src.pick(("vector", "matrix")) == "vector":
        return (inner,)
    batch = _broadcastable(src, anchor[:-2], limits.max_dims - 2, limits.max_side)
    outer = src.integer(1, limits.max_side)
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
    reshaped: dict = field(default_factory=dict)  # id of a sample T -> the shape it is drawn in instead
    first: bool = True  # no tensor of the sample has been given one yet

    def node(self, value) -> Arg:
        """The operand node for a sample's argument value: its tensors given program tensors (`tensor`)."""
        # (A method, not a closure in `_template_args`: a recursive closure is a reference cycle, which
        # kept each program's builder, its torch tensors and graph, alive until the garbage collector ran.)
        if isinstance(value, T):
            first, self.first = self.first, False
            return self.tensor(value, first)
        if isinstance(value, (list, tuple)) and _tensors_in(value):
            return Seq(tuple(self.node(item) for item in value), "list" if isinstance(value, list) else "tuple")
        return as_arg(value)

    def tensor(self, spec: T, first: bool) -> Ref:
        builder, src = self.builder, self.builder.source
        if first and self.receiver:
            ref = _receiver(builder, tuple(spec.shape) if not self.adapt else None)
            if self.adapt:
                self.shapes[tuple(spec.shape)] = builder.shape(ref)
            return ref
        if spec is self.anchor and id(spec) in self.bound:
            return self.bound[id(spec)]
        shape = self.reshaped[id(spec)] if id(spec) in self.reshaped else self.standing_in(tuple(spec.shape))
        if spec.values is not None:
            if spec.dtype == "bool" and src.pick((False, True)):
                masks = [name for name, tensor in builder.tensors.items() if tensor.dtype == torch.bool
                         and tuple(tensor.shape) == shape]
                if masks:
                    return _ref(src.pick(masks))
            array = np.asarray(spec.values)
            dtype = spec.dtype if spec.dtype not in (None, "no_grad") else builder.dtype
            requires_grad = None if spec.dtype is None else False
            return builder.new_input(array.shape, spec.domain, dtype=dtype, values=array.tolist(),
                                     requires_grad=requires_grad)
        if spec.dtype is None:
            fits = shape.__eq__
            if builder.integral or builder.can_add_input() or any(fits(builder.shapes[name])
                                                                  for name in builder.floats):
                return builder.operand(spec.domain, accept=fits, new_shape=lambda: shape, floats_only=True)
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


def _not_a_grad_leaf(tensor: torch.Tensor) -> bool:
    try:
        return tensor.grad_fn is not None or not tensor.requires_grad
    except RuntimeError:  # a multi-output view modified in place: torch refuses to say
        return False


def _receiver(builder: _Builder, shape: tuple | None) -> Ref:
    """An in-place op's receiver: a step output (legal), else a new input that does not require grad."""
    src = builder.source
    # Not a leaf that requires grad (a factory's `requires_grad=True` output): that is the invalid case.
    names = [name for name in builder.float_tensors(non_leaf=True)
             if (shape is None or builder.shapes[name] == shape)
             and _not_a_grad_leaf(builder.tensors[name])]
    if names and src.pick(MOSTLY):
        return _ref(builder.newest(names) if src.pick(MOSTLY) else src.pick(names))
    if shape is None:
        shape = src.shape(0, builder.limits.max_dims, builder.limits.max_side)
    ref = builder.new_input(shape, REAL)
    # NOTE: an in-place op on a leaf that requires grad is torch's error (drawn on purpose as an invalid
    # step, see _invalid_step): a new input that requires grad is received through a clone of it, as a
    # user writes. (A receiver input that never required grad left 30 % of programs with no gradient.)
    if builder.tensors[ref.name].requires_grad and builder.add_step("clone", "method", (ref,), {}):
        return _ref(builder.steps[-1].out)
    return ref


def _derived_shapes(shape: tuple) -> list:
    """Shapes a "shape" keyword may take for a tensor of ``shape``: views and broadcasts of it."""
    return [tuple(shape), (-1,), (1,) + tuple(shape), (2,) + tuple(shape), tuple(reversed(shape))]


def _vary(template: _Template, kind, value, rank: int, anchor_shape: tuple | None):
    """A keyword or positional value of a template: the sample's, or (sometimes) another by its spec."""
    src = template.builder.source
    if kind == "shape":
        if not isinstance(value, (tuple, list)) or anchor_shape is None:
            return value
        if template.adapt or src.rarely(VARY_ONE_IN):
            return src.pick(_derived_shapes(anchor_shape))
        return value
    # A value is redrawn only when the sample's value has the type the spec draws: positional
    # values are matched to the table's keywords by position, and a mismatch (an int dim meeting
    # a bool or float keyword) would otherwise put a bool or float where torch wants an int.
    if not _fits_spec(kind, value):
        return value
    out_of_range = kind in ("dim", "dims") and isinstance(value, int) and not -rank <= value < rank
    if out_of_range or src.rarely(VARY_ONE_IN):
        if kind == "dims" and _is_permutation(value, rank) and not src.rarely(OTHER_DIMS_ONE_IN):
            # A sample that names every dim once (permute): another order of all of them, so that
            # the redrawn value is mostly valid (a 3-cycle is where an inverse permutation matters).
            remaining = list(range(rank))
            return tuple(remaining.pop(src.integer(0, len(remaining) - 1)) - (rank if src.boolean() else 0)
                         for _ in range(rank))
        return _spec_value(src, kind, rank)
    return value


def _is_permutation(value, rank: int) -> bool:
    """Whether ``value`` is a sequence naming each of ``rank`` dims once (negative dims allowed)."""
    return isinstance(value, (tuple, list)) and len(value) == rank and \
        sorted(dim % rank for dim in value if isinstance(dim, int) and -rank <= dim < rank) == list(range(rank))


def _fits_spec(kind, value) -> bool:
    """Whether ``value`` has the type a keyword spec ``kind`` draws (a tuple: one of its choices)."""
    if isinstance(kind, tuple):
        return any(type(value) is type(choice) and value == choice for choice in kind)
    if kind in ("dim", "int"):
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "dims":
        return value is None or isinstance(value, int) or (
            isinstance(value, (tuple, list)) and all(isinstance(item, int) for item in value))
    if kind == "float":
        return isinstance(value, float)
    if kind == "bool":
        return isinstance(value, bool)
    return True


def _adaptable(anchor: T, tensors: list[T]) -> bool:
    """Whether another tensor may stand in for the sample's anchor: every other drawn tensor's shape
    is the anchor's, a suffix of it, or () (so `_Template.standing_in` can follow it)."""
    shape = tuple(anchor.shape)
    return all(tensor.values is not None or not tensor.shape or
               shape[len(shape) - len(tensor.shape):] == tuple(tensor.shape) for tensor in tensors)


@functools.lru_cache(maxsize=None)
def _samples_of_rank(name: str, rank: int) -> tuple:
    """The op's samples whose anchor (first drawn tensor) has ``rank`` dims, and those without one (their
    tensors are spelled out: integer indices, masks, factories), which fit any program; empty if no
    sample has an anchor of that rank."""
    def anchor_rank(sample):
        args, kwargs = sample
        anchor = next((tensor for tensor in _tensors_in((args, tuple(kwargs.values()))) if _free(tensor)), None)
        return None if anchor is None else len(anchor.shape)
    ranks = [anchor_rank(sample) for sample in BY_NAME[name].samples]
    if rank not in ranks:
        return ()
    return tuple(sample for sample, anchor in zip(BY_NAME[name].samples, ranks) if anchor in (rank, None))


@dataclass(frozen=True)
class _Layout:
    """Where a sample's tensors are: read once per sample (samples are the op table's constants)."""

    tensors: list[T]               # every tensor, in argument order
    anchor: T | None               # the first free one (`_free`)
    adaptable: bool                # `_adaptable(anchor, tensors)`
    in_args: tuple[bool, ...]      # whether each positional argument holds a tensor
    in_kwargs: frozenset[str]      # the keywords that hold a tensor


_LAYOUTS: dict[int, tuple[tuple, _Layout]] = {}  # id(sample) -> (sample, its layout); the sample is kept alive


def _layout(sample: tuple) -> _Layout:
    entry = _LAYOUTS.get(id(sample))
    if entry is None or entry[0] is not sample:
        args, kwargs = sample
        tensors = _tensors_in((args, tuple(kwargs.values())))
        anchor = next((tensor for tensor in tensors if _free(tensor)), None)
        entry = _LAYOUTS[id(sample)] = (sample, _Layout(
            tensors, anchor, anchor is not None and _adaptable(anchor, tensors),
            tuple(bool(_tensors_in(value)) for value in args),
            frozenset(key for key, value in kwargs.items() if _tensors_in(value))))
    return entry[1]


def _template_args(builder: _Builder, op: Op, form: str) -> tuple[tuple, dict]:
    """Operands from one of the op's samples (`sampled_from`, shrinking to the first)."""
    src = builder.source
    if op.name == "view" and form != "inplace" and builder.limits.max_dims >= 2 \
            and src.rarely(VIEW_OF_TRANSPOSE_ONE_IN):
        return _view_of_transpose_args(builder)
    # The samples whose anchor has the rank of the newest tensor that depends on the action's target
    # (or of the newest input), where the op has any: the step then usually reads it (`adapt` mode),
    # and it is not pruned.
    floats = builder.floats  # (read only)
    head = builder.newest(floats) if floats else None
    samples = op.samples if head is None else _samples_of_rank(op.name, len(builder.shapes[head])) or op.samples
    sample = src.pick(samples)
    args, kwargs = sample
    layout = _layout(sample)
    anchor = layout.anchor
    receiver = op.kind == INPLACE or form == "inplace"
    adapt = layout.adaptable and src.pick(TEMPLATE_MODES) == "adapt"
    template = _Template(builder, op, adapt, anchor, {}, receiver)
    anchor_shape = None
    if receiver:
        anchor_shape = None
    elif anchor is not None:
        if adapt:
            # Any tensor of the sample's rank stands in (so dims and index expressions still fit).
            ref = builder.operand(anchor.domain, accept=lambda shape: len(shape) == len(anchor.shape),
                                  new_shape=lambda: tuple(anchor.shape), anchor=True)
            template.shapes[tuple(anchor.shape)] = builder.shape(ref)
        else:
            ref = template.tensor(anchor, False)
        template.bound[id(anchor)] = ref
        anchor_shape = builder.shape(ref)
    if op.name in BROADCAST_TARGET_LOSSES and anchor_shape is not None and len(layout.tensors) > 1 \
            and layout.tensors[1].values is None and src.rarely(LOSS_TARGET_ONE_IN):
        # A target of another shape that broadcasts: torch warns and broadcasts (the input's gradient
        # reduced over the target's extra dims); the samples' targets always have the input's shape.
        limits = builder.limits
        template.reshaped[id(layout.tensors[1])] = _other_broadcastable(src, anchor_shape, limits.max_dims,
                                                                        limits.max_side)
    rank = max(len(anchor_shape), 1) if anchor_shape is not None else 1
    frozen = FROZEN_KWARGS.get(op.name, ())
    names = [key for key in op.kwargs if key not in kwargs]
    build = template.node
    built_args = []
    for value, holds_tensors in zip(args, layout.in_args):
        if holds_tensors:
            built_args.append(build(value))
            continue
        key = names.pop(0) if names else None
        if key is not None and key not in frozen:
            value = _vary(template, op.kwargs[key], value, rank, anchor_shape)
        built_args.append(as_arg(value))  # a sample's constant, or a value drawn by its spec: no tensors
    built_kwargs = {}
    for key, value in kwargs.items():
        if key == "dtype" and isinstance(value, str):
            built_kwargs[key] = DType(value)
        elif key in layout.in_kwargs:
            built_kwargs[key] = build(value)
        elif key in op.kwargs and key not in frozen:
            built_kwargs[key] = _vary(template, op.kwargs[key], value, rank, anchor_shape)
        else:
            built_kwargs[key] = value
    if names and src.rarely(EXTRA_KEYWORD_ONE_IN):
        key = src.pick(names)
        if key not in frozen:
            kind = op.kwargs[key]
            built_kwargs[key] = (src.pick(_derived_shapes(anchor_shape or ())) if kind == "shape"
                                 else _spec_value(src, kind, rank))
    return tuple(built_args), built_kwargs


def _view_of_transpose_args(builder: _Builder) -> tuple[tuple, dict]:
    """``x.transpose(a, b).view(shape)``: a view of a non-contiguous tensor, where torch checks strides
    ((-1,) of a transposed matrix is its error; a shape that keeps the swapped dims apart is not), so an
    engine that views without that check is reached. The samples' operands are always contiguous."""
    src, limits = builder.source, builder.limits
    ref = builder.operand(REAL, accept=lambda shape: len(shape) >= 2,
                          new_shape=lambda: src.shape(2, limits.max_dims, limits.max_side), anchor=True)
    rank = len(builder.shape(ref))
    first = src.integer(0, max(rank - 2, 0))
    if rank >= 2 and builder.add_step("transpose", "method", (ref, Literal(first), Literal(src.integer(first + 1, rank - 1))), {}):
        ref = _ref(builder.steps[-1].out)
    shape = builder.shape(ref)
    split = [(1,) + shape[:-1] + (1, shape[-1])] if shape else []  # (an operand of rank < 2 when nothing fitted)
    return (ref, as_arg(src.pick(_derived_shapes(shape) + split))), {}


def _setitem_args(builder: _Builder, op: Op, form: str) -> tuple[tuple, dict]:
    """``x[index] = value`` on a receiver: an int, a slice, ``[:, i]`` or a mask; a number or a tensor."""
    src = builder.source
    receiver = _receiver(builder, None)
    shape = builder.shape(receiver)
    side = shape[0] if shape else 1
    kind = src.pick(("int", "slice", "column", "mask", "repeated"))
    # An empty dim still gets index 0 (or [:, 0]): torch's IndexError is compared then.
    if kind == "int" or not shape:
        index = Literal(src.integer(-side, max(side - 1, 0))) if shape else Literal(None)
    elif kind == "slice":
        index = Slice(src.integer(0, side), None, None)
    elif kind == "column" and len(shape) >= 2:
        index = Seq((Slice(), Literal(src.integer(0, max(shape[1] - 1, 0)))))
    elif kind == "mask":
        index = builder.new_input(shape, REAL, dtype="bool", requires_grad=False)
    else:  # repeated positions: which write wins is torch's business, compared too
        index = builder.new_input((2,), REAL, dtype="int64", values=[0, 0], requires_grad=False)
    if src.pick(("scalar", "tensor")) == "scalar":
        value = Literal(_scalar(src, REAL))
    else:
        value = builder.operand(REAL, accept=lambda shape: not shape, new_shape=lambda: ())
    return (receiver, index, value), {}


def _getitem_args(builder: _Builder, op: Op, form: str) -> tuple[tuple, dict]:
    """``x[index]``: one of the table's samples, or (one in STEPPED_SLICE_ONE_IN) a stepped slice
    ``x[:, start::step]`` along a side of 3 or more."""
    src, limits = builder.source, builder.limits
    if limits.max_side < 3 or not src.rarely(STEPPED_SLICE_ONE_IN):
        return _template_args(builder, op, form)

    def new_shape() -> tuple[int, ...]:
        shape = list(src.shape(1, limits.max_dims, limits.max_side))
        shape[src.integer(0, len(shape) - 1)] = src.integer(3, limits.max_side)
        return tuple(shape)
    anchor = builder.operand(REAL, accept=lambda shape: any(side >= 3 for side in shape), new_shape=new_shape,
                             anchor=True)
    # (Nothing fitting and no input left to add, the anchor may lack such a side: torch's answer is compared.)
    dims = [dim for dim, side in enumerate(builder.shape(anchor)) if side >= 3] or [0]
    index = (slice(None),) * src.pick(dims) + (slice(src.integer(0, 1), None, src.integer(2, 3)),)
    return (anchor, as_arg(index)), {}


_ARGUMENTS_BY_KIND = {UNARY: _unary_args, BINARY: _binary_args, REDUCTION: _reduction_args, MATMUL: _matmul_args}


@functools.lru_cache(maxsize=None)
def _makers(name: str) -> tuple[Callable, ...]:
    """The ways to draw an op's operands, in shrink order (a kind rule first, where there is one)."""
    op = BY_NAME[name]
    if op.name == SETITEM:
        return (_setitem_args,)
    if op.name == "__getitem__" and op.samples:
        return (_getitem_args,)
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


def _form(src: ChoiceSource, op: Op, args: tuple, kwargs: dict) -> str:
    forms = [form for form in op.forms
             if not (form == "operator" and (kwargs or len(args) not in (1, 2) or not any(
                 isinstance(arg, Ref) for arg in args)))
             and not (form in ("method", PROPERTY) and not (args and isinstance(args[0], Ref)))
             and not (form == PROPERTY and (len(args) > 1 or kwargs))]
    return src.pick(forms) if forms else op.forms[0]


def _op_step(builder: _Builder, op: Op) -> bool:
    src = builder.source
    builder.kinks = op.kinks
    maker = src.pick(_makers(op.name))
    form = None
    if maker in _ARGUMENTS_BY_KIND.values():
        form = src.pick(op.forms)
    # (Like mixed programs, only where more than one dtype is asked for: `dtypes` bounds the inputs.)
    several_dtypes = len(builder.limits.dtypes) > 1
    elementwise = op.kind in (UNARY, BINARY)
    integral = several_dtypes and (
        (op.name in ACCUMULATING_OPS and src.rarely(INTEGRAL_REDUCTION_ONE_IN))
        or (elementwise and src.rarely(INTEGRAL_ELEMENTWISE_ONE_IN)))
    builder.integral, builder.integral_all = integral, integral and elementwise
    args, kwargs = maker(builder, op, form)
    builder.integral = builder.integral_all = False  # (a template without a drawn tensor never asked)
    if form is None:
        form = _form(src, op, args, kwargs)
    ok = builder.add_step(op.name, form, args, kwargs)
    if ok and integral:
        builder.final = builder.steps[-1].out
    elif ok and not builder.steps[-1].aliases_first:
        ok = _join(builder)
    return ok or builder.retract()


def _join(builder: _Builder) -> bool:
    """Join the newest step's output into the chain (see JOIN) when it cannot carry the gradient and the
    target (or an input) does; False if torch rejected the joining step."""
    out, tensors = builder.steps[-1].out, builder.tensors
    result = tensors.get(out)
    if result is None or result.requires_grad or len(builder.steps) >= builder.limits.max_steps:
        return True
    # The target, or (before any step requires grad) the newest tensor that does, an input.
    target = builder.target()
    if target is None or not tensors[target].requires_grad:
        target = next((name for name in reversed(builder.floats) if tensors[name].requires_grad), None)
        if target is None:
            return True
    src, mask = builder.source, result.dtype == torch.bool
    ops = [name for name in builder.limits.join_ops if mask or name != "where"]
    if not ops or broadcast_shape(builder.shapes[target], builder.shapes[out]) is None or not src.pick(JOIN):
        return True
    op = src.pick(ops)
    builder.no_grad = False  # (the join of a no_grad result runs outside the region)
    if op == "where":
        return builder.add_step(op, "function", (_ref(out), _ref(target), Literal(_scalar(src, REAL))), {})
    return builder.add_step(op, "function", (_ref(target), _ref(out)), {})


def _inplace_step(builder: _Builder, *, on_leaf: bool = False) -> bool:
    """``receiver.<op>_(...)`` for a table op with an in-place method (its receiver a step output,
    or on purpose a leaf that requires grad)."""
    src = builder.source
    op = BY_NAME[src.pick(builder.limits.inplace_ops)]
    builder.kinks = op.kinks
    if op.kind not in _ARGUMENTS_BY_KIND:  # e.g. lerp_: the sample's first tensor is the receiver
        args, kwargs = _template_args(builder, op, "inplace")
        # A sample whose first operand is not a tensor (`True & mask`) has no receiver: call the op.
        form = "inplace" if args and isinstance(args[0], Ref) else _form(src, op, args, kwargs)
        return builder.add_step(op.name, form, args, kwargs)
    if on_leaf:
        leaves = [tensor.name for tensor in builder.inputs if tensor.requires_grad]
        builder.forced = _ref(leaves[-1]) if leaves else None
    if builder.forced is None:
        builder.forced = _receiver(builder, None)
    args, kwargs = _ARGUMENTS_BY_KIND[op.kind](builder, op, "inplace")
    builder.forced = None
    return builder.add_step(op.name, "inplace", args, kwargs)


def _special_step(builder: _Builder, kind: str) -> bool:
    """detach, retain_grad or a gradient hook (times a constant, sometimes plus one) on an
    existing float tensor."""
    src = builder.source
    # Usually on a tensor that requires grad; once in a while not, for torch's error.
    wants_grad = not src.rarely(NO_GRAD_ONE_IN)
    # (detach of a leaf, the program's only output, could only end in backward's error)
    names = [name for name in builder.float_tensors(non_leaf=kind in (RETAIN_GRAD, DETACH))
             if builder.tensors[name].requires_grad == wants_grad]
    if not names:
        return True  # nothing to act on: no step
    target = _ref(builder.newest(names) if src.pick(MOSTLY) else src.pick(names))
    args = (target,)
    if kind == REGISTER_HOOK:
        args += (Literal(src.pick(HOOK_SCALES)),)
        if src.rarely(HOOK_SHIFT_ONE_IN):
            args += (Literal(src.pick(HOOK_SHIFTS)),)
    ok = builder.add_step(kind, "method", args, {})
    return ok and (kind != DETACH or _join(builder) or builder.retract())


def _invalid_step(builder: _Builder, mode: str) -> bool:
    """A step that is wrong on purpose: torch's error is then what gets compared."""
    src, limits = builder.source, builder.limits
    names = builder.float_tensors()
    if mode == "leaf-inplace" and limits.inplace_ops:
        return _inplace_step(builder, on_leaf=True)
    anchor = _ref(names[-1]) if names else builder.new_input(builder.shape(_ref("x0")), REAL, dtype=builder.dtype)
    shape = builder.shape(anchor)
    binary = [name for name in limits.ops if BY_NAME[name].kind in (BINARY, MATMUL)] or ["add"]
    op = BY_NAME[src.pick(binary)]
    if mode == "dtype":  # an integer or bool operand where floats are expected
        other = builder.new_input(shape, REAL, dtype=src.pick(("int64", "bool")), requires_grad=False)
    else:  # "shape": sides that neither broadcast nor multiply
        other_shape = shape[:-1] + (shape[-1] + 1,) if shape else (2, 3)
        other = builder.new_input(other_shape, REAL)
        if not shape:
            anchor = builder.new_input((4,), REAL)
    form = "function" if "function" in op.forms else op.forms[0]
    return builder.add_step(op.name, form, (anchor, other), {})


@st.composite
def _programs(draw, limits: _Limits) -> Program:
    return _build(HypothesisSource(draw), limits)


def traced_programs(report: Callable[[Program, Outcome | None], None], **options) -> st.SearchStrategy[Program]:
    """`programs(**options)` (the same programs from the same choices) that also calls
    ``report(program, torch_outcome)`` for each program it draws, with torch's outcome as
    `fast_examples` gives it (None where the builder cannot tell)."""
    return _traced_programs(_limits(**options), report)


@st.composite
def _traced_programs(draw, limits: _Limits, report: Callable[[Program, Outcome | None], None]) -> Program:
    program, outcome = _build(HypothesisSource(draw), limits, trace=True)
    report(program, outcome)
    return program


def _build(src: ChoiceSource, limits: _Limits, *, trace: bool = False):
    """The program (pruned) drawn from ``src``; with ``trace``, ``(program, torch outcome)``, the
    outcome from the builder's own evaluation (`_Builder.outcome`; None where it cannot be)."""
    with interpreter.recording_warnings() as caught:  # torch's, while the builder evaluates steps
        builder, built = _build_program(src, limits, caught if trace else None)
        program, kept, names = built.pruning()
        if not trace:
            return program
        return program, builder.outcome(built, program, kept, names)


def _build_program(src: ChoiceSource, limits: _Limits, caught: list | None) -> tuple[_Builder, Program]:
    """The builder and the program it built, before pruning."""
    length = _chain_length(src, limits.max_steps)
    # The action's kind is drawn up front (it is used last): a failure then shrinks to the plainest
    # action, sum().backward(), before its values shrink (x = 0 can hide a bug from a first-order
    # backward that a double backward still shows).
    action_kind = src.pick(ACTIONS if limits.features else ACTION_KINDS[:3])
    dtype = src.pick(limits.dtypes)
    mixed = len(limits.dtypes) > 1 and src.rarely(MIXED_DTYPES_ONE_IN)
    builder = _Builder(src, limits, dtype, mixed, caught=caught)
    # One input exists before the first step, so every step's choices have the
    # same layout and the shrinker can delete any of them (even the first).
    builder.new_input(src.shape(0, limits.max_dims, limits.max_side), REAL)
    invalid_mode, invalid_at = None, None
    if limits.features and src.rarely(INVALID_ONE_IN):
        invalid_mode = src.pick(INVALID_MODES)
        invalid_at = src.integer(0, length - 1)
    for index in range(limits.max_steps):
        builder.no_grad = limits.features and src.rarely(NO_GRAD_STEP_ONE_IN)
        kind = src.pick(STEP_KINDS) if limits.features else "op"
        if index == invalid_at and invalid_mode in ("shape", "dtype", "leaf-inplace"):
            ok = _invalid_step(builder, invalid_mode)
        elif kind == "op" or (kind == "inplace" and not limits.inplace_ops):
            ok = _op_step(builder, BY_NAME[src.pick(limits.ops)])
        elif kind == "inplace":
            ok = _inplace_step(builder)
        else:
            ok = _special_step(builder, kind)
        if not ok or builder.final is not None or builder.chain() >= length:
            break
    if not builder.steps and builder.retracted is not None:
        # Every step was taken back: the program ends at the last one torch rejected after all.
        step, entry = builder.retracted
        builder.steps.append(step)
        if entry is not None:
            builder.trace.append(entry)
        builder.failed = True
    elif not builder.steps:  # only possible with special steps that found nothing to act on
        builder.add_step("clone" if "clone" in BY_NAME else "neg", "function", (_ref("x0"),), {})
    if invalid_mode == "gradient-shape":
        action_kind = BACKWARD_GRADIENT
    action = _action(src, builder, action_kind, no_grad_target=invalid_mode == "no-grad-target",
                     wrong_gradient_shape=invalid_mode == "gradient-shape")
    # Valid by construction (names fresh and in order, operands defined before use, the values' shapes
    # the declared ones): Program's validation, a sixth of the builder's own Python work, is skipped
    # (tests/fuzz/test_strategies.py validates drawn programs).
    return builder, _frozen(Program, inputs=tuple(builder.inputs), steps=tuple(builder.steps), action=action,
                            format=FORMAT_VERSION)


def _wrong_shape(src: ChoiceSource, shape: tuple[int, ...]) -> tuple[int, ...]:
    """A shape other than ``shape``: a size-1 dim in front, the last side one longer, or the first dim dropped
    (a 0-d shape becomes (1,))."""
    if not shape:
        return (1,)
    return src.pick(((1,) + shape, shape[:-1] + (shape[-1] + 1,), shape[1:]))


def _chain_length(src: ChoiceSource, max_steps: int) -> int:
    """How many steps the action's target should depend on: 1..max_steps, geometric (each length
    CHAIN_RATIO times as likely as the one before), so short programs are many and every length up
    to max_steps occurs; one choice that shrinks to length 1.

    The builder draws steps until the default target (`_Builder.chain`) depends on this many (or
    max_steps steps are drawn, or torch rejects one): steps the target does not depend on are
    pruned, so drawing a fixed number of steps would run most of them on torch for nothing.
    """
    return src.pick(_chain_lengths(max_steps))


@functools.lru_cache(maxsize=None)
def _chain_lengths(max_steps: int) -> tuple[int, ...]:
    """1..max_steps, each repeated in proportion to its probability (at least once)."""
    return tuple(length for length in range(1, max_steps + 1)
                 for _ in range(max(1, round(1000 * CHAIN_RATIO ** (length - 1)))))


def _default_target(builder: _Builder, outputs: list[str]) -> str:
    """The action's usual target among step ``outputs`` (oldest first): of those that require grad, the
    one that depends on the most steps (the newest of those), else the newest output. The program is
    pruned to what the target depends on: a step that starts a chain of its own does not make the
    chain drawn so far dead code."""
    tensors, ancestors = builder.tensors, builder.ancestors
    grad = [(len(ancestors[name]), index) for index, name in enumerate(outputs) if tensors[name].requires_grad]
    return outputs[max(grad)[1]] if grad else outputs[-1]


def _action(src: ChoiceSource, builder: _Builder, kind: str, *, no_grad_target: bool = False,
            wrong_gradient_shape: bool = False) -> Action:
    """The final action, on a step output that usually requires grad (or on the step torch rejected).

    With ``wrong_gradient_shape``, backward's explicit gradient has a shape other than the target's
    (torch's "Mismatch in shape" error is compared)."""
    last = builder.steps[-1]
    if builder.failed:
        return Action(SUM_BACKWARD, last.out)  # never runs: the program stops at this step
    outputs = [step.out for step in builder.steps if step.out in builder.tensors]
    if not outputs:
        return Action(SUM_BACKWARD, last.out)
    if no_grad_target:
        # Backward on what does not require grad: a detached output.
        builder.add_step(DETACH, "method", (_ref(outputs[-1]),), {})
        return Action(src.pick((SUM_BACKWARD, BACKWARD)), builder.steps[-1].out)
    # Usually the output that requires grad and depends on the most steps: the program is pruned
    # to the target's ancestors, and the action then usually reaches a backward pass.
    newest = outputs[-1]
    default = builder.final or _default_target(builder, outputs)
    outputs = sorted(reversed(outputs), key=lambda name: not builder.tensors[name].requires_grad)
    # Otherwise the newest output itself, even when it does not require grad (comparisons, argmax,
    # factories): its values are compared, and what backward says about it.
    choice = src.pick(("newest", "any")) if src.rarely(OTHER_TARGET_ONE_IN) else "grad"
    target = {"grad": default, "newest": newest, "any": src.pick(outputs) if choice == "any" else None}[choice]
    gradient, retain_graph, first_grad = None, False, False
    if kind == BACKWARD_GRADIENT:
        result = builder.tensors[target]
        # A bool target (all, any) gets float values, which backward rejects like torch does.
        dtype = interpreter.dtype_name(result.dtype) if result.is_floating_point() else builder.dtype
        shape = tuple(result.shape)
        gradient = _values(src, dtype, _wrong_shape(src, shape) if wrong_gradient_shape else shape, REAL)
    if kind == BACKWARD and builder.tensors[target].numel() != 1 and not src.rarely(NON_SCALAR_BACKWARD_ONE_IN):
        kind = SUM_BACKWARD
    if kind == REPEATED_BACKWARD:
        retain_graph = src.pick((True, False))
        # The first call is autograd.grad 1 time in 3: it frees the graph as backward does.
        first_grad = src.rarely(FIRST_GRAD_ONE_IN)
    return Action(kind, target, gradient, retain_graph, first_grad)
