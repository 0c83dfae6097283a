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
    Op("add", BINARY, ("AddBackward0",), ALL_FORMS, operator="+", kwargs={"alpha": "float"}, inplace="add_"),
    Op("sub", BINARY, ("SubBackward0", "RsubBackward1"), ALL_FORMS, operator="-", kwargs={"alpha": "float"}, inplace="sub_"),
    Op("mul", BINARY, ("MulBackward0",), ALL_FORMS, operator="*", inplace="mul_"),
    Op("div", BINARY, ("DivBackward0", "ReciprocalBackward0", "DivBackward2"), ALL_FORMS, operator="/",
       kwargs={"rounding_mode": (None, "trunc", "floor")},
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
    Op("__setitem__", INPLACE, ("torch::autograd::CopySlices", "IndexPutBackward0"), (METHOD,)),
    # (end of engine/_ops_inplace.py)

    # ---- engine/_ops_convert.py ----------------------------------------------------------
    Op("to", SHAPE, ("ToCopyBackward0",), (METHOD,),
       samples=(((T((2, 3)),), {"dtype": "float64"}), ((T((3,)),), {"dtype": "float32"}),
                ((T((3,)),), {"dtype": "int64"}), ((T((3,)), "cpu"), {}))),
    Op("float", SHAPE, ("ToCopyBackward0",), (METHOD,), samples=(((T((2, 3)),), {}),)),
    Op("double", SHAPE, ("ToCopyBackward0",), (METHOD,), samples=(((T((2, 3)),), {}),)),
    Op("long", SHAPE, (), (METHOD,), differentiable=False, samples=(((T((3,), values=(1.5, -2.7, 3.0)),), {}),)),
    Op("bool", SHAPE, (), (METHOD,), differentiable=False, samples=(((T((3,), values=(0.0, -2.0, 0.5)),), {}),)),
    Op("int", SHAPE, (), (METHOD,), differentiable=False),   # int32: NotImplementedError
    # (end of engine/_ops_convert.py)

    # ---- engine/_ops_pointwise.py --------------------------------------------------------
    # elementwise unary, computed in floating point (integer and bool inputs give float32)
    Op("expm1", UNARY, ("Expm1Backward0",), inplace="expm1_"),
    Op("log2", UNARY, ("Log2Backward0",), domain=(POSITIVE,), inplace="log2_"),
    Op("log10", UNARY, ("Log10Backward0",), domain=(POSITIVE,), inplace="log10_"),
    Op("log1p", UNARY, ("Log1PBackward0",), domain=(POSITIVE,), inplace="log1p_"),
    Op("sqrt", UNARY, ("SqrtBackward0",), domain=(POSITIVE,), inplace="sqrt_"),
    Op("rsqrt", UNARY, ("RsqrtBackward0",), domain=(POSITIVE,), inplace="rsqrt_"),
    Op("reciprocal", UNARY, ("ReciprocalBackward0",), domain=(NONZERO,), inplace="reciprocal_"),
    Op("sin", UNARY, ("SinBackward0",), inplace="sin_"),
    Op("cos", UNARY, ("CosBackward0",), inplace="cos_"),
    Op("tan", UNARY, ("TanBackward0",),
       samples=(((T((2, 3), values=[[-1.2, -0.5, 0.0], [0.3, 0.9, 1.3]]),), {}), ((T(()),), {})), inplace="tan_"),
    Op("asin", UNARY, ("AsinBackward0",),
       samples=(((T((2, 3), values=[[-0.9, -0.5, 0.0], [0.25, 0.6, 0.95]]),), {}),
                ((T((), values=0.3),), {})), inplace="asin_"),
    Op("acos", UNARY, ("AcosBackward0",),
       samples=(((T((2, 3), values=[[-0.9, -0.5, 0.0], [0.25, 0.6, 0.95]]),), {}),
                ((T((), values=-0.3),), {})), inplace="acos_"),
    Op("atan", UNARY, ("AtanBackward0",), inplace="atan_"),
    Op("sinh", UNARY, ("SinhBackward0",), inplace="sinh_"),
    Op("cosh", UNARY, ("CoshBackward0",), inplace="cosh_"),
    Op("erf", UNARY, ("ErfBackward0",), inplace="erf_"),
    Op("square", UNARY, ("PowBackward0",), inplace="square_"),
    # elementwise unary keeping integer dtypes; the rounding ops have gradient 0
    # abs samples do not require grad: torch's second derivative of abs is a ZeroTensor, which
    # the conformance test cannot read; tests/engine/test_pointwise.py checks its gradients.
    Op("abs", UNARY, ("AbsBackward0",), ALL_FORMS, operator="abs", kinks=(0.0,),
       samples=(((T((2, 3), "float32"),), {}), ((T((), "float64"),), {}),
                ((T((5,), "float32", [-1.5, -0.0, 0.0, 0.5, 2.0]),), {}),
                ((T((3,), "int64", [-3, 0, 2]),), {})), inplace="abs_"),
    Op("sign", UNARY, ("SignBackward0",), kinks=(0.0,),
       samples=(((T((2, 3)),), {}), ((T((4,), values=[-1.5, -0.0, 0.0, 2.0]),), {})), inplace="sign_"),
    Op("floor", UNARY, ("FloorBackward0",),
       samples=(((T((2, 3)),), {}), ((T((4,), values=[-1.0, -0.5, 0.0, 2.0]),), {})), inplace="floor_"),
    Op("ceil", UNARY, ("CeilBackward0",),
       samples=(((T((2, 3)),), {}), ((T((4,), values=[-1.0, -0.5, 0.0, 2.0]),), {})), inplace="ceil_"),
    Op("trunc", UNARY, ("TruncBackward0",),
       samples=(((T((2, 3)),), {}), ((T((4,), values=[-1.5, -0.5, 0.5, 2.0]),), {})), inplace="trunc_"),
    Op("round", UNARY, ("RoundBackward0", "RoundBackward1"), kwargs={"decimals": (0, 1, 2, -1)},
       samples=(((T((2, 3)),), {}), ((T((5,), values=[-2.5, -0.5, 0.5, 1.5, 2.5]),), {}),
                ((T((4,), values=[1.2345, -0.125, 15.0, 0.0]),), {"decimals": 2}),
                ((T((3,), values=[1234.5, 15.0, 25.0]),), {"decimals": -1}),
                ((T(()),), {"decimals": 0})), inplace="round_"),
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
                ((T((2, 3)), T((2, 1)), None), {}), ((T((2, 3)), None, T(())), {})), inplace="clamp_"),
    Op("clamp_min", BINARY, ("ClampMinBackward0", "ClampMinBackward1"), kinks=(0.0,),
       samples=(((T((2, 3)), 0.0), {}), ((T((4,), values=[-1.0, 0.0, 0.5, 1.0]), 0.5), {}),
                ((T((2, 3)), T((3,))), {}), ((T((3,), values=[-1.0, 0.0, 1.0]), T((2, 1), values=[[0.0], [1.0]])), {})), inplace="clamp_min_"),
    Op("clamp_max", BINARY, ("ClampMaxBackward0", "ClampMaxBackward1"), kinks=(0.0,),
       samples=(((T((2, 3)), 0.0), {}), ((T((4,), values=[-1.0, 0.0, 0.5, 1.0]), 0.5), {}),
                ((T((2, 3)), T((3,))), {}), ((T((3,), values=[-1.0, 0.0, 1.0]), T((2, 1), values=[[0.0], [1.0]])), {})), inplace="clamp_max_"),
    Op("nan_to_num", UNARY, ("NanToNumBackward0",), kwargs={"nan": "float", "posinf": "float", "neginf": "float"},
       samples=(((T((2, 3)),), {}),
                ((T((5,), values=[float("nan"), float("inf"), -float("inf"), 1.5, -0.0]),), {}),
                ((T((4,), values=[float("nan"), float("inf"), -float("inf"), 1.0]),),
                 {"nan": 1.5, "posinf": 2.0, "neginf": -3.0}),
                ((T((3,), values=[float("nan"), float("inf"), 2.0]), 0.5), {})), inplace="nan_to_num_"),
    # elementwise binary, broadcasting; which side may be a Python number varies by op
    Op("floor_divide", BINARY, (), ALL_FORMS, operator="//", differentiable=False,
       samples=(((T((2, 3), "int64", [[7, -7, 0], [5, -5, 9]]), T((3,), "int64", [2, 3, -4])), {}),
                ((T((4,), "int64", [7, -7, 6, 0]), 3), {}), ((-7, T((3,), "int64", [2, -3, 4])), {}),
                ((T((5,), "float32", [7.0, -7.0, 1.0, -0.1, 5.0]), T((5,), "float32", [0.7, 2.0, 0.1, 2.0, 0.0])), {}),
                ((T((3,), "float64", [7.0, -7.0, 1.0]), 0.1), {})), inplace="floor_divide_"),
    Op("remainder", BINARY, ("RemainderBackward0", "RemainderBackward1", "torch::autograd::NotImplemented"),
       ALL_FORMS, operator="%", domain=(REAL, NONZERO),
       samples=(((T((3,)), T((3,), domain=NONZERO)), {}), ((T((2, 3)), T((3,), domain=NONZERO)), {}),
                ((T((2, 1)), T((1, 3), domain=NONZERO)), {}), ((T((3,)), 0.75), {}), ((T((2, 2)), -1.5), {}),
                ((T((4,), "int64", [7, -7, 7, -7]), T((4,), "int64", [3, 3, -3, -3])), {}),
                ((T((4,), "float64", [-0.0, 5.0, -5.0, 3.0]), T((4,), "float64", [2.0, float("inf"), float("inf"), 0.0])), {})), inplace="remainder_"),
    Op("fmod", BINARY, ("FmodBackward0", "FmodBackward1"), domain=(REAL, NONZERO),
       samples=(((T((3,)), T((3,), domain=NONZERO)), {}), ((T((2, 3)), T((3,), domain=NONZERO)), {}),
                ((T((2, 1)), T((1, 3), domain=NONZERO)), {}), ((T((3,)), 0.75), {}), ((T((2, 2)), -1.5), {}),
                ((T((4,), "int64", [7, -7, 7, -7]), T((4,), "int64", [3, 3, -3, -3])), {})), inplace="fmod_"),
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
                ((T((4,), values=[0.0, 1.0, -0.0, 1.0]), T((4,), values=[0.0, 0.0, -1.0, 1.0])), {})), inplace="atan2_"),
    Op("xlogy", BINARY, ("XlogyBackward0", "XlogyBackward1", "XlogyBackward2"), domain=(REAL, POSITIVE),
       kinks=(0.0,),
       samples=(((T((3,)), T((3,), domain=POSITIVE)), {}), ((T((2, 3)), T((3,), domain=POSITIVE)), {}),
                ((T((2, 1)), T((1, 3), domain=POSITIVE)), {}), ((T((3,)), 2.0), {}), ((1.5, T((2, 2), domain=POSITIVE)), {}),
                ((T((4,), values=[0.0, 0.0, 1.0, 2.0]), T((4,), values=[0.0, 2.0, 3.0, 0.5])), {}),
                ((T((2,), values=[0.0, 1.5]), 0.0), {}), ((T((2,), values=[0.0, 1.5]), -2.0), {})), inplace="xlogy_"),
    # ternary
    Op("lerp", LINALG, ("LerpBackward0", "LerpBackward1"), kwargs={"weight": "float"},
       samples=(((T((2, 3)), T((2, 3)), 0.25), {}), ((T((2, 3)), T((3,)), 0.75), {}),
                ((T((3,)), T((2, 3)), T((2, 1))), {}), ((T((2, 3)), T((2, 3)), T(())), {}),
                ((T((3,)), T((3,)), T((3,), values=[0.0, 0.5, 1.0])), {})), inplace="lerp_"),
    Op("addcmul", LINALG, ("AddcmulBackward0",), kwargs={"value": "float"},
       samples=(((T((2, 3)), T((2, 3)), T((2, 3))), {}), ((T((3,)), T((2, 1)), T((2, 3))), {"value": -0.5}),
                ((T(()), T((3,)), T((3,))), {"value": 2})), inplace="addcmul_"),
    Op("addcdiv", LINALG, ("AddcdivBackward0",), kwargs={"value": "float"}, domain=(REAL, REAL, NONZERO),
       samples=(((T((2, 3)), T((2, 3)), T((2, 3), domain=NONZERO)), {}),
                ((T((3,)), T((2, 1)), T((2, 3), domain=NONZERO)), {"value": -0.5}),
                ((T(()), T((3,)), T((3,), domain=POSITIVE)), {"value": 2})), inplace="addcdiv_"),
    Op("where", INDEXING, ("WhereBackward0",), (FUNCTION,),
       samples=(((T((2, 3), "bool", [[True, False, True], [False, False, True]]), T((2, 3)), T((2, 3))), {}),
                ((T((3,), "bool", [True, False, True]), T((2, 3)), 0.5), {}),
                ((T((2, 1), "bool", [[True], [False]]), -1.0, T((3,))), {}),
                ((T((), "bool", True), T((2,)), T(())), {}))),
    # comparisons, logical and bitwise ops: bool (or integer) results, no gradient
    Op("eq", COMPARISON, (), ALL_FORMS, operator="==", differentiable=False,
       samples=(((T((2, 3)), T((3,))), {}), ((T((3,), values=[1.0, 2.0, 3.0]), 2), {}),
                ((T((3,), "int64", [1, 2, 3]), T((3,), values=[1.0, 2.5, 3.0])), {})), inplace="eq_"),
    Op("ne", COMPARISON, (), ALL_FORMS, operator="!=", differentiable=False,
       samples=(((T((2, 3)), T((3,))), {}), ((T((3,), values=[1.0, 2.0, 3.0]), 2), {})), inplace="ne_"),
    Op("lt", COMPARISON, (), ALL_FORMS, operator="<", differentiable=False,
       samples=(((T((2, 3)), T((3,))), {}), ((T((3,), values=[1.0, 2.0, 3.0]), 2), {}),
                ((T((2,), "bool", [True, False]), 0.5), {})), inplace="lt_"),
    Op("le", COMPARISON, (), ALL_FORMS, operator="<=", differentiable=False,
       samples=(((T((2, 3)), T((3,))), {}), ((T((3,), values=[1.0, 2.0, 3.0]), 2), {})), inplace="le_"),
    Op("gt", COMPARISON, (), ALL_FORMS, operator=">", differentiable=False,
       samples=(((T((2, 3)), T((3,))), {}), ((T((3,), values=[1.0, 2.0, 3.0]), 2), {})), inplace="gt_"),
    Op("ge", COMPARISON, (), ALL_FORMS, operator=">=", differentiable=False,
       samples=(((T((2, 3)), T((3,))), {}), ((T((3,), values=[1.0, 2.0, 3.0]), 2), {})), inplace="ge_"),
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
                ((T((3,), "int64", [12, -7, 5]), 6), {}), ((True, T((2,), "bool", [True, False])), {})), inplace="bitwise_and_"),
    Op("bitwise_or", COMPARISON, (), ALL_FORMS, operator="|", differentiable=False,
       samples=(((T((3,), "int64", [12, -7, 5]), T((3,), "int64", [10, 3, -1])), {}),
                ((T((2,), "bool", [True, False]), T((2, 1), "bool", [[True], [False]])), {}),
                ((T((2,), "bool", [True, False]), 2), {})), inplace="bitwise_or_"),
    Op("bitwise_xor", COMPARISON, (), ALL_FORMS, operator="^", differentiable=False,
       samples=(((T((3,), "int64", [12, -7, 5]), T((3,), "int64", [10, 3, -1])), {}),
                ((T((2,), "bool", [True, False]), T((2, 1), "bool", [[True], [False]])), {})), inplace="bitwise_xor_"),
    Op("bitwise_not", COMPARISON, (), ALL_FORMS, operator="~", differentiable=False,
       samples=(((T((3,), "int64", [12, -7, 0]),), {}), ((T((2,), "bool", [True, False]),), {})), inplace="bitwise_not_"),
    # (end of engine/_ops_pointwise.py)

    # ---- engine/_ops_reduce.py -----------------------------------------------------------
    # Samples pin the conventional points with `values=`: ties (the gradient is shared, or
    # goes to the first index), zeros (prod, cumprod, norm), correction >= N (var, std).
    Op("prod", REDUCTION, ("ProdBackward0", "ProdBackward1"), kwargs={"dim": "dim", "keepdim": "bool"},
       dtypes=("float32", "float64", "int64"), samples=(
           ((T((2, 3, 4)),), {}), ((T((2, 3, 4)),), {"dim": 1}), ((T((2, 3, 4)),), {"dim": -1, "keepdim": True}),
           ((T(()),), {}), ((T(()),), {"dim": 0}),
           ((T((3,), values=[2.0, 0.0, 3.0]),), {}),                # one zero
           ((T((4,), values=[2.0, 0.0, -1.5, 0.0]),), {}),          # several zeros
           ((T((2, 3), values=[[2.0, 0.0, 3.0], [0.0, 0.0, 1.5]]),), {"dim": 1}),
           ((T((2, 3), values=[[2.0, 0.0, 3.0], [0.0, 0.0, 1.5]]),), {"dim": 0, "keepdim": True}))),
    *(Op(name, REDUCTION, (node,), kwargs={"dim": "dims", "keepdim": "bool"},
         dtypes=("float32", "float64", "int64"), samples=tuple(
             ((T((2, 3, 4)),), kw) for kw in ({}, {"dim": 0}, {"dim": -1, "keepdim": True}, {"dim": (0, 2)},
                                              {"dim": [1]}, {"dim": ()})) + ((
             (T(()),), {}), ((T((2,), values=[0.0, -0.0]),), {})) + tuple(
             ((T((2, 3), values=[[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]),), kw)      # ties
             for kw in ({}, {"dim": 1}, {"dim": 0, "keepdim": True})))
      for name, node in (("amax", "AmaxBackward0"), ("amin", "AminBackward0"))),
    # max / min: the full reduction, or (values, indices) along one dim; max(x, other) is maximum
    *(Op(name, INDEXING, nodes, kwargs={"dim": "dim", "keepdim": "bool"},
         dtypes=("float32", "float64", "int64"), samples=(
             ((T((2, 3, 4)),), {}), ((T((2, 3, 4)), 1), {}), ((T((2, 3, 4)),), {"dim": -1, "keepdim": True}),
             ((T(()),), {}), ((T(()), 0), {}), ((T(()), -1, True), {})) + tuple(
             ((T((2, 3), values=[[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]), *args), kw)   # ties
             for args, kw in (((), {}), ((1,), {}), ((), {"dim": 0, "keepdim": True}))))
      for name, nodes in (("max", ("MaxBackward0", "MaxBackward1")), ("min", ("MinBackward0", "MinBackward1")))),
    *(Op(name, INDEXING, (), kwargs={"dim": "dim", "keepdim": "bool"}, differentiable=False,
         dtypes=("float32", "float64", "int64"), samples=(
             ((T((2, 3, 4)),), {}), ((T((2, 3, 4)), 1), {}), ((T((2, 3, 4)),), {"dim": -1, "keepdim": True}),
             ((T((2, 3, 4)),), {"keepdim": True}), ((T(()),), {}), ((T(()), 0), {})) + tuple(
             ((T((2, 3), values=[[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]), *args), kw)   # ties
             for args, kw in (((), {}), ((1,), {}), ((), {"dim": 0}))))
      for name in ("argmax", "argmin")),
    *(Op(name, REDUCTION, (node,), kwargs={"dim": "dims", "keepdim": "bool", "correction": (0, 1, 2)},
         samples=tuple(((T((2, 3, 4)),), kw) for kw in (
             {}, {"dim": 0}, {"dim": -1, "keepdim": True}, {"dim": (0, 2)}, {"dim": [1]}, {"correction": 0},
             {"dim": (0, 2), "correction": 2, "keepdim": True}, {"dim": 1, "unbiased": False, "keepdim": True})) + (
             ((T(()),), {}), ((T((2, 3, 4)), 1, False), {}), ((T((2, 3)), False), {}),   # legacy `unbiased`
             ((T((2, 3)),), {"dim": 1, "correction": 3}),                                # correction >= N
             ((T((1, 3)),), {"correction": 3}),
             ((T((2, 3), values=[[1.0, 1.0, 1.0], [0.0, 1.0, 2.0]]),), {"dim": 1})))     # a constant row
      for name, node in (("var", "VarBackward0"), ("std", "StdBackward0"))),
    Op("logsumexp", NN, ("LogsumexpBackward0",), kwargs={"dim": "dims", "keepdim": "bool"}, samples=(
        ((T((2, 3, 4)), 1), {}), ((T((2, 3, 4)),), {"dim": (0, 2), "keepdim": True}), ((T((2, 3, 4)), -1), {}),
        ((T(()), 0), {}), ((T((2, 3, 4)), ()), {"keepdim": True}),
        ((T((2, 3), values=[[float("-inf"), 1.0, 2.0], [100.0, 101.0, 100.0]]), 1), {}))),
    # torch.norm computes linalg.vector_norm for every p but 'nuc'. No samples for p = 1 and
    # +-inf: torch's second gradient there is a ZeroTensor, which the conformance test cannot
    # read; tests/engine/test_reduce.py covers them.
    Op("norm", LINALG, ("LinalgVectorNormBackward0",),
       kwargs={"p": (1, 2, 3, 1.5, 0.5, float("inf"), float("-inf"), "fro"), "dim": "dims", "keepdim": "bool"},
       samples=tuple(((T((2, 3, 4)),), kw) for kw in (
           {}, {"p": 3, "dim": 1}, {"p": "fro", "dim": -1, "keepdim": True}, {"p": 0.5, "dim": [0, 1]},
           {"p": 1.5, "dim": 2}, {"p": 0})) + (((T(()),), {}),) + tuple(
           ((T((2, 3), values=[[0.0, 0.0, 0.0], [1.0, -2.0, 2.0]]),), {"p": p, "dim": 1})   # a zero row
           for p in (2, 3, 1.5, 0.5, 0))),
    *(Op(name, REDUCTION, (), kwargs={"dim": "dims", "keepdim": "bool"}, differentiable=False,
         dtypes=("float32", "int64", "bool"), samples=tuple(((T((2, 3, 4)),), kw) for kw in (
             {}, {"dim": 0}, {"dim": -1, "keepdim": True}, {"dim": (0, 2)}, {"dim": [1]})) + (
             ((T(()),), {}),) + tuple(((T((2, 3), values=[[0.0, 1.0, 2.0], [1.0, 1.0, -1.0]]),), kw)
                                      for kw in ({}, {"dim": 1}, {"dim": 0, "keepdim": True}, {"dim": ()})))
      for name in ("all", "any")),
    # cumulative ops: `dim` is required and the result has the input's shape
    *(Op(name, SHAPE, (node,), kwargs={"dim": "dim"}, dtypes=("float32", "float64", "int64"), samples=(
        ((T((2, 3, 4)), 1), {}), ((T((2, 3, 4)),), {"dim": -1}), ((T(()), 0), {}), ((T((2, 1)), 1), {}),
        ((T((2, 4), values=[[2.0, 0.0, 3.0, 1.5], [0.0, 0.0, -1.0, 2.0]]), 1), {}),    # zeros
        ((T((2, 4), values=[[2.0, 0.0, 3.0, 1.5], [0.0, 0.0, -1.0, 2.0]]), 0), {})))
      for name, node in (("cumsum", "CumsumBackward0"), ("cumprod", "CumprodBackward0"))),
    # (end of engine/_ops_reduce.py)

    # ---- engine/_ops_shape.py ------------------------------------------------------------
    # reshaping (node names of reshape/flatten/contiguous follow the input's memory layout)
    Op("reshape", SHAPE, ("ViewBackward0", "ReshapeAliasBackward0", "UnsafeViewBackward0"),
       kwargs={"shape": "shape"},
       samples=(((T((2, 3)), (3, 2)), {}), ((T((2, 3)), (-1,)), {}), ((T((2, 3)), (2, 1, 3)), {}),
                ((T((2, 3)), [3, -1]), {}), ((T(()), (1, 1)), {}), ((T((1,)), ()), {}),
                ((T((2, 3)),), {"shape": (6, 1)}))),
    Op("view", SHAPE, ("ViewBackward0",), (METHOD,), kwargs={"size": "shape"},
       samples=(((T((2, 3)), 3, 2), {}), ((T((2, 3)), (-1,)), {}), ((T((4,)), 2, -1), {}),
                ((T(()), 1), {}), ((T((2, 3)),), {"size": (1, 6)}))),
    Op("flatten", SHAPE, ("ViewBackward0", "ReshapeAliasBackward0", "UnsafeViewBackward0"),
       kwargs={"start_dim": "dim", "end_dim": "dim"},
       samples=(((T((2, 3, 4)),), {}), ((T((2, 3, 4)), 1), {}), ((T((2, 3, 4)),), {"start_dim": 0, "end_dim": 1}),
                ((T((2, 3)), 1), {}), ((T(()),), {}), ((T((3,)),), {}))),
    Op("unflatten", SHAPE, ("ViewBackward0",), kwargs={"dim": "dim", "sizes": "shape"},
       samples=(((T((2, 6)), 1, (2, 3)), {}), ((T((6,)), 0, (-1, 2)), {}), ((T((2, 3)), -1, [3, 1]), {}),
                ((T((6, 2)),), {"dim": 0, "sizes": (3, 1, 2)}))),
    Op("squeeze", SHAPE, ("SqueezeBackward0", "SqueezeBackward1", "SqueezeBackward2"), kwargs={"dim": "dims"},
       samples=(((T((2, 1, 3, 1)),), {}), ((T((2, 1, 3, 1)), 1), {}), ((T((2, 1, 3, 1)), 0), {}),
                ((T((2, 1, 3, 1)), (1, -1)), {}), ((T((2, 1, 3, 1)),), {"dim": [0, 1]}), ((T(()),), {}),
                ((T(()), 0), {}), ((T((1, 2, 1)), ()), {}))),
    Op("unsqueeze", SHAPE, ("UnsqueezeBackward0",), kwargs={"dim": "dim"},
       samples=(((T((2, 3)), 0), {}), ((T((2, 3)), -1), {}), ((T((2, 3)),), {"dim": 1}), ((T(()), 0), {}))),
    # dimension orders
    Op("transpose", SHAPE, ("TransposeBackward0",), kwargs={"dim0": "dim", "dim1": "dim"}, aliases=("swapdims",),
       samples=(((T((2, 3)), 0, 1), {}), ((T((2, 3, 4)), -1, 0), {}), ((T((2, 3)), 1, 1), {}),
                ((T((2, 3, 4)),), {"dim0": 1, "dim1": 2}), ((T(()), 0, -1), {}))),
    Op("swapaxes", SHAPE, ("TransposeBackward0",), kwargs={"axis0": "dim", "axis1": "dim"},
       samples=(((T((2, 3)), 0, 1), {}), ((T((2, 3, 4)),), {"axis0": 2, "axis1": 0}))),
    Op("permute", SHAPE, ("PermuteBackward0",), kwargs={"dims": "dims"},
       samples=(((T((2, 3, 4)), (2, 0, 1)), {}), ((T((2, 3, 4)), (1, -1, 0)), {}), ((T((2, 3)), [1, 0]), {}),
                ((T(()), ()), {}), ((T((2, 3, 4)),), {"dims": (0, 2, 1)}))),
    Op("t", SHAPE, ("TBackward0",),
       samples=(((T((2, 3)),), {}), ((T((3,)),), {}), ((T(()),), {}))),
    Op("T", SHAPE, ("PermuteBackward0",), (PROPERTY,),
       samples=(((T((2, 3)),), {}), ((T((2, 3, 4)),), {}), ((T((3,)),), {}))),
    Op("mT", SHAPE, ("TransposeBackward0",), (PROPERTY,),
       samples=(((T((2, 3)),), {}), ((T((2, 3, 4)),), {}))),
    Op("H", SHAPE, ("TransposeBackward0",), (PROPERTY,), samples=(((T((2, 3)),), {}),)),
    Op("mH", SHAPE, ("TransposeBackward0",), (PROPERTY,), samples=(((T((2, 3)),), {}), ((T((4, 2, 3)),), {}))),
    Op("adjoint", SHAPE, ("TransposeBackward0",), samples=(((T((2, 3)),), {}), ((T((4, 2, 3)),), {}))),
    # broadcasting and repetition
    Op("expand", SHAPE, ("ExpandBackward0",), (METHOD,), kwargs={"size": "shape"},
       samples=(((T((3, 1)), 2, 3, 4), {}), ((T((3, 1)), (-1, 4)), {}), ((T(()), 2, 2), {}),
                ((T((2, 3)), 2, 3), {}), ((T((1, 3)),), {"size": [2, 1, -1]}))),
    Op("expand_as", SHAPE, ("ExpandBackward0",), (METHOD,),
       samples=(((T((3,)), T((2, 3), dtype="float32")), {}), ((T((2, 1)), T((4, 2, 3), dtype="int64", values=[[[0] * 3] * 2] * 4)), {}))),
    Op("broadcast_to", SHAPE, ("ExpandBackward0",), kwargs={"size": "shape"},
       samples=(((T((3,)), (2, 3)), {}), ((T((2, 1)), (3, -1, 4)), {}), ((T(()),), {"size": (3,)}))),
    Op("repeat", SHAPE, ("RepeatBackward0",), (METHOD,), kwargs={"repeats": "shape"},
       samples=(((T((2, 3)), 2, 1), {}), ((T((2, 3)), (2, 1, 3)), {}), ((T(()), 2, 3), {}),
                ((T((2, 3)), 1, 1, 1), {}), ((T((3,)),), {"repeats": [2, 2]}))),
    # reordering and masking copies
    Op("flip", SHAPE, ("FlipBackward0",), kwargs={"dims": "dims"},
       samples=(((T((2, 3)), (0,)), {}), ((T((2, 3, 4)), [0, -1]), {}), ((T((2, 3)), ()), {}),
                ((T(()), (0,)), {}), ((T((2, 3)),), {"dims": (1,)}))),
    Op("roll", SHAPE, ("RollBackward0",), kwargs={"shifts": "int", "dims": "dims"},
       samples=(((T((2, 3)), 1), {}), ((T((2, 3)), -4, 1), {}), ((T((2, 3)), (1, 2), (0, 1)), {}),
                ((T((2, 3, 4)),), {"shifts": [2], "dims": [-1]}), ((T(()), 3), {}))),
    Op("tril", SHAPE, ("TrilBackward0",), kwargs={"diagonal": "int"},
       samples=(((T((3, 4)),), {}), ((T((3, 4)), 1), {}), ((T((2, 3, 3)),), {"diagonal": -1}),
                ((T((2, 3)),), {"diagonal": 5})), inplace="tril_"),
    Op("triu", SHAPE, ("TriuBackward0",), kwargs={"diagonal": "int"},
       samples=(((T((3, 4)),), {}), ((T((3, 4)), 1), {}), ((T((2, 3, 3)),), {"diagonal": -1}),
                ((T((2, 3)),), {"diagonal": -5})), inplace="triu_"),
    Op("diagonal", SHAPE, ("DiagonalBackward0",), kwargs={"offset": "int", "dim1": "dim", "dim2": "dim"},
       samples=(((T((3, 4)),), {}), ((T((3, 4)), 1), {}), ((T((3, 4)), -2), {}), ((T((3, 4)), 7), {}),
                ((T((2, 3, 4)),), {"offset": 1, "dim1": 2, "dim2": 0}), ((T((2, 3, 4)), 0, -1, 1), {}))),
    Op("narrow", SHAPE, ("SliceBackward0",), kwargs={"dim": "dim", "start": "int", "length": "int"},
       samples=(((T((2, 5)), 1, 1, 3), {}), ((T((4, 3)), 0, -2, 2), {}), ((T((2, 3)), -1, 3, 0), {}),
                ((T((4, 3)),), {"dim": 0, "start": 0, "length": 4}))),
    # copies
    Op("contiguous", SHAPE, ("CloneBackward0",), (METHOD,), samples=(((T((2, 3)),), {}),)),
    Op("clone", SHAPE, ("CloneBackward0",), samples=(((T((2, 3)),), {}), ((T(()),), {}))),
    # joining
    Op("cat", JOIN, ("CatBackward0",), (FUNCTION,), kwargs={"dim": "dim"}, aliases=("concat", "concatenate"),
       samples=((([T((2, 3)), T((1, 3))],), {}), (((T((2, 3)), T((2, 2)), T((2, 1))), 1), {}),
                (([T((2, 3)), T((2, 3), dtype="int64", values=[[1, 2, 3], [4, 5, 6]])],), {"dim": -1}),
                (([T((2, 3)), T((2, 3), dtype="float64")],), {}), (([T((2, 3)), T((0,))],), {"dim": 1}),
                (([T((2,))],), {}), (([T((2, 3))] * 2,), {"axis": 0}))),
    Op("stack", JOIN, ("StackBackward0",), (FUNCTION,), kwargs={"dim": "dim"},
       samples=((([T((2, 3)), T((2, 3))],), {}), (((T((2, 3)), T((2, 3)), T((2, 3))), 2), {}),
                (([T(()), T(())],), {}), (([T((3,)), T((3,), dtype="int64", values=[1, 2, 3])],), {"dim": -1}),
                (([T((2,)), T((2,), dtype="float64")],), {"axis": 1}))),
    # splitting (one node per output; torch shares one node among them)
    Op("split", JOIN, ("SplitBackward0", "SplitWithSizesBackward0"), kwargs={"split_size_or_sections": "int", "dim": "dim"},
       samples=(((T((5, 2)), 2), {}), ((T((2, 5)), [1, 4], 1), {}), ((T((2, 3)), 3, -1), {}),
                ((T((4,)), (1, 0, 3)), {}), ((T((2, 3)),), {"split_size_or_sections": 1, "dim": 1}))),
    Op("split_with_sizes", JOIN, ("SplitWithSizesBackward0",), kwargs={"split_sizes": "shape", "dim": "dim"},
       samples=(((T((5, 2)), [2, 3]), {}), ((T((2, 5)), (1, 1, 3), -1), {}))),
    Op("chunk", JOIN, ("SplitBackward0", "SplitWithSizesBackward0"), kwargs={"chunks": "int", "dim": "dim"},
       samples=(((T((5,)), 4), {}), ((T((2, 6)), 3, 1), {}), ((T((3, 2)), 5), {}),
                ((T((2, 4)),), {"chunks": 2, "dim": -1}), ((T((0,)), 2), {}))),
    Op("unbind", JOIN, ("UnbindBackward0",), kwargs={"dim": "dim"},
       samples=(((T((2, 3)),), {}), ((T((2, 3)), 1), {}), ((T((2, 3, 4)),), {"dim": -1}), ((T((1,)),), {}))),
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
       ), inplace="scatter_"),
    Op("scatter_add", INDEXING, ("ScatterAddBackward0",), dtypes=("float32", "float64", "int64"),
       samples=(
           ((T((3, 4)), 1, T((3, 3), "int64", [[0, 0, 1], [3, 3, 3], [2, 0, 2]]), T((3, 3))), {}),
           ((T((3, 4)), 0, T((2, 4), "int64", [[0, 1, 2, 0], [0, 1, 2, 0]]), T((2, 4))), {}),
           ((T((2, 3, 2)), -1, T((2, 3, 2), "int64", [[[1, 1], [0, 0], [1, 0]]] * 2), T((2, 3, 2))), {}),
           ((T((4,)), 0, T((), "int64", 3), T(())), {}),
       ), inplace="scatter_add_"),
    Op("masked_fill", INDEXING, ("MaskedFillBackward0", "MaskedFillBackward1"),
       samples=(
           ((T((3, 4)), T((3, 4), "bool", [[True, False, True, False], [False] * 4, [True] * 4]), 1.5), {}),
           ((T((3, 4)), T((4,), "bool", [True, False, False, True]), T(())), {}),
           ((T((4,)), T((3, 4), "bool", [[True, False, True, False], [False] * 4, [True] * 4]), -2), {}),
           ((T((2, 3)), T((2, 1), "bool", [[True], [False]]), T((), "float64", 0.25)), {}),
           ((T((2, 3)), T((2, 3), "bool", [[True, False, True], [False, True, False]]), float("nan")), {}),
           ((T(()), T((), "bool", True), 0.0), {}),
       ), inplace="masked_fill_"),
    Op("take", INDEXING, ("TakeBackward0",), dtypes=("float32", "float64", "int64"),
       samples=(
           ((T((3, 4)), T((4,), "int64", [0, 11, -1, 11])), {}),
           ((T((3, 4)), T((2, 2), "int64", [[5, 5], [-12, 0]])), {}),
           ((T((3, 4)), T((), "int64", 5)), {}),
           ((T(()), T((2,), "int64", [0, -1])), {}),
       )),
    # (end of engine/_ops_index.py)

    # ---- engine/_ops_linalg.py -----------------------------------------------------------
    Op("mm", LINALG, ("MmBackward0",),
       samples=(((T((2, 3)), T((3, 4))), {}), ((T((1, 3)), T((3, 1))), {}), ((T((3, 2)), T((2, 2))), {}))),
    Op("bmm", LINALG, ("BmmBackward0",),
       samples=(((T((2, 2, 3)), T((2, 3, 4))), {}), ((T((1, 3, 2)), T((1, 2, 1))), {}))),
    Op("mv", LINALG, ("MvBackward0",),
       samples=(((T((2, 3)), T((3,))), {}), ((T((1, 4)), T((4,))), {}))),
    Op("dot", LINALG, ("DotBackward0",),
       samples=(((T((3,)), T((3,))), {}), ((T((1,)), T((1,))), {}),
                ((T((3,), values=[0.0, -0.0, 2.0]), T((3,), values=[1.0, 3.0, 0.0])), {}))),
    # torch composes outer as input.reshape(-1, 1) * vec2, promoting dtypes like mul.
    Op("outer", LINALG, ("MulBackward0",),
       samples=(((T((3,)), T((4,))), {}), ((T((1,)), T((2,))), {}), ((T((2,)), T((3,), dtype="int64", values=[1, -2, 0])), {}))),
    Op("ger", LINALG, ("MulBackward0",), samples=(((T((3,)), T((2,))), {}),)),
    # einsum's top node is the last node of its composition: a view or sum dropping the contracted
    # dims, the final permute, or mul when nothing is contracted.
    Op("einsum", LINALG, ("ViewBackward0", "PermuteBackward0", "SumBackward1", "MulBackward0"), forms=(FUNCTION,),
       samples=((("ij,jk->ik", T((2, 3)), T((3, 4))), {}),
                (("ij,jk", T((2, 3)), T((3, 4))), {}),          # implicit output
                (("ij,kj->ki", T((2, 3)), T((4, 3))), {}),
                (("bij,bjk->bik", T((2, 2, 3)), T((2, 3, 4))), {}),
                (("...ij,...jk->...ik", T((2, 1, 2, 3)), T((3, 3, 4))), {}),   # broadcast batch dims
                (("i,j->ij", T((3,)), T((2,))), {}),
                (("ij,ij->ij", T((2, 3)), T((2, 3))), {}),
                (("ij,i->j", T((1, 3)), T((4,))), {}),          # size-1 label broadcast and summed early
                (("ii->i", T((3, 3))), {}),                      # diagonal
                (("ii", T((3, 3))), {}),                         # trace
                (("bii->b", T((2, 3, 3))), {}),
                (("iji->j", T((2, 3, 2))), {}),
                (("ij->ji", T((2, 3))), {}),
                (("ij->", T((2, 3))), {}),
                (("i...->...", T((2, 3, 4))), {}),
                (("ij,jk,kl->il", T((2, 3)), T((3, 4)), T((4, 2))), {}),
                (("ij,jk", [T((2, 3)), T((3, 2))]), {}),        # operands as one list
                ((T((2, 3)), [0, 1], T((3, 2)), [1, 2], [0, 2]), {}),   # sublist format
                ((",->", T(()), T(())), {}))),
    Op("trace", LINALG, ("TraceBackward0",),
       samples=(((T((3, 3)),), {}), ((T((2, 4)),), {}), ((T((4, 2)),), {}), ((T((1, 1)),), {}),
                ((T((2, 2), dtype="int64", values=[[1, 2], [3, 4]]),), {}))),
    # (end of engine/_ops_linalg.py)

    # ---- engine/_ops_factory.py ----------------------------------------------------------
    # Factories make leaves and record no node. Sample kwargs name dtypes by string ("int64");
    # ops without tensor arguments run once (dtypes=("float32",)): the dtype under test is unused.
    Op("zeros", FACTORY, (), forms=(FUNCTION,), differentiable=False, dtypes=("float32",),
       samples=(((2, 3), {}), (((2, 3),), {}), (([],), {}), ((0,), {}), ((2, True), {}),
                ((2,), {"dtype": "int64"}), ((2, 2), {"dtype": "bool"}), ((3,), {"dtype": "float64"}),
                ((3,), {"requires_grad": True}))),
    Op("ones", FACTORY, (), forms=(FUNCTION,), differentiable=False, dtypes=("float32",),
       samples=(((2, 3), {}), (([2, 1],), {}), (((),), {}),
                ((2,), {"dtype": "int64"}), ((2,), {"dtype": "bool"}), ((2,), {"dtype": "float64", "requires_grad": True}))),
    Op("full", FACTORY, (), forms=(FUNCTION,), differentiable=False, dtypes=("float32",),
       samples=((((2, 3), 1.5), {}), (((2,), 1), {}), (((2,), True), {}), (((), 2), {}), (((2,), float("nan")), {}),
                (((2,), 1.5), {"dtype": "int64"}), (((2,), -1), {"dtype": "bool"}), (((2,), False), {"dtype": "float32"}),
                (((2, 2), 1), {"dtype": "float64", "requires_grad": True}))),
    Op("zeros_like", FACTORY, (), forms=(FUNCTION,), differentiable=False,
       samples=(((T((2, 3)),), {}), ((T(()),), {}), ((T((2, 3)),), {"dtype": "int64"}),
                ((T((2,), dtype="int64", values=[1, 2]),), {}), ((T((2,)),), {"requires_grad": True}))),
    Op("ones_like", FACTORY, (), forms=(FUNCTION,), differentiable=False,
       samples=(((T((2, 3)),), {}), ((T(()),), {}), ((T((2, 3)),), {"dtype": "bool"}),
                ((T((2,), dtype="int64", values=[1, 2]),), {}))),
    Op("full_like", FACTORY, (), forms=(FUNCTION,), differentiable=False,
       samples=(((T((2, 3)), 2), {}), ((T((2,), dtype="int64", values=[1, 2]), 2.7), {}),
                ((T((2,), dtype="bool", values=[True, False]), 2), {}), ((T((2,)), 1.5), {"dtype": "float64"}),
                ((T(()), -0.5), {"requires_grad": True}))),
    Op("new_zeros", FACTORY, (), forms=(METHOD,), differentiable=False,
       samples=(((T((2,)), 2, 3), {}), ((T((2,)), (3,)), {"dtype": "int64"}),
                ((T((2,), dtype="int64", values=[1, 2]), 2), {}))),
    Op("new_ones", FACTORY, (), forms=(METHOD,), differentiable=False,
       samples=(((T((2,)), 2, 3), {}), ((T((2,), dtype="int64", values=[1, 2]), [2]), {}),
                ((T(()), ()), {"requires_grad": True}))),
    Op("new_full", FACTORY, (), forms=(METHOD,), differentiable=False,
       samples=(((T((2,)), (2, 2), 3), {}), ((T((2,), dtype="int64", values=[1, 2]), (3,), 2.5), {}),
                ((T((2,)), (2,), 1), {"dtype": "int64"}))),
    Op("eye", FACTORY, (), forms=(FUNCTION,), differentiable=False, dtypes=("float32",),
       samples=(((3,), {}), ((2, 3), {}), ((3, 2), {}), ((0,), {}), ((3, 0), {}), ((3,), {"dtype": "int64"}),
                ((2,), {"dtype": "bool"}), ((2,), {"m": 4, "dtype": "float64"}))),
    Op("arange", FACTORY, (), forms=(FUNCTION,), differentiable=False, dtypes=("float32",),
       samples=(((5,), {}), ((5.0,), {}), ((0,), {}), ((1.5,), {}), ((1, 5, 2), {}), ((10, 0, -3), {}),
                ((0, 1, 0.1), {}), ((0, 1, 0.3), {}), ((1, 2.5, 0.5), {}), ((-0.5, 0.6, 0.25), {}),
                ((2.5, 0.5, -1), {}), ((1, 2, 0.1), {"dtype": "float64"}), ((0.5, 3.7, 1), {"dtype": "int64"}),
                ((0, 10, 2.5), {"dtype": "int64"}), ((5,), {"dtype": "float64", "requires_grad": True}))),
    Op("linspace", FACTORY, (), forms=(FUNCTION,), differentiable=False, dtypes=("float32",),
       samples=(((0, 1, 5), {}), ((0.1, 1.7, 6), {}), ((1, 0, 7), {}), ((2, 2, 3), {}), ((0, 1, 1), {}),
                ((0, 1, 0), {}), ((-3.5, 12.25, 11), {}), ((0, 1), {"steps": 7, "dtype": "float64"}),
                ((0, 10, 5), {"dtype": "int64"}), ((-7, 0, 4), {"dtype": "int64"}),
                ((-3, 7, 6), {"dtype": "int64"}), ((0, 1, 3), {"requires_grad": True}))),
    # Random factories: no samples (the engine's numbers are not torch's); tests/engine/test_factory.py.
    Op("rand", FACTORY, (), forms=(FUNCTION,), differentiable=False),
    Op("randn", FACTORY, (), forms=(FUNCTION,), differentiable=False),
    Op("randint", FACTORY, (), forms=(FUNCTION,), differentiable=False),
    Op("manual_seed", FACTORY, (), forms=(FUNCTION,), differentiable=False),
    # (end of engine/_ops_factory.py)

    # ---- engine/nn/functional.py ---------------------------------------------------------
    # Loss weights use dtype="no_grad" (the dtype under test, not requiring grad): torch
    # refuses to differentiate them. Float targets require grad: torch differentiates them.
    Op("nn.functional.relu", NN, ("ReluBackward0",), (FUNCTION,), kinks=(0.0,), kwargs={"inplace": (False,)},
       samples=(((T((2, 3), values=[[-1.0, 0.0, 2.0], [0.5, -0.0, 3.0]]),), {}),
                ((T(()),), {}), ((T((4,)),), {"inplace": False}))),
    Op("nn.functional.leaky_relu", NN, ("LeakyReluBackward0",), (FUNCTION,), kinks=(0.0,),
       kwargs={"negative_slope": "float", "inplace": (False,)},
       samples=(((T((2, 3), values=[[-1.0, 0.0, 2.0], [0.5, -0.5, 3.0]]),), {}),
                ((T((2, 3)),), {"negative_slope": 0.2}), ((T(()), 0.3), {}))),
    Op("nn.functional.elu", NN, ("EluBackward0",), (FUNCTION,), kinks=(0.0,),
       kwargs={"alpha": "float", "inplace": (False,)},
       samples=(((T((2, 3), values=[[-1.0, 0.0, 2.0], [0.5, -2.5, 3.0]]),), {}),
                ((T((2, 3)),), {"alpha": 2.0}), ((T(()),), {}))),
    Op("nn.functional.gelu", NN, ("GeluBackward0",), (FUNCTION,), kwargs={"approximate": ("none", "tanh")},
       samples=(((T((2, 3)),), {}), ((T((2, 3)),), {"approximate": "tanh"}),
                ((T((4,), values=[0.0, -3.0, 5.0, 0.1]),), {}), ((T(()),), {"approximate": "tanh"}))),
    Op("nn.functional.silu", NN, ("SiluBackward0",), (FUNCTION,), kwargs={"inplace": (False,)},
       samples=(((T((2, 3)),), {}), ((T(()),), {}), ((T((3,), values=[0.0, -30.0, 30.0]),), {}))),
    Op("nn.functional.softplus", NN, ("SoftplusBackward0",), (FUNCTION,),
       kwargs={"beta": "float", "threshold": "float"},
       samples=(((T((2, 3)),), {}), ((T((2, 3)),), {"beta": 2.0}),
                # beta * x at, below and above the threshold
                ((T((4,), values=[1.0, 0.5, 1.5, -1.0]),), {"beta": 2.0, "threshold": 2.0}),
                ((T(()), 0.5, 1.0), {}))),
    Op("nn.functional.hardtanh", NN, ("HardtanhBackward0",), (FUNCTION,), kinks=(-1.0, 1.0),
       kwargs={"min_val": "float", "max_val": "float", "inplace": (False,)},
       samples=(((T((2, 3), values=[[-1.0, 1.0, 0.5], [-2.0, 2.0, 0.0]]),), {}),
                ((T((4,), values=[-2.0, 0.5, 0.25, 1.0]),), {"min_val": -2.0, "max_val": 0.5}),
                ((T(()),), {}))),
    Op("nn.functional.softmax", NN, ("SoftmaxBackward0",), (FUNCTION,), kwargs={"dim": "dim"},
       samples=(((T((2, 3)),), {"dim": 1}), ((T((2, 3, 4)), 0), {}), ((T((2, 3)),), {"dim": -1}),
                ((T((2, 3), values=[[1.0, 1.0, 1.0], [0.0, 50.0, -50.0]]),), {"dim": 1}),
                ((T(()),), {"dim": 0}))),
    Op("nn.functional.log_softmax", NN, ("LogSoftmaxBackward0",), (FUNCTION,), kwargs={"dim": "dim"},
       samples=(((T((2, 3)),), {"dim": 1}), ((T((2, 3, 4)), 0), {}), ((T((2, 3)),), {"dim": -1}),
                ((T((2, 3), values=[[1.0, 1.0, 1.0], [0.0, 50.0, -50.0]]),), {"dim": 1}),
                ((T(()),), {"dim": 0}))),
    # Random masks cannot be compared with torch: samples cover the deterministic cases
    # (p=0, training=False: the input itself; p=1: zeros); tests/engine/test_nn_functional.py
    # checks the random case.
    Op("nn.functional.dropout", NN, ("MulBackward0",), (FUNCTION,),
       kwargs={"p": "float", "training": "bool", "inplace": (False,)},
       samples=(((T((2, 3)),), {"p": 0.0}), ((T((2, 3)),), {"training": False}),
                ((T((2, 3)), 1.0), {}))),
    Op("nn.functional.linear", NN, ("AddmmBackward0", "MmBackward0", "ViewBackward0", "SqueezeBackward4",
                                    "UnsafeViewBackward0", "AddBackward0"), (FUNCTION,),
       samples=(((T((2, 3)), T((4, 3)), T((4,))), {}), ((T((2, 3)), T((4, 3))), {}),
                ((T((3,)), T((4, 3)), T((4,))), {}), ((T((3,)), T((4, 3))), {}),
                ((T((2, 2, 3)), T((4, 3))), {"bias": T((4,))}), ((T((2, 2, 3)), T((4, 3))), {}),
                ((T((2, 2, 3)), T((4, 3)), T(())), {}), ((T((2, 2, 3)), T((4, 3)), T((1, 4))), {}),
                ((T((2, 2, 3)), T((4, 3)), T((2, 4))), {}), ((T((2, 3)), T((4, 3)), T(())), {}))),
    Op("nn.functional.cross_entropy", NN, ("NllLossBackward0", "NllLoss2DBackward0", "ViewBackward0",
                                           "AddBackward0", "DivBackward1", "NegBackward0"), (FUNCTION,),
       kwargs={"reduction": ("mean", "sum", "none"), "label_smoothing": "float", "ignore_index": "int"},
       samples=(((T((3, 5)), T((3,), "int64", [1, 4, 0])), {}),
                ((T((3, 5)), T((3,), "int64", [1, 4, 0])), {"reduction": "sum"}),
                ((T((3, 5)), T((3,), "int64", [1, 4, 0])), {"reduction": "none"}),
                ((T((3, 5)), T((3,), "int64", [1, 4, 0]), T((5,), "no_grad", domain=POSITIVE)), {}),
                ((T((3, 5)), T((3,), "int64", [1, 2, 2])), {"ignore_index": 2}),
                ((T((3, 5)), T((3,), "int64", [1, 4, -100])), {"label_smoothing": 0.1}),
                ((T((3, 5)), T((3,), "int64", [1, 4, 3])),
                 {"weight": T((5,), "no_grad", domain=POSITIVE), "label_smoothing": 0.2}),
                ((T((3, 5)), T((3,), "int64", [1, 4, 3])), {"label_smoothing": 0.2, "reduction": "none"}),
                ((T((3, 5)), T((3,), "int64", [1, 4, 3])), {"label_smoothing": 0.3, "reduction": "sum"}),
                ((T((5,)), T((), "int64", 3)), {}),
                ((T((2, 4, 3)), T((2, 3), "int64", [[1, 2, 0], [3, 3, 1]])), {}),
                ((T((2, 4, 3)), T((2, 3), "int64", [[1, 2, 0], [3, 3, 1]])), {"reduction": "none"}),
                # class-probability targets (same shape as the input)
                ((T((3, 5)), T((3, 5), domain=POSITIVE)), {}),
                ((T((3, 5)), T((3, 5), domain=POSITIVE)), {"reduction": "none"}),
                ((T((3, 5)), T((3, 5), domain=POSITIVE), T((5,), "no_grad", domain=POSITIVE)), {}),
                ((T((3, 5)), T((3, 5), domain=POSITIVE)), {"label_smoothing": 0.25, "reduction": "sum"}),
                ((T((5,)), T((5,), domain=POSITIVE)), {}))),
    Op("nn.functional.nll_loss", NN, ("NllLossBackward0", "NllLoss2DBackward0", "ViewBackward0"), (FUNCTION,),
       kwargs={"reduction": ("mean", "sum", "none"), "ignore_index": "int"},
       samples=(((T((3, 5)), T((3,), "int64", [1, 4, 0])), {}),
                ((T((3, 5)), T((3,), "int64", [1, 4, 0])), {"reduction": "sum"}),
                ((T((3, 5)), T((3,), "int64", [1, 4, 4])), {"reduction": "none"}),
                ((T((3, 5)), T((3,), "int64", [1, 4, 0]), T((5,), "no_grad", domain=POSITIVE)), {}),
                ((T((3, 5)), T((3,), "int64", [1, 4, 0])),
                 {"weight": T((5,), "no_grad", domain=POSITIVE), "reduction": "none"}),
                ((T((3, 5)), T((3,), "int64", [1, -100, 0])), {}),
                ((T((3, 5)), T((3,), "int64", [1, 3, 3])), {"ignore_index": 3, "reduction": "sum"}),
                ((T((5,)), T((), "int64", 2)), {}),
                ((T((2, 4, 3)), T((2, 3), "int64", [[1, 2, 0], [3, 3, 1]])), {}),
                ((T((2, 4, 3)), T((2, 3), "int64", [[1, 2, 0], [3, 3, 1]])), {"reduction": "none"}),
                ((T((2, 4, 3, 2)), T((2, 3, 2), "int64", [[[1, 2], [0, 3], [3, 1]], [[0, 0], [2, 1], [3, 2]]])),
                 {}))),
    Op("nn.functional.mse_loss", NN, ("MseLossBackward0",), (FUNCTION,),
       kwargs={"reduction": ("mean", "sum", "none")},
       samples=(((T((2, 3)), T((2, 3))), {}), ((T((2, 3)), T((2, 3))), {"reduction": "sum"}),
                ((T((2, 3)), T((2, 3))), {"reduction": "none"}), ((T(()), T(())), {}),
                ((T((2, 3)), T((2, 3), "float32")), {}))),
    Op("nn.functional.l1_loss", NN, ("MeanBackward0", "SumBackward0", "AbsBackward0"), (FUNCTION,),
       kinks=(0.0,), kwargs={"reduction": ("mean", "sum", "none")},
       samples=(((T((2, 3)), T((2, 3))), {}), ((T((2, 3)), T((2, 3))), {"reduction": "sum"}),
                ((T((2, 3)), T((2, 3))), {"reduction": "none"}),
                ((T((3,), values=[1.0, 2.0, -1.0]), T((3,), "float32", [1.0, 0.0, 0.0])), {}))),
    Op("nn.functional.smooth_l1_loss", NN, ("SmoothL1LossBackward0", "MeanBackward0", "SumBackward0",
                                            "AbsBackward0"), (FUNCTION,),
       kwargs={"reduction": ("mean", "sum", "none"), "beta": "float"},
       samples=(((T((2, 3)), T((2, 3))), {}), ((T((2, 3)), T((2, 3))), {"reduction": "sum"}),
                ((T((2, 3)), T((2, 3))), {"reduction": "none", "beta": 0.5}),
                ((T((2, 3)), T((2, 3))), {"beta": 0.0}),
                # |input - target| below, at and above beta, and 0
                ((T((4,), values=[0.25, 2.0, -3.0, 1.0]), T((4,), "float32", [0.0, 0.0, 0.0, 1.0])),
                 {"reduction": "none", "beta": 2.0}))),
    Op("nn.functional.binary_cross_entropy", NN, ("BinaryCrossEntropyBackward0",), (FUNCTION,),
       kwargs={"reduction": ("mean", "sum", "none")},
       samples=(((T((2, 3), values=[[0.1, 0.5, 0.9], [0.3, 0.7, 0.2]]),
                  T((2, 3), values=[[0.0, 1.0, 0.5], [1.0, 0.0, 0.25]])), {}),
                ((T((2, 3), values=[[0.1, 0.5, 0.9], [0.3, 0.7, 0.2]]),
                  T((2, 3), values=[[0.0, 1.0, 0.5], [1.0, 0.0, 0.25]])), {"reduction": "none"}),
                ((T((2, 3), values=[[0.1, 0.5, 0.9], [0.3, 0.7, 0.2]]),
                  T((2, 3), values=[[0.0, 1.0, 0.5], [1.0, 0.0, 0.25]]), T((3,), "no_grad", domain=POSITIVE)),
                 {"reduction": "sum"}),
                ((T((), values=0.25), T((), values=0.75)), {}))),
    Op("nn.functional.binary_cross_entropy_with_logits", NN, ("BinaryCrossEntropyWithLogitsBackward0",),
       (FUNCTION,), kwargs={"reduction": ("mean", "sum", "none")},
       samples=(((T((2, 3)), T((2, 3), values=[[0.0, 1.0, 0.5], [1.0, 0.0, 0.25]])), {}),
                ((T((2, 3)), T((2, 3), values=[[0.0, 1.0, 0.5], [1.0, 0.0, 0.25]])), {"reduction": "none"}),
                ((T((2, 3)), T((2, 3), values=[[0.0, 1.0, 0.5], [1.0, 0.0, 0.25]]),
                  T((3,), "no_grad", domain=POSITIVE)), {"reduction": "sum"}),
                ((T((2, 3)), T((2, 3), values=[[0.0, 1.0, 0.5], [1.0, 0.0, 0.25]])),
                 {"pos_weight": T((3,), "no_grad", domain=POSITIVE)}),
                ((T((2, 3)), T((2, 3), values=[[0.0, 1.0, 0.5], [1.0, 0.0, 0.25]])),
                 {"weight": T((2, 1), "no_grad", domain=POSITIVE), "pos_weight": T((3,), "no_grad", domain=POSITIVE),
                  "reduction": "none"}))),
    Op("nn.functional.normalize", NN, ("DivBackward0",), (FUNCTION,), kwargs={"p": "float", "dim": "dim"},
       samples=(((T((2, 3)),), {}), ((T((2, 3)),), {"p": 1.0, "dim": 0}), ((T((2, 3, 2)),), {"p": 3.0, "dim": -1}),
                ((T((4,)),), {"dim": 0}), ((T((2, 3)),), {"p": 1.5}),
                ((T((2, 3), values=[[0.0, 0.0, 0.0], [1.0, -2.0, 0.5]]),), {}))),
    # NOTE: no sample has a bias without a weight: torch 2.13's double backward of that case
    # raises "Expected a proper Tensor but got None ... for argument #1 'other'".
    Op("nn.functional.layer_norm", NN, ("NativeLayerNormBackward0",), (FUNCTION,), kwargs={"eps": "float"},
       samples=(((T((2, 3)), (3,)), {}), ((T((2, 3)), (3,), T((3,)), T((3,))), {}),
                ((T((2, 3, 4)), [3, 4], T((3, 4))), {"eps": 1e-3}), ((T((2, 3, 4)), (4,)), {"weight": T((4,))}),
                ((T((5,)), (5,)), {}))),
    # (end of engine/nn/functional.py)

)

# Where each op's function lives, by section of the table above (module names
# relative to the `engine` package). The engine binds functions from these.
IMPLEMENTATIONS = ("_ops", "_ops_inplace", "_ops_convert", "_ops_pointwise", "_ops_reduce", "_ops_shape", "_ops_index",
                   "_ops_linalg", "_ops_factory", "nn.functional")

BY_NAME: dict[str, Op] = {op.name: op for op in OPS}

# torch's Python signatures of ops (function form, in torch's parser syntax, in torch's order):
# the engine checks a call's arguments against them as torch's argument parser does
# (engine/_args.py), with its TypeErrors; the Tensor method form drops `input` and `out`.
_OUT = "Tensor out=None, "
_FACTORY_OPTIONS = ("ScalarType? dtype=None, Layout? layout=None, Device? device=None, bool? pin_memory=False, "
                    "bool? requires_grad=False")
SIGNATURES: dict[str, tuple[str, ...]] = {
    # pointwise
    **{name: (f"{name}(Tensor input, *, Tensor out=None)",) for name in (
        "neg", "exp", "log", "tanh", "sigmoid", "expm1", "log2", "log10", "log1p", "sqrt", "rsqrt", "reciprocal",
        "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "erf", "square", "abs", "sign", "floor",
        "ceil", "trunc", "logical_not", "bitwise_not")},
    **{name: (f"{name}(Tensor input)",) for name in ("relu", "isnan", "isinf", "isfinite", "trace")},
    "round": ("round(Tensor input, *, Tensor out=None)", "round(Tensor input, *, int64_t decimals, Tensor out=None)"),
    "nan_to_num": ("nan_to_num(Tensor input, double? nan=None, double? posinf=None, double? neginf=None, *, "
                   "Tensor out=None)",),
    **{name: (f"{name}(Tensor input, Tensor other, *, Scalar alpha=1, Tensor out=None)",
              f"{name}(Tensor input, Scalar alpha, Tensor other, *, Tensor out=None)|deprecated")
       for name in ("add", "sub")},
    "div": ("div(Tensor input, Tensor other, *, Tensor out=None)",
            "div(Tensor input, Tensor other, *, c10::string_view? rounding_mode, Tensor out=None)",
            "div(Tensor input, Scalar other, *, c10::string_view? rounding_mode)"),
    "pow": ("pow(Tensor input, Tensor exponent, *, Tensor out=None)",
            "pow(Scalar self, Tensor exponent, *, Tensor out=None)",
            "pow(Tensor input, Scalar exponent, *, Tensor out=None)"),
    **{name: (f"{name}(Tensor input, Tensor other, *, Tensor out=None)",
              f"{name}(Scalar self, Tensor other)",
              f"{name}(Tensor input, Scalar other, *, Tensor out=None)")
       for name in ("remainder", "bitwise_and", "bitwise_or", "bitwise_xor")},
    "xlogy": ("xlogy(Tensor input, Tensor other, *, Tensor out=None)",
              "xlogy(Scalar self, Tensor other, *, Tensor out=None)",
              "xlogy(Tensor input, Scalar other, *, Tensor out=None)"),
    **{name: (f"{name}(Tensor input, Tensor other, *, Tensor out=None)",
              f"{name}(Tensor input, Scalar other, *, Tensor out=None)")
       for name in ("fmod", "eq", "ne", "lt", "le", "gt", "ge")},
    "floor_divide": ("floor_divide(Tensor input, Tensor other, *, Tensor out=None)",
                     "floor_divide(Tensor input, Scalar other)"),
    **{name: (f"{name}(Tensor input, Tensor other, *, Tensor out=None)",) for name in (
        "mul", "maximum", "minimum", "logical_and", "logical_or", "logical_xor", "matmul")},
    "where": ("where(Tensor condition)",
              "where(Tensor condition, Tensor input, Tensor other, *, Tensor out=None)",
              "where(Tensor condition, Scalar self, Tensor other)",
              "where(Tensor condition, Tensor input, Scalar other)",
              "where(Tensor condition, Scalar self, Scalar other)"),
    "atan2": ("atan2(Tensor input, Tensor other, *, Tensor out=None)",),
    "lerp": ("lerp(Tensor input, Tensor end, Tensor weight, *, Tensor out=None)",
             "lerp(Tensor input, Tensor end, Scalar weight, *, Tensor out=None)"),
    **{name: (f"{name}(Tensor input, Tensor tensor1, Tensor tensor2, *, Scalar value=1, Tensor out=None)",
              f"{name}(Tensor input, Scalar value, Tensor tensor1, Tensor tensor2, *, Tensor out=None)|deprecated")
       for name in ("addcmul", "addcdiv")},
    "clamp": ("clamp(Tensor input, Tensor? min=None, Tensor? max=None, *, Tensor out=None)",
              "clamp(Tensor input, Scalar? min=None, Scalar? max=None, *, Tensor out=None)"),
    **{f"clamp_{side}": (f"clamp_{side}(Tensor input, Tensor {side}, *, Tensor out=None)",
                         f"clamp_{side}(Tensor input, Scalar {side}, *, Tensor out=None)") for side in ("min", "max")},
    "masked_fill": ("masked_fill(Tensor input, Tensor mask, Tensor value)",
                    "masked_fill(Tensor input, Tensor mask, Scalar value)"),
    # reductions
    "sum": ("sum(Tensor input, *, ScalarType? dtype=None)",
            "sum(Tensor input, IntArrayRef[1]? dim, bool keepdim=False, *, ScalarType? dtype=None, Tensor out=None)"),
    "mean": ("mean(Tensor input, *, ScalarType? dtype=None, Tensor out=None)",
             "mean(Tensor input, IntArrayRef[1]? dim, bool keepdim=False, *, ScalarType? dtype=None, "
             "Tensor out=None)"),
    "prod": ("prod(Tensor input, *, ScalarType? dtype=None)",
             "prod(Tensor input, int64_t dim, bool keepdim=False, *, ScalarType? dtype=None, Tensor out=None)"),
    **{name: (f"{name}(Tensor input, IntArrayRef[1]? dim=[], bool keepdim=False, *, Tensor out=None)",)
       for name in ("amax", "amin")},
    **{name: (f"{name}(Tensor input, *, Tensor out=None)",
              f"{name}(Tensor input, Tensor other, *, Tensor out=None)",
              f"{name}(Tensor input, int64_t dim, bool keepdim=False, *, TensorList out=None)")
       for name in ("max", "min")},
    **{name: (f"{name}(Tensor input, int64_t? dim=None, bool keepdim=False, *, Tensor out=None)",)
       for name in ("argmax", "argmin")},
    **{name: (f"{name}(Tensor input, IntArrayRef[1]? dim, bool unbiased=True, bool keepdim=False, *, "
              "Tensor out=None)",
              f"{name}(Tensor input, IntArrayRef[1]? dim=None, *, Scalar? correction=None, bool keepdim=False, "
              "Tensor out=None)",
              f"{name}(Tensor input, bool unbiased=True)")
       for name in ("var", "std")},
    "logsumexp": ("logsumexp(Tensor input, IntArrayRef[1] dim, bool keepdim=False, *, Tensor out=None)",),
    **{name: (f"{name}(Tensor input, *, Tensor out=None)",
              f"{name}(Tensor input, IntArrayRef[1]? dim=None, bool keepdim=False, *, Tensor out=None)",
              f"{name}(Tensor input, int64_t dim, bool keepdim=False, *, Tensor out=None)")
       for name in ("all", "any")},
    **{name: (f"{name}(Tensor input, int64_t dim, *, ScalarType? dtype=None, Tensor out=None)",)
       for name in ("cumsum", "cumprod")},
    # factories
    **{name: (f"{name}(SymIntArrayRef size, *, {_OUT}{_FACTORY_OPTIONS})",) for name in ("zeros", "ones")},
    "full": (f"full(SymIntArrayRef size, Scalar fill_value, *, {_OUT}{_FACTORY_OPTIONS})",),
    **{name: (f"{name}(Tensor input, *, MemoryFormat? memory_format=None, {_FACTORY_OPTIONS})",)
       for name in ("zeros_like", "ones_like")},
    "full_like": (f"full_like(Tensor input, Scalar fill_value, *, MemoryFormat? memory_format=None, "
                  f"{_FACTORY_OPTIONS})",),
    **{name: (f"{name}(Tensor input, SymIntArrayRef size, *, {_FACTORY_OPTIONS})",) for name in ("new_zeros", "new_ones")},
    "new_full": (f"new_full(Tensor input, SymIntArrayRef size, Scalar fill_value, *, {_FACTORY_OPTIONS})",),
    "eye": (f"eye(SymInt n, *, {_OUT}{_FACTORY_OPTIONS})", f"eye(SymInt n, SymInt m, *, {_OUT}{_FACTORY_OPTIONS})"),
    "arange": (f"arange(Scalar end, *, {_OUT}{_FACTORY_OPTIONS})",
               f"arange(Scalar start, Scalar end, *, {_FACTORY_OPTIONS})",
               f"arange(Scalar start, Scalar end, Scalar step=1, *, {_OUT}{_FACTORY_OPTIONS})"),
    "linspace": tuple(f"linspace({start} start, {end} end, int64_t steps, *, {_OUT}{_FACTORY_OPTIONS})"
                      for start, end in (("Tensor", "Tensor"), ("Scalar", "Tensor"), ("Tensor", "Scalar"),
                                         ("Scalar", "Scalar"))),
    # nn.functional functions that are torch's natives
    "nn.functional.gelu": ('gelu(Tensor input, *, c10::string_view approximate="none")',),
    "nn.functional.softplus": ("softplus(Tensor input, Scalar beta=1, Scalar threshold=20)",),
    "nn.functional.linear": ("linear(Tensor input, Tensor weight, Tensor? bias=None)",),
    # in-place and conversion methods
    "to": ("to(Tensor input, Device? device=None, ScalarType? dtype=None, bool non_blocking=False, bool copy=False, *, "
           "MemoryFormat? memory_format=None)",
           "to(Tensor input, ScalarType dtype, bool non_blocking=False, bool copy=False, *, "
           "MemoryFormat? memory_format=None)",
           "to(Tensor input, Tensor tensor, bool non_blocking=False, bool copy=False, *, "
           "MemoryFormat? memory_format=None)"),
    "zero_": ("zero_(Tensor input)",),
    "fill_": ("fill_(Tensor input, Tensor value)", "fill_(Tensor input, Scalar value)"),
    "copy_": ("copy_(Tensor input, Tensor other, bool non_blocking=False)",
              "copy_(Tensor input, Tensor other, bool async=False)|deprecated"),
    **{name: (f"{name}(Tensor input, *, MemoryFormat? memory_format=None)",)
       for name in ("float", "double", "long", "bool", "int", "clone")},
    "contiguous": ("contiguous(Tensor input, *, MemoryFormat memory_format=contiguous_format)",),
    # shapes
    **{name: (f"{name}(Tensor input)",) for name in ("t", "adjoint")},
    "expand_as": ("expand_as(Tensor input, Tensor other)",),
    "reshape": ("reshape(Tensor input, SymIntArrayRef shape)",),
    "view": ("view(Tensor input, ScalarType dtype)", "view(Tensor input, SymIntArrayRef size)"),
    "flatten": ("flatten(Tensor input, int64_t start_dim=0, int64_t end_dim=-1)",),
    "unflatten": ("unflatten(Tensor input, int64_t dim, SymIntArrayRef sizes)",),
    "squeeze": ("squeeze(Tensor input)", "squeeze(Tensor input, int64_t dim)", "squeeze(Tensor input, IntArrayRef dim)"),
    "unsqueeze": ("unsqueeze(Tensor input, int64_t dim)",),
    "transpose": ("transpose(Tensor input, int64_t dim0, int64_t dim1)",),
    "swapaxes": ("swapaxes(Tensor input, int64_t axis0, int64_t axis1)",),
    "permute": ("permute(Tensor input, IntArrayRef dims)",),
    "expand": ("expand(Tensor input, SymIntArrayRef size, *, bool implicit=False)",),
    "broadcast_to": ("broadcast_to(Tensor input, SymIntArrayRef size)",),
    "repeat": ("repeat(Tensor input, SymIntArrayRef repeats)",),
    "flip": ("flip(Tensor input, IntArrayRef dims)",),
    "roll": ("roll(Tensor input, SymIntArrayRef[1] shifts, IntArrayRef[1] dims=None)",),
    **{name: (f"{name}(Tensor input, int64_t diagonal=0, *, Tensor out=None)",) for name in ("tril", "triu")},
    "diagonal": ("diagonal(Tensor input, int64_t offset=0, int64_t dim1=0, int64_t dim2=1)",),
    "narrow": ("narrow(Tensor input, int64_t dim, Tensor start, SymInt length)",
               "narrow(Tensor input, int64_t dim, SymInt start, SymInt length)"),
    # linear algebra
    **{name: (f"{name}(Tensor input, Tensor mat2, *, Tensor out=None)",
              f"{name}(Tensor input, Tensor mat2, ScalarType out_dtype, *, Tensor out=None)|function")
       for name in ("mm", "bmm")},
    **{name: (f"{name}(Tensor input, Tensor {other}, *, Tensor out=None)",) for name, other in (
        ("mv", "vec"), ("dot", "tensor"), ("outer", "vec2"), ("ger", "vec2"),
        ("take", "index"))},
    # joins and indexing
    **{name: (f"{name}(TensorList tensors, int64_t dim=0, *, Tensor out=None)",) for name in ("cat", "stack")},
    "split_with_sizes": ("split_with_sizes(Tensor input, SymIntArrayRef split_sizes, int64_t dim=0)",),
    "chunk": ("chunk(Tensor input, int64_t chunks, int64_t dim=0)",),
    "unbind": ("unbind(Tensor input, int64_t dim=0)",),
    "index_select": ("index_select(Tensor input, int64_t dim, Tensor index, *, Tensor out=None)",),
    "gather": ("gather(Tensor input, int64_t dim, Tensor index, *, bool sparse_grad=False, Tensor out=None)",),
    "scatter_add": ("scatter_add(Tensor input, int64_t dim, Tensor index, Tensor src, *, Tensor out=None)",),
    "scatter": ("scatter(Tensor input, int64_t dim, Tensor index, Tensor src, *, Tensor out=None)",
                "scatter(Tensor input, int64_t dim, Tensor index, Tensor src, *, c10::string_view reduce, "
                "Tensor out=None)",
                "scatter(Tensor input, int64_t dim, Tensor index, Scalar value, *, Tensor out=None)",
                "scatter(Tensor input, int64_t dim, Tensor index, Scalar value, *, c10::string_view reduce, "
                "Tensor out=None)"),
}

# torch's signatures of the natives that torch's Python functions (nn.functional) call with
# their arguments, positionally: the engine's functions check them with these.
NATIVE_SIGNATURES: dict[str, tuple[str, ...]] = {
    "linalg_vector_norm": ("linalg_vector_norm(Tensor input, Scalar ord=2, IntArrayRef[1]? dim=None, "
                           "bool keepdim=False, *, ScalarType? dtype=None, Tensor out=None)",),
    "split": ("split(Tensor input, SymInt split_size, int64_t dim=0)",
              "split(Tensor input, SymIntArrayRef split_size, int64_t dim=0)"),
    "relu_": ("relu_(Tensor input)",),
    "leaky_relu": ("leaky_relu(Tensor input, Scalar negative_slope=0.01, *, Tensor out=None)",),
    "elu": ("elu(Tensor input, Scalar alpha=1, Scalar scale=1, Scalar input_scale=1, *, Tensor out=None)",),
    "nll_loss_nd": ("nll_loss_nd(Tensor input, Tensor target, Tensor? weight=None, int64_t reduction=at::Reduction::Mean, "
                    "SymInt ignore_index=-100)",),
    "cross_entropy_loss": ("cross_entropy_loss(Tensor input, Tensor target, Tensor? weight=None, "
                           "int64_t reduction=at::Reduction::Mean, SymInt ignore_index=-100, "
                           "double label_smoothing=0.0)",),
    "binary_cross_entropy": ("binary_cross_entropy(Tensor input, Tensor target, Tensor? weight=None, "
                             "int64_t reduction=at::Reduction::Mean, *, Tensor out=None)",),
    "binary_cross_entropy_with_logits": ("binary_cross_entropy_with_logits(Tensor input, Tensor target, "
                                         "Tensor? weight=None, Tensor? pos_weight=None, "
                                         "int64_t reduction=at::Reduction::Mean)",),
    **{name: (f"{name}(Tensor input, int64_t dim, ScalarType? dtype=None)",) for name in ("softmax", "log_softmax")},
    "layer_norm": ("layer_norm(Tensor input, SymIntArrayRef normalized_shape, Tensor? weight=None, Tensor? bias=None, "
                   "double eps=1e-05, bool cudnn_enable=True)",),
}
