"""Bad arguments swept over every op of the table: the engine raises torch's exception.

For every op, in each of its call forms (function, Tensor method, in-place method), the
first sample call of the op's table entry is spoiled in each of the usual ways: an
argument replaced (by position and by keyword) with None, a str, a list, a float or a
tensor; an unknown keyword; an argument missing; extra positional arguments. Each
spoiled call runs on torch and on the engine, and the exception type and message
(normalized as the fuzzer's comparator does) must be the same (or both calls succeed).

The calls of one op and form are one test case. `KNOWN` lists the cases that still differ,
each with the reason; they are strict xfails, so a case that comes to agree fails until
it is taken off the list: the number of differences can only go down. Run this file as a
script to print every differing call and the count.
"""
from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest
import torch

import engine
from engine import optable
from oracle import normalize_message
from test_ops_against_torch import RNG_SEED, _materialize, samples

FUNCTION_FORM, METHOD_FORM, INPLACE_FORM = "function", "method", "inplace"

# What replaces an argument: None, a str, a list (where an int is wanted, or a tensor),
# a float (where an int or a tensor is wanted) and a tensor (where a number is wanted).
_BAD_VALUES = (None, "a", [0, 1], 1.5, "tensor")
_KEYWORD_BAD_VALUES = (None, "a")

# (op name, form) -> why the engine still differs from torch there.
KNOWN: dict[tuple[str, str], str] = {
    ("nn.functional.silu", "function"): "inplace=True: the engine has no silu_ (refused before torch's leaf check)",
    ("nn.functional.linear", "function"): "a 1-d weight: not supported by the engine",
    ("nn.functional.normalize", "function"): "eps=None and out=: not supported by the engine",
    ("__getitem__", "method"): "torch's slot wrapper messages (\"expected 1 argument, got 0\")",
    ("squeeze", "method"): "Tensor.squeeze(0, 0, 0, 0): the ints as varargs dims reach the engine's squeeze "
                           "as separate arguments",
}


def sweep_forms(op, *, properties: bool = False) -> list[str]:
    """The forms a sweep calls an op in: function, method (a property too, with `properties`), in-place."""
    forms = []
    if optable.FUNCTION in op.forms:
        forms.append(FUNCTION_FORM)
    if optable.METHOD in op.forms or (properties and optable.PROPERTY in op.forms):
        forms.append(METHOD_FORM)
    if op.inplace:
        forms.append(INPLACE_FORM)
    return forms


def _spoiled(args: tuple, kwargs: dict, first: int):
    """The spoiled versions of a call, as (label, args, kwargs); arguments before `first`
    (the receiver of a method) are kept."""
    calls = []
    for i in range(first, len(args)):
        for bad in _BAD_VALUES:
            calls.append((f"arg{i}={bad!r}", args[:i] + (bad,) + args[i + 1:], kwargs))
    for key in kwargs:
        for bad in _KEYWORD_BAD_VALUES:
            calls.append((f"{key}={bad!r}", args, {**kwargs, key: bad}))
    calls.append(("unknown keyword", args, {**kwargs, "foo": 1}))
    if len(args) > first:
        calls.append(("missing last", args[:-1], kwargs))
    calls.append(("no arguments", args[:first], {}))
    calls.append(("one extra", args + (1,), kwargs))
    calls.append(("extra None", args + (None,), kwargs))
    calls.append(("four extra", args + (0, 0, 0, 0), kwargs))
    return calls


def sweep_target(backend, op, form):
    """What a sweep calls: the function, or a call of the method (or read of the property) on its first argument."""
    namespace, _, name = op.name.rpartition(".")
    if form == FUNCTION_FORM:
        module = backend
        for part in filter(None, namespace.split(".")):
            module = getattr(module, part)
        return getattr(module, name)
    if optable.PROPERTY in op.forms:   # (no op of the table is both a method and a property)
        return lambda self: getattr(self, name)
    method = op.inplace if form == INPLACE_FORM else name
    return lambda self, *args, **kwargs: getattr(self, method)(*args, **kwargs)


def _outcome(backend, op, form, template, label):
    """The exception (type name, normalized message) of one spoiled call, or ("ok", None)."""
    args, kwargs = template
    rng = np.random.default_rng(RNG_SEED)

    def values(t):
        x = rng.uniform(-2.0, 2.0, size=t.shape)
        return np.abs(x) + 0.25 if t.domain == optable.POSITIVE else x

    def build(value):
        if isinstance(value, str) and value == "tensor":
            return backend.tensor([1.0, 2.0])
        return _materialize(backend, value, "float32", values)

    args = tuple(build(a) for a in args)
    kwargs = {k: build(v) for k, v in kwargs.items()}
    if form == INPLACE_FORM and args and isinstance(args[0], (torch.Tensor, engine.Tensor)):
        args = (args[0].detach().clone(),) + args[1:]   # a leaf that requires grad refuses in-place ops
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sweep_target(backend, op, form)(*args, **kwargs)
    except Exception as error:   # noqa: BLE001 - the outcome under test
        return type(error).__name__, normalize_message(str(error))
    return "ok", None


def differences(op, form) -> list:
    """The spoiled calls of one op and form whose outcomes differ: (label, torch, engine)."""
    sample = samples(op)
    if not sample:
        return []
    args, kwargs = sample[0]
    first = 0 if form == FUNCTION_FORM else 1
    found = []
    for label, bad_args, bad_kwargs in _spoiled(tuple(args), dict(kwargs), first):
        expected = _outcome(torch, op, form, (bad_args, bad_kwargs), label)
        got = _outcome(engine, op, form, (bad_args, bad_kwargs), label)
        if got != expected:
            found.append((label, expected, got))
    return found


CASES = [(op, form) for op in optable.OPS if samples(op) for form in sweep_forms(op)]


def sweep_param(op, form, known: dict):
    """One sweep case, a strict xfail with its reason where `known` lists it."""
    marks = ()
    if (op.name, form) in known:
        marks = pytest.mark.xfail(reason=known[op.name, form], strict=True)
    return pytest.param(op, form, id=f"{op.name}-{form}", marks=marks)


def assert_no_differences(found: list) -> None:
    assert not found, "\n".join(f"{label}:\n  torch:  {expected}\n  engine: {got}" for label, expected, got in found)


@pytest.mark.parametrize("op, form", [sweep_param(op, form, KNOWN) for op, form in CASES])
def test_bad_arguments_raise_as_torch(op, form):
    assert_no_differences(differences(op, form))


def print_differences(cases, differences, names) -> None:
    """Every difference of the sweep's cases (of the ops `names`, when given), and their count."""
    total = 0
    for op, form in cases:
        if names and op.name not in names:
            continue
        for label, expected, got in differences(op, form):
            total += 1
            print(f"{op.name} [{form}] {label}\n  torch:  {expected}\n  engine: {got}")
    print("differences:", total)


if __name__ == "__main__":   # python test_arg_sweep.py [op ...]
    print_differences(CASES, differences, sys.argv[1:])
