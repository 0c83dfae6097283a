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
    # elementwise unary, computed in floating point (integer and bool inputs give float32)
    Op("expm1", UNARY, ("Expm1Backward0",)),
    Op("log2", UNARY, ("Log2Backward0",), domain=(POSITIVE,)),
    Op("log10", UNARY, ("Log10Backward0",), domain=(POSITIVE,)),
    Op("log1p", UNARY, ("Log1PBackward0",), domain=(POSITIVE,)),
    Op("sqrt", UNARY, ("SqrtBackward0",), domain=(POSITIVE,)),
    Op("rsqrt", UNARY, ("RsqrtBackward0",), domain=(POSITIVE,)),
    Op("reciprocal", UNARY, ("ReciprocalBackward0",), domain=(NONZERO,)),
    Op("sin", UNARY, ("SinBackward0",)),
    Op("cos", UNARY, ("CosBackward0",)),
    Op("tan", UNARY, ("TanBackward0",),
       samples=(((T((2, 3), values=[[-1.2, -0.5, 0.0], [0.3, 0.9, 1.3]]),), {}), ((T(()),), {}))),
    Op("asin", UNARY, ("AsinBackward0",),
       samples=(((T((2, 3), values=[[-0.9, -0.5, 0.0], [0.25, 0.6, 0.95]]),), {}),
                ((T((), values=0.3),), {}))),
    Op("acos", UNARY, ("AcosBackward0",),
       samples=(((T((2, 3), values=[[-0.9, -0.5, 0.0], [0.25, 0.6, 0.95]]),), {}),
                ((T((), values=-0.3),), {}))),
    Op("atan", UNARY, ("AtanBackward0",)),
    Op("sinh", UNARY, ("SinhBackward0",)),
    Op("cosh", UNARY, ("CoshBackward0",)),
    Op("erf", UNARY, ("ErfBackward0",)),
    Op("square", UNARY, ("PowBackward0",)),
    # elementwise unary keeping integer dtypes; the rounding ops have gradient 0
    # abs samples do not require grad: torch's second derivative of abs is a ZeroTensor, which
    # the conformance test cannot read; tests/engine/test_pointwise.py checks its gradients.
    Op("abs", UNARY, ("AbsBackward0",), ALL_FORMS, operator="abs", kinks=(0.0,),
       samples=(((T((2, 3), "float32"),), {}), ((T((), "float64"),), {}),
                ((T((5,), "float32", [-1.5, -0.0, 0.0, 0.5, 2.0]),), {}),
                ((T((3,), "int64", [-3, 0, 2]),), {}))),
    Op("sign", UNARY, ("SignBackward0",), kinks=(0.0,),
       samples=(((T((2, 3)),), {}), ((T((4,), values=[-1.5, -0.0, 0.0, 2.0]),), {}))),
    Op("floor", UNARY, ("FloorBackward0",),
       samples=(((T((2, 3)),), {}), ((T((4,), values=[-1.0, -0.5, 0.0, 2.0]),), {}))),
    Op("ceil", UNARY, ("CeilBackward0",),
       samples=(((T((2, 3)),), {}), ((T((4,), values=[-1.0, -0.5, 0.0, 2.0]),), {}))),
    Op("trunc", UNARY, ("TruncBackward0",),
       samples=(((T((2, 3)),), {}), ((T((4,), values=[-1.5, -0.5, 0.5, 2.0]),), {}))),
    Op("round", UNARY, ("RoundBackward0", "RoundBackward1"), kwargs={"decimals": (0, 1, 2, -1)},
       samples=(((T((2, 3)),), {}), ((T((5,), values=[-2.5, -0.5, 0.5, 1.5, 2.5]),), {}),
                ((T((4,), values=[1.2345, -0.125, 15.0, 0.0]),), {"decimals": 2}),
                ((T((3,), values=[1234.5, 15.0, 25.0]),), {"decimals": -1}),
                ((T(()),), {"decimals": 0}))),
    # clamping: min and max are numbers or tensors (broadcast); gradient passes at the bounds
    Op("clamp", UNARY, ("ClampBackward0", "ClampBackward1"), kinks=(-0.5, 0.5),
       kwargs={"min": "float", "max": "float"}, aliases=("clip",),
       samples=(((T((2, 3)),), {"min": -0.5, "max": 0.5}), ((T((2, 3)),), {"min": 0.0}),
                ((T((4,), values=[-1.0, -0.5, 0.5, 1.0]),), {"max": 0.5, "min": -0.5}),
                ((T((2, 3)), -0.5, None), {}), ((T(()),), {"max": -0.25}),
                ((T((2, 3)),), {"min": 1.0, "max": -1.0}),
                ((T((2, 3)), T((3,)), T((2, 1), domain=POSITIVE)), {}),
                ((T((5,), values=[-2.0, -1.0, 0.0, 1.0, 2.0]), T((5,), values=[-1.0, -1.0, 1.0, 1.0, 2.0]),
                  T((5,), values=[1.0, 1.0, 0.0, 1.0, 2.0])), {}),
                ((T((2, 3)), T((2, 1)), None), {}), ((T((2, 3)), None, T(())), {}))),
    Op("clamp_min", BINARY, ("ClampMinBackward0", "ClampMinBackward1"), kinks=(0.0,),
       samples=(((T((2, 3)), 0.0), {}), ((T((4,), values=[-1.0, 0.0, 0.5, 1.0]), 0.5), {}),
                ((T((2, 3)), T((3,))), {}), ((T((3,), values=[-1.0, 0.0, 1.0]), T((2, 1), values=[[0.0], [1.0]])), {}))),
    Op("clamp_max", BINARY, ("ClampMaxBackward0", "ClampMaxBackward1"), kinks=(0.0,),
       samples=(((T((2, 3)), 0.0), {}), ((T((4,), values=[-1.0, 0.0, 0.5, 1.0]), 0.5), {}),
                ((T((2, 3)), T((3,))), {}), ((T((3,), values=[-1.0, 0.0, 1.0]), T((2, 1), values=[[0.0], [1.0]])), {}))),
    Op("nan_to_num", UNARY, ("NanToNumBackward0",), kwargs={"nan": "float", "posinf": "float", "neginf": "float"},
       samples=(((T((2, 3)),), {}),
                ((T((5,), values=[float("nan"), float("inf"), -float("inf"), 1.5, -0.0]),), {}),
                ((T((4,), values=[float("nan"), float("inf"), -float("inf"), 1.0]),),
                 {"nan": 1.5, "posinf": 2.0, "neginf": -3.0}),
                ((T((3,), values=[float("nan"), float("inf"), 2.0]), 0.5), {}))),
    # elementwise binary, broadcasting; which side may be a Python number varies by op
    Op("floor_divide", BINARY, (), ALL_FORMS, operator="//", differentiable=False,
       samples=(((T((2, 3), "int64", [[7, -7, 0], [5, -5, 9]]), T((3,), "int64", [2, 3, -4])), {}),
                ((T((4,), "int64", [7, -7, 6, 0]), 3), {}), ((-7, T((3,), "int64", [2, -3, 4])), {}),
                ((T((5,), "float32", [7.0, -7.0, 1.0, -0.1, 5.0]), T((5,), "float32", [0.7, 2.0, 0.1, 2.0, 0.0])), {}),
                ((T((3,), "float64", [7.0, -7.0, 1.0]), 0.1), {}))),
    Op("remainder", BINARY, ("RemainderBackward0", "RemainderBackward1", "torch::autograd::NotImplemented"),
       ALL_FORMS, operator="%", domain=(REAL, NONZERO),
       samples=(((T((3,)), T((3,), domain=NONZERO)), {}), ((T((2, 3)), T((3,), domain=NONZERO)), {}),
                ((T((2, 1)), T((1, 3), domain=NONZERO)), {}), ((T((3,)), 0.75), {}), ((T((2, 2)), -1.5), {}),
                ((T((4,), "int64", [7, -7, 7, -7]), T((4,), "int64", [3, 3, -3, -3])), {}),
                ((T((4,), "float64", [-0.0, 5.0, -5.0, 3.0]), T((4,), "float64", [2.0, float("inf"), float("inf"), 0.0])), {}))),
    Op("fmod", BINARY, ("FmodBackward0", "FmodBackward1"), domain=(REAL, NONZERO),
       samples=(((T((3,)), T((3,), domain=NONZERO)), {}), ((T((2, 3)), T((3,), domain=NONZERO)), {}),
                ((T((2, 1)), T((1, 3), domain=NONZERO)), {}), ((T((3,)), 0.75), {}), ((T((2, 2)), -1.5), {}),
                ((T((4,), "int64", [7, -7, 7, -7]), T((4,), "int64", [3, 3, -3, -3])), {}))),
    Op("maximum", BINARY, ("MaximumBackward0",), kinks=(0.0,),
       samples=(((T((3,)), T((3,))), {}), ((T((2, 3)), T((3,))), {}), ((T((2, 1)), T((1, 3))), {}),
                ((T(()), T((2, 2))), {}),
                ((T((4,), values=[1.0, 2.0, -1.0, 0.5]), T((4,), values=[1.0, 1.0, 0.0, 0.5])), {}))),
    Op("minimum", BINARY, ("MinimumBackward0",), kinks=(0.0,),
       samples=(((T((3,)), T((3,))), {}), ((T((2, 3)), T((3,))), {}), ((T((2, 1)), T((1, 3))), {}),
                ((T(()), T((2, 2))), {}),
                ((T((4,), values=[1.0, 2.0, -1.0, 0.5]), T((4,), values=[1.0, 1.0, 0.0, 0.5])), {}))),
    Op("atan2", BINARY, ("Atan2Backward0",),
       samples=(((T((3,)), T((3,))), {}), ((T((2, 3)), T((3,))), {}), ((T((2, 1)), T((1, 3))), {}),
                ((T(()), T((2, 2))), {}),
                ((T((4,), values=[0.0, 1.0, -0.0, 1.0]), T((4,), values=[0.0, 0.0, -1.0, 1.0])), {}))),
    Op("xlogy", BINARY, ("XlogyBackward0", "XlogyBackward1", "XlogyBackward2"), domain=(REAL, POSITIVE),
       kinks=(0.0,),
       samples=(((T((3,)), T((3,), domain=POSITIVE)), {}), ((T((2, 3)), T((3,), domain=POSITIVE)), {}),
                ((T((2, 1)), T((1, 3), domain=POSITIVE)), {}), ((T((3,)), 2.0), {}), ((1.5, T((2, 2), domain=POSITIVE)), {}),
                ((T((4,), values=[0.0, 0.0, 1.0, 2.0]), T((4,), values=[0.0, 2.0, 3.0, 0.5])), {}),
                ((T((2,), values=[0.0, 1.5]), 0.0), {}), ((T((2,), values=[0.0, 1.5]), -2.0), {}))),
    # ternary
    Op("lerp", LINALG, ("LerpBackward0", "LerpBackward1"), kwargs={"weight": "float"},
       samples=(((T((2, 3)), T((2, 3)), 0.25), {}), ((T((2, 3)), T((3,)), 0.75), {}),
                ((T((3,)), T((2, 3)), T((2, 1))), {}), ((T((2, 3)), T((2, 3)), T(())), {}),
                ((T((3,)), T((3,)), T((3,), values=[0.0, 0.5, 1.0])), {}))),
    Op("addcmul", LINALG, ("AddcmulBackward0",), kwargs={"value": "float"},
       samples=(((T((2, 3)), T((2, 3)), T((2, 3))), {}), ((T((3,)), T((2, 1)), T((2, 3))), {"value": -0.5}),
                ((T(()), T((3,)), T((3,))), {"value": 2}))),
    Op("addcdiv", LINALG, ("AddcdivBackward0",), kwargs={"value": "float"}, domain=(REAL, REAL, NONZERO),
       samples=(((T((2, 3)), T((2, 3)), T((2, 3), domain=NONZERO)), {}),
                ((T((3,)), T((2, 1)), T((2, 3), domain=NONZERO)), {"value": -0.5}),
                ((T(()), T((3,)), T((3,), domain=POSITIVE)), {"value": 2}))),
    Op("where", INDEXING, ("WhereBackward0",), (FUNCTION,),
       samples=(((T((2, 3), "bool", [[True, False, True], [False, False, True]]), T((2, 3)), T((2, 3))), {}),
                ((T((3,), "bool", [True, False, True]), T((2, 3)), 0.5), {}),
                ((T((2, 1), "bool", [[True], [False]]), -1.0, T((3,))), {}),
                ((T((), "bool", True), T((2,)), T(())), {}))),
    # comparisons, logical and bitwise ops: bool (or integer) results, no gradient
    Op("eq", COMPARISON, (), ALL_FORMS, operator="==", differentiable=False,
       samples=(((T((2, 3)), T((3,))), {}), ((T((3,), values=[1.0, 2.0, 3.0]), 2), {}),
                ((T((3,), "int64", [1, 2, 3]), T((3,), values=[1.0, 2.5, 3.0])), {}))),
    Op("ne", COMPARISON, (), ALL_FORMS, operator="!=", differentiable=False,
       samples=(((T((2, 3)), T((3,))), {}), ((T((3,), values=[1.0, 2.0, 3.0]), 2), {}))),
    Op("lt", COMPARISON, (), ALL_FORMS, operator="<", differentiable=False,
       samples=(((T((2, 3)), T((3,))), {}), ((T((3,), values=[1.0, 2.0, 3.0]), 2), {}),
                ((T((2,), "bool", [True, False]), 0.5), {}))),
    Op("le", COMPARISON, (), ALL_FORMS, operator="<=", differentiable=False,
       samples=(((T((2, 3)), T((3,))), {}), ((T((3,), values=[1.0, 2.0, 3.0]), 2), {}))),
    Op("gt", COMPARISON, (), ALL_FORMS, operator=">", differentiable=False,
       samples=(((T((2, 3)), T((3,))), {}), ((T((3,), values=[1.0, 2.0, 3.0]), 2), {}))),
    Op("ge", COMPARISON, (), ALL_FORMS, operator=">=", differentiable=False,
       samples=(((T((2, 3)), T((3,))), {}), ((T((3,), values=[1.0, 2.0, 3.0]), 2), {}))),
    Op("logical_and", COMPARISON, (), differentiable=False,
       samples=(((T((2, 3), values=[[0.0, 1.0, -2.0], [0.0, 0.0, 3.0]]), T((3,), "bool", [True, False, True])), {}),)),
    Op("logical_or", COMPARISON, (), differentiable=False,
       samples=(((T((2, 3), values=[[0.0, 1.0, -2.0], [0.0, 0.0, 3.0]]), T((3,), "bool", [True, False, False])), {}),)),
    Op("logical_xor", COMPARISON, (), differentiable=False,
       samples=(((T((2, 3), values=[[0.0, 1.0, -2.0], [0.0, 0.0, 3.0]]), T((3,), "int64", [1, 0, 0])), {}),)),
    Op("logical_not", COMPARISON, (), differentiable=False,
       samples=(((T((3,), values=[0.0, -0.0, 2.0]),), {}), ((T((3,), "int64", [0, 1, -1]),), {}))),
    Op("isnan", COMPARISON, (), differentiable=False,
       samples=(((T((4,), values=[1.0, float("nan"), float("inf"), -float("inf")]),), {}),
                ((T((2,), "int64", [0, 1]),), {}))),
    Op("isinf", COMPARISON, (), differentiable=False,
       samples=(((T((4,), values=[1.0, float("nan"), float("inf"), -float("inf")]),), {}),
                ((T((2,), "int64", [0, 1]),), {}))),
    Op("isfinite", COMPARISON, (), differentiable=False,
       samples=(((T((4,), values=[1.0, float("nan"), float("inf"), -float("inf")]),), {}),
                ((T((2,), "bool", [True, False]),), {}))),
    Op("bitwise_and", COMPARISON, (), ALL_FORMS, operator="&", differentiable=False,
       samples=(((T((3,), "int64", [12, -7, 5]), T((3,), "int64", [10, 3, -1])), {}),
                ((T((2,), "bool", [True, False]), T((2, 1), "bool", [[True], [False]])), {}),
                ((T((3,), "int64", [12, -7, 5]), 6), {}), ((True, T((2,), "bool", [True, False])), {}))),
    Op("bitwise_or", COMPARISON, (), ALL_FORMS, operator="|", differentiable=False,
       samples=(((T((3,), "int64", [12, -7, 5]), T((3,), "int64", [10, 3, -1])), {}),
                ((T((2,), "bool", [True, False]), T((2, 1), "bool", [[True], [False]])), {}),
                ((T((2,), "bool", [True, False]), 2), {}))),
    Op("bitwise_xor", COMPARISON, (), ALL_FORMS, operator="^", differentiable=False,
       samples=(((T((3,), "int64", [12, -7, 5]), T((3,), "int64", [10, 3, -1])), {}),
                ((T((2,), "bool", [True, False]), T((2, 1), "bool", [[True], [False]])), {}))),
    Op("bitwise_not", COMPARISON, (), ALL_FORMS, operator="~", differentiable=False,
       samples=(((T((3,), "int64", [12, -7, 0]),), {}), ((T((2,), "bool", [True, False]),), {}))),
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
IMPLEMENTATIONS = ("_ops", "_ops_pointwise", "_ops_reduce", "_ops_shape", "_ops_index",
                   "_ops_linalg", "_ops_factory", "nn.functional")

BY_NAME: dict[str, Op] = {op.name: op for op in OPS}
