"""The op table: one entry per public op, read by the engine, the tests and the fuzzer.

Each entry says how torch exposes the op (function, method, operator,
property), the autograd node(s) torch records for it, and the plain-data facts
the fuzzer needs to draw valid calls (kind of shape rule, input domain, kinks,
keyword arguments). The numerics live in the engine module named by
`IMPLEMENTATIONS` under the same name: adding an op is one function with its
rule there and one entry here (`tests/engine/test_optable.py` checks that the
two agree).

This module imports nothing from the engine, so tools can read the table
without building tensors.
"""
from __future__ import annotations

from dataclasses import dataclass, field

FUNCTION, METHOD, OPERATOR, PROPERTY = "function", "method", "operator", "property"
ALL_FORMS = (FUNCTION, METHOD, OPERATOR)

# Shape rules the fuzzer knows how to draw arguments for.
UNARY = "unary"            # one tensor, output has its shape
BINARY = "binary"          # two operands, broadcast together; either may be a Python scalar
REDUCTION = "reduction"    # one tensor; optional `dim` (int or tuple) and `keepdim`
MATMUL = "matmul"          # torch.matmul's 1-d / 2-d / batched rules
# Kinds the fuzzer does not draw yet (each needs its own argument strategy).
SHAPE = "shape"            # views and shape changes: reshape, permute, expand, ...
INDEXING = "indexing"      # __getitem__, gather, scatter, index_select, ...
JOIN = "join"              # cat, stack, split, chunk, unbind
LINALG = "linalg"          # mm, bmm, mv, dot, outer, einsum, trace
NN = "nn"                  # engine.nn.functional ops and losses
FACTORY = "factory"        # zeros, ones, arange, rand, ...; no tensor input
COMPARISON = "comparison"  # bool results, no gradient: eq, lt, isnan, logical_and, ...

# Input domains: where the op is defined and smooth, so a fuzzer can aim inside
# it (and, on purpose, at its edge).
REAL, POSITIVE, NONZERO = "real", "positive", "nonzero"


@dataclass(frozen=True)
class T:
    """A tensor argument in a sample call: its shape, and how to fill it.

    `values` gives literal (nested) values, e.g. for index tensors; otherwise
    values are drawn from `domain`. `dtype` None means the dtype under test;
    floating tensors of the dtype under test require grad.
    """

    shape: tuple = ()
    dtype: str | None = None
    values: object = None
    domain: str = REAL


@dataclass(frozen=True)
class Op:
    """One public op. `name` is torch's name; a dotted name ("nn.functional.gelu")
    says which engine namespace holds the function."""

    name: str
    kind: str
    grad_fn: tuple[str, ...]                 # torch's node name(s) for this op; () if none
    forms: tuple[str, ...] = (FUNCTION, METHOD)
    operator: str | None = None              # Python operator symbol, e.g. "*" ("-" unary for neg)
    domain: tuple[str, ...] = (REAL,)        # per tensor argument
    kinks: tuple[float, ...] = ()            # non-differentiable points of the first argument
    # keyword -> how to draw it: "dim" (a dim of the input), "dims" (int or tuple), "bool",
    # "float", "int", or a tuple of the literal choices, e.g. (None, "trunc", "floor").
    kwargs: dict = field(default_factory=dict)
    differentiable: bool = True
    aliases: tuple[str, ...] = ()            # other torch names of the same op (clip for clamp)
    inplace: str | None = None               # the in-place method, e.g. "add_"
    # Sample calls for the per-op conformance tests, as (args, kwargs) with `T` for each
    # tensor argument. Ops of the drawable kinds get default samples from their kind.
    samples: tuple = ()
    dtypes: tuple[str, ...] = ("float32", "float64")   # dtypes the op is tested in
    # Tolerance override (rtol, atol) per dtype name, for ops torch computes
    # with a different but equally accurate formula; None = assert_close defaults.
    tol: dict | None = None


OPS: tuple[Op, ...] = (
    # ---- engine/_ops.py ---------------------------------------------------------------
    # elementwise unary
    Op("neg", UNARY, ("NegBackward0",), ALL_FORMS, operator="-"),
    Op("exp", UNARY, ("ExpBackward0",)),
    Op("log", UNARY, ("LogBackward0",), domain=(POSITIVE,)),
    Op("relu", UNARY, ("ReluBackward0",), kinks=(0.0,)),
    Op("tanh", UNARY, ("TanhBackward0",)),
    Op("sigmoid", UNARY, ("SigmoidBackward0",)),
    # elementwise binary, with broadcasting and Python scalars on either side
    Op("add", BINARY, ("AddBackward0",), ALL_FORMS, operator="+"),
    Op("sub", BINARY, ("SubBackward0", "RsubBackward1"), ALL_FORMS, operator="-"),
    Op("mul", BINARY, ("MulBackward0",), ALL_FORMS, operator="*"),
    Op("div", BINARY, ("DivBackward0", "ReciprocalBackward0"), ALL_FORMS, operator="/",
       domain=(REAL, NONZERO)),
    Op("pow", BINARY, ("PowBackward0", "PowBackward1", "PowBackward2"), ALL_FORMS,
       operator="**", domain=(POSITIVE, REAL)),
    # reductions
    Op("sum", REDUCTION, ("SumBackward0", "SumBackward1"), kwargs={"dim": "dim", "keepdim": "bool"}),
    Op("mean", REDUCTION, ("MeanBackward0", "MeanBackward1"), kwargs={"dim": "dim", "keepdim": "bool"}),
    # linear algebra
    Op("matmul", MATMUL, ("DotBackward0", "MvBackward0", "MmBackward0", "BmmBackward0",
                          "SqueezeBackward4", "UnsafeViewBackward0", "CloneBackward0"), ALL_FORMS, operator="@"),

    # (end of engine/_ops.py)

    # ---- engine/_ops_pointwise.py --------------------------------------------------------
    # (end of engine/_ops_pointwise.py)

    # ---- engine/_ops_reduce.py -----------------------------------------------------------
    # (end of engine/_ops_reduce.py)

    # ---- engine/_ops_shape.py ------------------------------------------------------------
    # (end of engine/_ops_shape.py)

    # ---- engine/_ops_index.py ------------------------------------------------------------
    # Tensor.__getitem__ is an entry of its own name with the METHOD form only, so the engine
    # binds `Tensor.__getitem__`; each piece of an index expression records its own node
    # (ints SelectBackward0, slices SliceBackward0, None UnsqueezeBackward0, tensors, lists and
    # bools one IndexBackward0 at the end, `x[...]` AliasBackward0).
    Op("__getitem__", INDEXING, ("SelectBackward0", "SliceBackward0", "UnsqueezeBackward0",
                                 "IndexBackward0", "AliasBackward0"), (METHOD,),
       dtypes=("float32", "float64", "int64"),
       samples=(
           ((T((4, 5)), 1), {}), ((T((4, 5)), -1), {}), ((T((4, 5)), slice(1, 3)), {}),
           ((T((4, 5)), slice(None, None, 2)), {}), ((T((4, 5)), slice(-10, 10)), {}),
           ((T((4, 5)), slice(None)), {}), ((T((4, 5)), None), {}), ((T((4, 5)), Ellipsis), {}),
           ((T((4, 5)), True), {}), ((T(()), None), {}), ((T(()), Ellipsis), {}),
           ((T(()), True), {}),
           ((T((4, 5)), (slice(None), 1)), {}), ((T((4, 5)), (Ellipsis, 2)), {}),
           ((T((4, 5)), (slice(0, 4), slice(None, 9))), {}), ((T((4, 5)), (slice(-2, None), -1)), {}),
           ((T((3, 4, 5)), (None, 1, slice(1, None, 3))), {}), ((T((3, 4, 5)), (0, None, Ellipsis, None)), {}),
           # advanced indices; repeated positions accumulate their gradients
           ((T((4, 5)), T((3,), "int64", [0, 3, 0])), {}), ((T((4, 5)), [2, -1, 2, 2]), {}),
           ((T((4, 5)), T((2, 2), "int64", [[0, 3], [3, 1]])), {}),
           ((T((4, 5)), (slice(None), [1, 1, 4])), {}), ((T((4, 5)), ([0, 1, 1], [2, 2, 2])), {}),
           ((T((4, 5)), (T((2, 1), "int64", [[0], [3]]), [1, 4, 1])), {}),
           ((T((3, 4, 5)), ([0, 2], slice(None), [1, 1])), {}), ((T((3, 4, 5)), (slice(None), [0, 0], [1, 2])), {}),
           ((T((3, 4, 5)), ([0, 1], None, [0, 1])), {}), ((T((3, 4, 5)), (0, slice(None), [1, 2])), {}),
           ((T((3, 4, 5)), (slice(1, 3), [3, 3], slice(None, 2))), {}), ((T((3, 4, 5)), (T((2,), "int64", [2, 0]), Ellipsis, 1)), {}),
           ((T((3, 4, 5)), (Ellipsis, [4, 0, 4])), {}), ((T((3, 4, 5)), (0, True)), {}),
           # masks and 0-d index tensors
           ((T((4, 5)), T((4, 5), "bool", [[True, False, True, False, True]] * 2 + [[False] * 5, [True] * 5])), {}),
           ((T((4, 5)), T((4,), "bool", [True, False, True, True])), {}),
           ((T((3, 4, 5)), (slice(None), T((4,), "bool", [False, True, True, False]), [0, 4])), {}),
           ((T((4, 5)), [True, False, False, True]), {}),
           ((T((4, 5)), T((), "int64", 2)), {}), ((T((4, 5)), (T((), "int64", 1), [0, 0, 1])), {}),
           ((T((4, 5)), T((), "bool", True)), {}),
       )),
    Op("index_select", INDEXING, ("IndexSelectBackward0",), dtypes=("float32", "float64", "int64"),
       samples=(
           ((T((3, 4)), 0, T((3,), "int64", [2, 0, 2])), {}),
           ((T((3, 4)), -1, T((5,), "int64", [3, 3, 0, 1, 3])), {}),
           ((T((2, 3, 4)), 1, T((), "int64", 1)), {}),
           ((T(()), 0, T((1,), "int64", [0])), {}),
       )),
    Op("gather", INDEXING, ("GatherBackward0",), kwargs={"sparse_grad": (False,)},
       dtypes=("float32", "float64", "int64"),
       samples=(
           ((T((3, 4)), 1, T((3, 2), "int64", [[0, 0], [1, 0], [3, 3]])), {}),
           ((T((3, 4)), 0, T((2, 4), "int64", [[0, 1, 2, 0], [2, 2, 2, 2]])), {}),
           # the index may be longer than the input along dim, and shorter elsewhere
           ((T((3, 4)), -1, T((2, 6), "int64", [[0, 1, 2, 3, 0, 0], [3, 3, 3, 3, 3, 1]])), {"sparse_grad": False}),
           ((T((2, 3, 2)), 2, T((2, 3, 1), "int64", [[[1], [0], [1]], [[0], [0], [1]]])), {}),
           ((T((4,)), 0, T((), "int64", 2)), {}),
           ((T(()), 0, T((2,), "int64", [0, 0])), {}),
       )),
    Op("scatter", INDEXING, ("ScatterBackward0", "ScatterBackward1"), kwargs={"value": "float"},
       dtypes=("float32", "float64", "int64"),
       samples=(
           # positions within a row are distinct: torch leaves the order of repeated writes unspecified
           ((T((3, 4)), 1, T((3, 2), "int64", [[0, 1], [3, 2], [1, 0]]), T((3, 2))), {}),
           ((T((3, 4)), 0, T((2, 4), "int64", [[0, 1, 2, 0], [2, 0, 1, 1]]), T((2, 4))), {}),
           ((T((3, 4)), 0, T((2, 4), "int64", [[0, 1, 2, 0], [2, 0, 1, 1]]), 2.5), {}),
           ((T((3, 4)), -1, T((2, 1), "int64", [[3], [0]])), {"value": -1}),
           ((T((2, 3, 2)), 1, T((2, 2, 2), "int64", [[[0, 2], [1, 0]], [[2, 2], [0, 1]]]), T((2, 2, 2))), {}),
           ((T(()), 0, T((), "int64", 0), T(())), {}),
       )),
    Op("scatter_add", INDEXING, ("ScatterAddBackward0",), dtypes=("float32", "float64", "int64"),
       samples=(
           ((T((3, 4)), 1, T((3, 3), "int64", [[0, 0, 1], [3, 3, 3], [2, 0, 2]]), T((3, 3))), {}),
           ((T((3, 4)), 0, T((2, 4), "int64", [[0, 1, 2, 0], [0, 1, 2, 0]]), T((2, 4))), {}),
           ((T((2, 3, 2)), -1, T((2, 3, 2), "int64", [[[1, 1], [0, 0], [1, 0]]] * 2), T((2, 3, 2))), {}),
           ((T((4,)), 0, T((), "int64", 3), T(())), {}),
       )),
    Op("masked_fill", INDEXING, ("MaskedFillBackward0", "MaskedFillBackward1"),
       samples=(
           ((T((3, 4)), T((3, 4), "bool", [[True, False, True, False], [False] * 4, [True] * 4]), 1.5), {}),
           ((T((3, 4)), T((4,), "bool", [True, False, False, True]), T(())), {}),
           ((T((4,)), T((3, 4), "bool", [[True, False, True, False], [False] * 4, [True] * 4]), -2), {}),
           ((T((2, 3)), T((2, 1), "bool", [[True], [False]]), T((), "float64", 0.25)), {}),
           ((T((2, 3)), T((2, 3), "bool", [[True, False, True], [False, True, False]]), float("nan")), {}),
           ((T(()), T((), "bool", True), 0.0), {}),
       )),
    Op("take", INDEXING, ("TakeBackward0",), dtypes=("float32", "float64", "int64"),
       samples=(
           ((T((3, 4)), T((4,), "int64", [0, 11, -1, 11])), {}),
           ((T((3, 4)), T((2, 2), "int64", [[5, 5], [-12, 0]])), {}),
           ((T((3, 4)), T((), "int64", 5)), {}),
           ((T(()), T((2,), "int64", [0, -1])), {}),
       )),
    # (end of engine/_ops_index.py)

    # ---- engine/_ops_linalg.py -----------------------------------------------------------
    # (end of engine/_ops_linalg.py)

    # ---- engine/_ops_factory.py ----------------------------------------------------------
    # (end of engine/_ops_factory.py)

    # ---- engine/nn/functional.py ---------------------------------------------------------
    # (end of engine/nn/functional.py)

)

# Where each op's function lives, by section of the table above (module names
# relative to the `engine` package). The engine binds functions from these.
IMPLEMENTATIONS = ("_ops", "_ops_pointwise", "_ops_reduce", "_ops_shape", "_ops_index",
                   "_ops_linalg", "_ops_factory", "nn.functional")

BY_NAME: dict[str, Op] = {op.name: op for op in OPS}
