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
INPLACE = "inplace"        # in-place ops without an out-of-place twin: zero_, fill_, copy_, __setitem__

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
    Op("neg", UNARY, ("NegBackward0",), ALL_FORMS, operator="-", inplace="neg_"),
    Op("exp", UNARY, ("ExpBackward0",), inplace="exp_"),
    Op("log", UNARY, ("LogBackward0",), domain=(POSITIVE,), inplace="log_"),
    Op("relu", UNARY, ("ReluBackward0",), kinks=(0.0,), inplace="relu_"),
    Op("tanh", UNARY, ("TanhBackward0",), inplace="tanh_"),
    Op("sigmoid", UNARY, ("SigmoidBackward0",), inplace="sigmoid_"),
    # elementwise binary, with broadcasting and Python scalars on either side
    Op("add", BINARY, ("AddBackward0",), ALL_FORMS, operator="+", inplace="add_"),
    Op("sub", BINARY, ("SubBackward0", "RsubBackward1"), ALL_FORMS, operator="-", inplace="sub_"),
    Op("mul", BINARY, ("MulBackward0",), ALL_FORMS, operator="*", inplace="mul_"),
    Op("div", BINARY, ("DivBackward0", "ReciprocalBackward0"), ALL_FORMS, operator="/",
       domain=(REAL, NONZERO), inplace="div_"),
    Op("pow", BINARY, ("PowBackward0", "PowBackward1", "PowBackward2"), ALL_FORMS,
       operator="**", domain=(POSITIVE, REAL), inplace="pow_"),
    # reductions
    Op("sum", REDUCTION, ("SumBackward0", "SumBackward1"), kwargs={"dim": "dim", "keepdim": "bool"}),
    Op("mean", REDUCTION, ("MeanBackward0", "MeanBackward1"), kwargs={"dim": "dim", "keepdim": "bool"}),
    # linear algebra
    Op("matmul", MATMUL, ("DotBackward0", "MvBackward0", "MmBackward0", "BmmBackward0",
                          "SqueezeBackward4", "UnsafeViewBackward0", "CloneBackward0"), ALL_FORMS, operator="@"),

    # (end of engine/_ops.py)

    # ---- engine/_ops_inplace.py ----------------------------------------------------------
    # (in-place variants of the ops above are their entries' `inplace` names)
    Op("zero_", INPLACE, ("ZeroBackward0",), (METHOD,),
       samples=(((T((2, 3)),), {}),)),
    Op("fill_", INPLACE, ("FillBackward2", "FillBackward3"), (METHOD,),
       samples=(((T((2, 3)), 1.5), {}), ((T((3,)), T((), dtype="float32")), {}))),
    Op("copy_", INPLACE, ("torch::autograd::CopyBackwards",), (METHOD,),
       samples=(((T((2, 3)), T((3,))), {}), ((T((2,)), T((2,), dtype="int64", values=(1, 2))), {}))),
    # `x[index] = value`; bound as Tensor.__setitem__
    Op("__setitem__", INPLACE, ("torch::autograd::CopySlices",), (METHOD,)),
    # (end of engine/_ops_inplace.py)

    # ---- engine/_ops_pointwise.py --------------------------------------------------------
    # (end of engine/_ops_pointwise.py)

    # ---- engine/_ops_reduce.py -----------------------------------------------------------
    # (end of engine/_ops_reduce.py)

    # ---- engine/_ops_shape.py ------------------------------------------------------------
    # (end of engine/_ops_shape.py)

    # ---- engine/_ops_index.py ------------------------------------------------------------
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
IMPLEMENTATIONS = ("_ops", "_ops_inplace", "_ops_pointwise", "_ops_reduce", "_ops_shape", "_ops_index",
                   "_ops_linalg", "_ops_factory", "nn.functional")

BY_NAME: dict[str, Op] = {op.name: op for op in OPS}
