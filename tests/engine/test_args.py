"""Argument checking: calls torch's argument parser refuses raise the same TypeError in the engine.

Each case is one call, made as `torch.<op>(x, ...)` and as `x.<op>(...)` (where torch has
that form), with the same arguments on both backends; the exception type and message must
be identical. The cases cover each of the parser's messages: a wrong type by position and by
keyword, a bad first or later element of an int list, varargs int lists, missing, extra and
unknown arguments, and the "invalid combination" listing of overloaded ops.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import engine

# (op, args after the tensor, kwargs)
CALLS = [
    ("permute", (None,), {}), ("permute", ((0.5, 1),), {}), ("permute", ((1, None),), {}),
    ("permute", (0, None), {}), ("permute", (0.5, 1), {}), ("permute", (0,), {}), ("permute", (), {"dims": None}),
    ("permute", ((1, 0), 3), {}), ("permute", ((1, 0),), {"foo": 3}), ("permute", ((1, 0),), {"dims": (1, 0)}),
    ("permute", ((True, 0),), {}), ("permute", (1, True), {}), ("permute", (), {}),
    ("logsumexp", (None,), {}), ("logsumexp", (1.5,), {}), ("logsumexp", ((0, 1.5),), {}),
    ("logsumexp", (), {"dim": (None,)}), ("logsumexp", (0, None), {}), ("logsumexp", (0,), {"keepdim": 1}),
    ("logsumexp", (0, True, 1), {}), ("logsumexp", (), {}), ("logsumexp", ((np.float64(0.5),),), {}),
    ("transpose", (0, None), {}), ("transpose", (0,), {"dim1": None}), ("transpose", (0,), {}),
    ("sum", (0.5,), {}), ("sum", (0, None), {}), ("sum", (0,), {"keepdim": None}), ("sum", (), {"keepdim": True}),
    ("mean", (), {"dim": 0, "keepdim": 1.5}), ("max", (), {"dim": None}), ("max", (), {"dim": 0, "keepdim": None}),
    ("std", (), {"dim": 0, "keepdim": None}), ("all", (), {"dim": 1.5}), ("squeeze", (), {"dim": None}),
    ("squeeze", (1.5,), {}), ("narrow", (), {"dim": None, "start": 0, "length": 1}), ("view", (None,), {}),
    ("reshape", (None,), {}), ("flip", (None,), {}), ("roll", (1,), {"dims": None}), ("roll", (None,), {}),
    ("amax", (), {"dim": None}), ("argmax", (), {"dim": 0.5}), ("cumsum", (None,), {}), ("unbind", (None,), {}),
    ("chunk", (2, None), {}), ("split_with_sizes", ((1, 1), None), {}), ("tril", (0.5,), {}),
    ("diagonal", (0, 0, None), {}), ("expand", (None,), {}), ("repeat", (None,), {}), ("unsqueeze", (None,), {}),
    ("addcmul", (None,), {}), ("addcmul", (1.5,), {"value": None}), ("lerp", (None, 0.5), {}),
    ("masked_fill", (None, 1.0), {}), ("atan2", (2.0,), {}),
    ("sum", (), {"axis": 0, "keepdims": None}), ("sum", (0,), {"axis": 1}), ("logsumexp", (), {"axis": None}),
    ("sum", (), {"axis": 1, "foo": 2}), ("amax", (), {"axis": 0, "dim": 1}),
    # torch.split and Tensor.split are Python functions with their own parameter names; Tensor.unflatten
    # refuses empty sizes in Python first
    ("split", (), {"split_size_or_sections": 1}), ("split", (), {"split_size": 1}), ("split", (1, 0, 3), {}),
    ("split", (), {}), ("unflatten", (1, None), {}), ("unflatten", (1, 3), {}), ("unflatten", (1, ()), {}),
    ("unflatten", (1,), {}),
    ("clamp", (None, 1.0), {"max": 2}), ("clamp", ("a",), {}), ("clip", ("a",), {}), ("clip", (None,), {"foo": 1}),
    ("clamp_min", ("a",), {}), ("clamp_max", (None,), {}),
    # in-place methods: parsed under their own name, before any check of the receiver
    ("tril_", (0.5,), {}), ("addcmul_", (None,), {}), ("addcmul_", (None, None, None, None), {}),
    ("lerp_", (None,), {"weight": 0.5}), ("scatter_add_", (None,), {}), ("masked_fill_", (1.0,), {}),
    ("clamp_", ("a",), {}), ("clip_", ("a",), {}),
]


def _outcome(backend, op, form, args, kwargs):
    x = backend.ones(2, 3, requires_grad=True)
    try:
        if form == "function":
            getattr(backend, op)(x, *args, **kwargs)
        else:
            getattr(x, op)(*args, **kwargs)
    except Exception as error:   # noqa: BLE001 - the outcome under test
        return type(error).__name__, str(error)
    return "ok", None


CASES = [pytest.param(op, form, args, kwargs, id=f"{op}-{form}-{i}")
         for i, (op, args, kwargs) in enumerate(CALLS) for form in ("function", "method")
         if hasattr(torch if form == "function" else torch.Tensor, op)
         and not (form == "function" and op.endswith("_"))]   # the engine has in-place methods only


def _join(backend, kwargs, second=None):
    x = backend.ones(2, 3, requires_grad=True)
    try:
        return "ok", tuple(backend.stack([x, x if second is None else second], **kwargs).shape)
    except Exception as error:   # noqa: BLE001 - the outcome under test
        return type(error).__name__, str(error)


@pytest.mark.parametrize("kwargs, second", [({"axis": 1}, None), ({"axis": 1, "dim": 0}, None),
                                            ({"dim": None}, None), ({}, 2.0), ({"dim": 1.5}, None)])
def test_numpy_keyword_names_are_torchs(kwargs, second):
    assert _join(engine, kwargs, second) == _join(torch, kwargs, second)


def test_numpy_keyword_names_reach_the_op():
    x = torch.arange(6.0).reshape(2, 3)
    got = engine.tensor(x.tolist()).sum(axis=1, keepdims=True)
    assert got.tolist() == x.sum(axis=1, keepdims=True).tolist()


@pytest.mark.parametrize("op, form, args, kwargs", CASES)
def test_bad_arguments_raise_torchs_error(op, form, args, kwargs):
    # A few calls torch accepts are here on purpose (None where a default is None, a bool
    # past the first element of an int list): the engine must accept them too.
    assert _outcome(engine, op, form, args, kwargs) == _outcome(torch, op, form, args, kwargs)


@pytest.mark.parametrize("call", [
    lambda b, x: b.add(x, x, alpha=b.tensor(2.0)), lambda b, x: b.add(x, x, alpha=b.tensor(2)),
    lambda b, x: b.add(x, x, alpha=b.tensor([2.0])), lambda b, x: b.add(x, x, alpha=b.tensor(2.0, requires_grad=True)),
    lambda b, x: b.clamp(x, b.tensor(0.0), 2.0), lambda b, x: b.clamp(x, b.tensor(0.0, requires_grad=True), 2.0),
    lambda b, x: b.nan_to_num(x, b.tensor(1.0)), lambda b, x: b.nan_to_num(x, b.tensor([1.0])),
    lambda b, x: x.unsqueeze(b.tensor(0)), lambda b, x: x.unsqueeze(b.tensor([0])), lambda b, x: x.sum(b.tensor([0])),
    lambda b, x: b.clamp_min(x, b.tensor(0.5)), lambda b, x: x.copy_(1.5), lambda b, x: x.copy_(b.tensor(2.0)),
])
def test_tensors_as_numbers(call):
    # A tensor passes for a number (or an int) only when 0-d and not requiring grad.
    def outcome(backend):
        try:
            return "ok", call(backend, backend.ones(2, 3)).tolist()
        except Exception as error:   # noqa: BLE001 - the outcome under test
            return type(error).__name__, str(error)
    assert outcome(engine) == outcome(torch)


@pytest.mark.parametrize("call", [
    lambda b, x: x.to(b.float64), lambda b, x: x.to("cpu"), lambda b, x: x.to("cpu", b.int64),
    lambda b, x: x.to(b.ones(2, dtype=b.int64)), lambda b, x: x.to(dtype=b.float64, copy=True),
    lambda b, x: x.to(tensor=b.ones(1, dtype=b.float64)), lambda b, x: x.to(None), lambda b, x: x.to(1.5),
    lambda b, x: x.to(True), lambda b, x: x.to("cpu", "a"), lambda b, x: x.to(dtype="a"),
    lambda b, x: x.to(b.float64, foo=1), lambda b, x: x.split(None), lambda b, x: x.split(b.tensor(1)),
    lambda b, x: x.split(b.tensor([1, 1])), lambda b, x: b.split(x, 1, None), lambda b, x: b.split(None, 1),
    lambda b, x: b.split("a", 1), lambda b, x: x.split([1, 1], dim=0), lambda b, x: x.split(1.5),
])
def test_overloads_of_python_methods(call):
    # Tensor.to's three overloads; torch.split / Tensor.split (Python) and the natives they call
    def outcome(backend):
        x = backend.ones(2, 3)
        try:
            out = call(backend, x)
            return "ok", [str(t.dtype) for t in (out if isinstance(out, tuple) else (out,))]
        except Exception as error:   # noqa: BLE001 - the outcome under test
            return type(error).__name__, str(error)
    assert outcome(engine) == outcome(torch)


def _call_outcome(call, backend):
    """What `call(backend)` gives: its values, or the type and message of what it raised."""
    try:
        return "ok", call(backend).tolist()
    except Exception as error:   # noqa: BLE001 - the outcome under test
        return type(error).__name__, str(error)


@pytest.mark.parametrize("call", [
    lambda b: b.tensor([1, 2]).bitwise_and_(b.tensor([1.0, 2.0])), lambda b: b.tensor([1, 2]).bitwise_and_(1.5),
    lambda b: b.tensor([1.0, 2.0]).bitwise_or_(1), lambda b: b.tensor([1, 2]).bitwise_xor_(b.tensor([1, 2, 3])),
    lambda b: b.tensor([True]).bitwise_or_(2), lambda b: b.where(b.ones(2, 3) > 0, b.ones(2), b.ones(2, 3)),
    lambda b: b.where(b.ones(2, 1) > 0, b.ones(3), b.ones(4)), lambda b: b.ones(2, 3).unflatten(1, b.tensor([1, 3])),
    lambda b: b.ones(4).narrow(0, b.tensor([1]), 2), lambda b: b.ones(4).narrow(0, b.tensor(True), 2),
    lambda b: b.ones(2, 4).masked_fill_(b.ones(4), b.ones(2)), lambda b: b.ones(2, 4).masked_fill_(b.ones(3), 1.0),
    lambda b: b.ones(2, 3).var(0, 0, 0, 0),
])
def test_which_check_fails_first(call):
    # In-place ops, where, unflatten, narrow, varargs: the check torch makes first raises.
    assert _call_outcome(call, engine) == _call_outcome(call, torch)


@pytest.mark.parametrize("call", [
    lambda b: b.norm(None), lambda b: b.norm(b.ones(2, 3), 2, 1, 1), lambda b: b.ones(2, 3).norm(foo=1),
    lambda b: b.ones(2, 3).norm(2, 1, 1), lambda b: b.ones(2, 3).norm(2, 1.5), lambda b: b.ones(2, 3).norm("a"),
    lambda b: b.ones(2, 3).norm(2, dim=(0, 1), keepdim=True, dtype=b.float64), lambda b: b.ones(2, 3).norm(None, 1.5),
    lambda b: b.ones(2, 3, 4).norm("fro", (0, 1, 2)), lambda b: b.ones(2, 3).norm("fro", 1.5),
    lambda b: b.ones(2, 3).norm(None, 1), lambda b: b.ones(2, 3).norm("fro", [1]),
])
def test_norm_arguments_as_torchs_python(call):
    # torch.norm / Tensor.norm are Python: input.layout first, then linalg.vector_norm's parser
    assert _call_outcome(call, engine) == _call_outcome(call, torch)
