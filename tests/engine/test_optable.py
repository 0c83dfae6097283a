"""The op table and the engine's public ops are the same set (contract 2)."""
from __future__ import annotations

import inspect

import engine
from engine import _ops, optable

# Public names of the engine that are not ops: types, dtypes, grad modes, submodules.
NOT_OPS = {"Tensor", "Size", "tensor", "dtype", "float32", "float64", "int64", "bool", "float",
           "double", "long", "no_grad", "enable_grad", "is_grad_enabled", "optim", "optable"}


def test_every_table_entry_has_an_engine_rule_and_is_exposed_in_each_form():
    for op in optable.OPS:
        fn = getattr(_ops, op.name, None)
        assert callable(fn), f"{op.name} is in the op table but engine/_ops.py has no function for it"
        if optable.FUNCTION in op.forms:
            assert getattr(engine, op.name) is fn
        if optable.METHOD in op.forms:
            assert getattr(engine.Tensor, op.name) is fn


def test_every_public_engine_function_has_a_table_entry():
    public = {name for name, value in vars(engine).items()
              if not name.startswith("_") and (inspect.isfunction(value) or callable(value))}
    untabled = public - NOT_OPS - set(optable.BY_NAME)
    assert not untabled, f"engine exposes ops without an op-table entry: {sorted(untabled)}"


def test_public_functions_of_ops_module_are_in_the_table():
    public = {name for name, value in vars(_ops).items()
              if inspect.isfunction(value) and value.__module__ == _ops.__name__
              and not name.startswith(("_", "v_"))}   # v_*: value helpers of the rules
    # rsub / rdiv are the reflected operator forms of sub / div; where is internal for now.
    assert public - {"record", "rsub", "rdiv", "where"} == set(optable.BY_NAME)


def test_table_metadata_is_well_formed():
    kinds = {optable.UNARY, optable.BINARY, optable.REDUCTION, optable.MATMUL}
    domains = {optable.REAL, optable.POSITIVE, optable.NONZERO}
    for op in optable.OPS:
        assert op.kind in kinds, op.name
        assert set(op.forms) <= set(optable.ALL_FORMS), op.name
        assert (op.operator is not None) == (optable.OPERATOR in op.forms), op.name
        arity = 1 if op.kind in (optable.UNARY, optable.REDUCTION) else 2
        assert len(op.domain) <= arity and set(op.domain) <= domains, op.name
        assert all(name.endswith(("Backward0", "Backward1", "Backward2", "Backward4")) for name in op.grad_fn)
