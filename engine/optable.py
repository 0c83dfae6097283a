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
    # (end of engine/nn/functional.py)

)

# Where each op's function lives, by section of the table above (module names
# relative to the `engine` package). The engine binds functions from these.
IMPLEMENTATIONS = ("_ops", "_ops_pointwise", "_ops_reduce", "_ops_shape", "_ops_index",
                   "_ops_linalg", "_ops_factory", "nn.functional")

BY_NAME: dict[str, Op] = {op.name: op for op in OPS}
