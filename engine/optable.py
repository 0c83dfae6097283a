"""The op table: one entry per public op, read by the engine, the tests and the fuzzer.

Each entry says how torch exposes the op (function, method, operator), the
autograd node torch records for it, and the plain-data facts the fuzzer needs
to draw valid calls (kind of shape rule, input domain, kinks, keyword
arguments). The numerics live in `engine/_ops.py` under the same name: adding an
op is one rule there and one entry here (`tests/engine/test_optable.py` checks
that the two agree).

This module imports nothing from the engine, so tools can read the table
without building tensors.
"""
from __future__ import annotations

from dataclasses import dataclass, field

FUNCTION, METHOD, OPERATOR = "function", "method", "operator"
ALL_FORMS = (FUNCTION, METHOD, OPERATOR)

# Shape rules the fuzzer knows how to draw arguments for.
UNARY = "unary"            # one tensor, output has its shape
BINARY = "binary"          # two operands, broadcast together; either may be a Python scalar
REDUCTION = "reduction"    # one tensor; optional `dim` (int or tuple) and `keepdim`
MATMUL = "matmul"          # torch.matmul's 1-d / 2-d / batched rules

# Input domains: where the op is defined and smooth, so a fuzzer can aim inside
# it (and, on purpose, at its edge).
REAL, POSITIVE, NONZERO = "real", "positive", "nonzero"


@dataclass(frozen=True)
class Op:
    name: str
    kind: str
    grad_fn: tuple[str, ...]                 # torch's node name(s) for this op
    forms: tuple[str, ...] = (FUNCTION, METHOD)
    operator: str | None = None              # Python operator symbol, e.g. "*" ("-" unary for neg)
    domain: tuple[str, ...] = (REAL,)        # per tensor argument
    kinks: tuple[float, ...] = ()            # non-differentiable points of the first argument
    kwargs: dict = field(default_factory=dict)  # keyword -> "dim" | "bool"
    differentiable: bool = True
    # Tolerance override (rtol, atol) per dtype name, for ops torch computes
    # with a different but equally accurate formula; None = assert_close defaults.
    tol: dict | None = None


OPS: tuple[Op, ...] = (
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
)

BY_NAME: dict[str, Op] = {op.name: op for op in OPS}
