"""The op table and the engine's public ops are the same set (contract 2)."""
from __future__ import annotations

import importlib
import inspect

import engine
from engine import optable

# Public names of the engine that are not ops: types, dtypes, grad modes, submodules.
NOT_OPS = {"Tensor", "Size", "tensor", "dtype", "float32", "float64", "int64", "bool", "float",
           "double", "long", "no_grad", "enable_grad", "is_grad_enabled", "optim", "optable", "nn", "autograd",
           "set_grad_enabled", "inference_mode", "is_inference_mode_enabled",
           "implementation"}
# Public functions of implementation modules that are not ops of their own.
HELPERS = {"record", "save_for_backward",   # the recording machinery every op uses
           "check_writable", "check_no_internal_overlap", "write_result", "inplace_method",   # the in-place machinery
           "has_internal_overlap", "overlap_warning", "aliased_write",   # ... and its writes into expanded tensors
           "refresh_view_node",   # a view's node regenerated after an in-place write (Tensor.grad_fn)
           "rsub", "rdiv",   # reflected operator forms of sub and div
           "div_rounding"}   # div with rounding_mode, which div calls


def _implementation_modules():
    return [importlib.import_module(f"engine.{name}") for name in optable.IMPLEMENTATIONS]


def test_every_table_entry_has_an_engine_function_exposed_in_each_form():
    for op in optable.OPS:
        fn = engine.implementation(op)
        for name in (op.name.rpartition(".")[2],) + op.aliases:
            # Ops with torch signatures are bound behind the argument parser (engine/_args.py).
            if optable.FUNCTION in op.forms and "." not in op.name:
                assert inspect.unwrap(getattr(engine, name)) is fn, name
            if optable.METHOD in op.forms:
                assert inspect.unwrap(getattr(engine.Tensor, name)) is fn, name
            if optable.PROPERTY in op.forms:
                assert isinstance(inspect.getattr_static(engine.Tensor, name), property), name


def test_every_signature_names_a_table_entry_with_its_own_name():
    for name, signatures in optable.SIGNATURES.items():
        assert name in optable.BY_NAME, name
        assert all(text.startswith(f"{name.rpartition('.')[2]}(") for text in signatures), name   # nn.functional.gelu
    for name, signatures in optable.NATIVE_SIGNATURES.items():
        assert all(text.startswith(f"{name}(") for text in signatures), name


def test_every_public_function_of_the_implementation_modules_is_in_the_table():
    tabled = {op.name.rpartition(".")[2] for op in optable.OPS}
    for module in _implementation_modules():
        public = {name for name, value in vars(module).items()
                  if inspect.isfunction(value) and value.__module__ == module.__name__
                  and not name.startswith(("_", "v_"))}   # v_*: value helpers of the rules
        untabled = public - HELPERS - tabled
        assert not untabled, f"{module.__name__} has ops without an op-table entry: {sorted(untabled)}"


def test_every_public_engine_function_has_a_table_entry():
    public = {name for name, value in vars(engine).items()
              if not name.startswith("_") and callable(value) and not inspect.ismodule(value)}
    tabled = {name for op in optable.OPS for name in (op.name,) + op.aliases}
    assert not public - NOT_OPS - tabled, "engine exposes ops without an op-table entry"


def test_table_metadata_is_well_formed():
    kinds = {optable.UNARY, optable.BINARY, optable.REDUCTION, optable.MATMUL, optable.SHAPE,
             optable.INDEXING, optable.JOIN, optable.LINALG, optable.NN, optable.FACTORY, optable.COMPARISON,
             optable.INPLACE}
    domains = {optable.REAL, optable.POSITIVE, optable.NONZERO}
    names = [op.name for op in optable.OPS]
    assert len(names) == len(set(names)), "an op appears twice in the table"
    for op in optable.OPS:
        assert op.kind in kinds, op.name
        assert set(op.forms) <= {*optable.ALL_FORMS, optable.PROPERTY}, op.name
        assert (op.operator is not None) == (optable.OPERATOR in op.forms), op.name
        assert set(op.domain) <= domains, op.name
        assert op.differentiable == bool(op.grad_fn), f"{op.name}: differentiable ops name their nodes"
