"""Integer and bool operands swept over every op of the table: the engine does what torch does.

For every op, in each of its call forms (function, Tensor method, in-place method), each
sample call of the op's table entry is rerun with its floating tensor arguments turned
into int64 or bool tensors: one argument at a time, and all of them at once. Both
backends run the call, then (when a floating output requires grad) a backward of its
sum, plain and with create_graph, then a second backward through the first's graph;
the outcomes must be the same:
the exception type and message (normalized as the fuzzer's comparator does), or the
result's dtype, shape, values, requires_grad and node name, and each leaf's gradient.

Values: an int64 argument holds the sample's drawn values doubled and rounded away from
zero (a nonzero or positive domain stays so), a bool argument says where they are positive.

The calls of one op and form are one test case. `KNOWN` lists the cases that still differ,
each with the reason; they are strict xfails, so a case that comes to agree fails until
it is taken off the list. Run this file as a script to print every differing call.
"""
from __future__ import annotations

import itertools
import sys
import warnings

import numpy as np
import pytest
import torch

import engine
from engine import optable
from engine.optable import T
from oracle import normalize_message
from test_arg_sweep import (FUNCTION_FORM, INPLACE_FORM, assert_no_differences, print_differences, sweep_forms,
                            sweep_param, sweep_target)
from test_ops_against_torch import NO_GRAD, RNG_SEED, _values, samples

INTEGRAL = ("int64", "bool")
AS = "as "   # `T(dtype="as int64")`: a floating sample tensor turned integral

# (op name, form) -> why the engine still differs from torch there.
KNOWN: dict[tuple[str, str], str] = {}


def _floating_slots(arg, path=()):
    """Where a sample argument holds a tensor of the dtype under test: paths into nested lists."""
    if isinstance(arg, (list, tuple)):
        return [p for i, a in enumerate(arg) for p in _floating_slots(a, path + (i,))]
    return [path] if isinstance(arg, T) and arg.dtype in (None, NO_GRAD) else []


def _replace(arg, path, dtype):
    if not path:
        return T(arg.shape, AS + dtype, arg.values, arg.domain)
    items = list(arg)
    items[path[0]] = _replace(items[path[0]], path[1:], dtype)
    return type(arg)(items)


def variants(args, kwargs):
    """(label, args, kwargs) of a sample with integral tensors in place of floating ones."""
    slots = [("arg", i, p) for i, a in enumerate(args) for p in _floating_slots(a)]
    slots += [("kw", k, p) for k, v in kwargs.items() for p in _floating_slots(v)]
    choices = [[slot] for slot in slots] + ([slots] if len(slots) > 1 else [])
    out = []
    for chosen, dtype in itertools.product(choices, INTEGRAL):
        new_args, new_kwargs = list(args), dict(kwargs)
        for where, key, path in chosen:
            if where == "arg":
                new_args[key] = _replace(new_args[key], path, dtype)
            else:
                new_kwargs[key] = _replace(new_kwargs[key], path, dtype)
        label = "+".join(f"{key}{''.join(f'[{i}]' for i in path)}" for _, key, path in chosen)
        out.append((f"{label}={dtype}", tuple(new_args), new_kwargs))
    return out


# What replaces a call's numbers (and the op's float keywords, as alpha) in receiver_variants:
# as sampled, zero (with zero tensors: a division by zero), a float, a bool.
_NUMBERS = (None, 0, 0.5, True)


def _is_number(value) -> bool:
    return isinstance(value, (bool, int, float))


def receiver_variants(op, args, kwargs):
    """(label, args, kwargs) of in-place calls whose receiver cannot hold the call's result
    dtype: a bool receiver with the other tensors int64, an int64 receiver with them
    floating; each with the call's numbers (and the op's float keywords, as alpha) as
    sampled, 0 (the other tensors zeros), 0.5 and True. Torch refuses the result dtype as
    it builds its iterator, before the op's own checks of the numbers and its kernel's of
    the values (an integer division by zero)."""
    if not (args and isinstance(args[0], T)):
        return []
    out = []
    for receiver, others, number in itertools.product(INTEGRAL[::-1], (None, "int64"), _NUMBERS):
        if (receiver == "bool") != (others == "int64"):
            continue
        zeros = number == 0

        def other(arg):
            if isinstance(arg, (list, tuple)):
                return type(arg)(other(a) for a in arg)
            if isinstance(arg, T) and (arg.dtype in (None, NO_GRAD, "int64")):
                values = np.zeros(arg.shape).tolist() if zeros else arg.values
                dtype = AS + others if others and arg.dtype != "int64" else arg.dtype
                return T(arg.shape, dtype, values, arg.domain)
            return number if number is not None and _is_number(arg) else arg

        new_args = (T(args[0].shape, AS + receiver, args[0].values, args[0].domain),
                    *(other(a) for a in args[1:]))
        new_kwargs = {k: other(v) for k, v in kwargs.items()}
        if number is not None:
            new_kwargs.update({k: number for k, kind in op.kwargs.items() if kind == "float" and k not in kwargs})
        out.append((f"receiver={receiver} others={others or 'as sampled'} numbers={number}", new_args, new_kwargs))
    return out


def _integral(values, dtype):
    if dtype == "bool":
        return values > 0
    with np.errstate(invalid="ignore"):    # (NaN sample values: any integer will do)
            return np.where(values >= 0, np.ceil(2 * values), np.floor(2 * values)).astype(np.int64)


def _build(backend, arg, rng):
    if isinstance(arg, (list, tuple)):
        return type(arg)(_build(backend, a, rng) for a in arg)
    if not isinstance(arg, T):
        return arg
    dt_name = "float32" if arg.dtype in (None, NO_GRAD) else arg.dtype
    data = np.asarray(arg.values) if arg.values is not None else _values(arg.shape, arg.domain, rng)
    if dt_name.startswith(AS):
        dt_name = dt_name[len(AS):]
        data = _integral(data.astype(float), dt_name)
    grad = arg.dtype is None
    return backend.tensor(data.tolist(), dtype=getattr(backend, dt_name), requires_grad=grad)


def _tensors(out):
    if isinstance(out, (tuple, list)):
        return [t for item in out for t in _tensors(item)]
    return [out] if hasattr(out, "dtype") else []


def _error(error):
    return type(error).__name__, normalize_message(str(error))


def _describe(t):
    """What is compared of a result tensor: dtype, shape, requires_grad, node name, values."""
    values = t.numpy(force=True)   # (ZeroTensors)
    return (str(t.dtype), tuple(t.shape), t.requires_grad,
            t.grad_fn.name() if t.grad_fn is not None else None, _Values(values))


class _Values:
    """A result's values, equal to another's within float32's assert_close tolerances (rounding
    is not under test here), NaN equal to NaN."""

    def __init__(self, values: np.ndarray):
        self.values = values

    def __eq__(self, other) -> bool:
        a, b = self.values, other.values
        if a.dtype != b.dtype or a.shape != b.shape:
            return False
        if a.dtype.kind != "f":
            return bool(np.array_equal(a, b))
        return bool(np.allclose(a, b, rtol=1.3e-6, atol=1e-5, equal_nan=True))

    def __repr__(self) -> str:
        return repr(np.round(self.values, 4).tolist() if self.values.dtype.kind == "f" else self.values.tolist())


def outcome(backend, op, form, args, kwargs):
    """Everything observable of one call and its backwards, as plain data."""
    rng = np.random.default_rng(RNG_SEED)
    args = tuple(_build(backend, a, rng) for a in args)
    kwargs = {k: getattr(backend, v) if k == "dtype" else _build(backend, v, rng) for k, v in kwargs.items()}
    leaves = [t for t in _tensors([*args, *kwargs.values()]) if t.requires_grad]
    if form == INPLACE_FORM and args and hasattr(args[0], "dtype"):
        args = ((args[0] * 1 if args[0].requires_grad else args[0].clone()),) + args[1:]
    result = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            outs = _tensors(sweep_target(backend, op, form)(*args, **kwargs))
        result.append([_describe(t) for t in outs])
        graded = [t for t in outs if t.requires_grad]
        if not graded:
            return result
        total = sum(t.sum() for t in graded)
        # (a plain backward computes on arrays, one with create_graph on tensors: both are compared)
        grads = backend.autograd.grad(total, leaves, allow_unused=True, retain_graph=True)
        result.append([None if g is None else _describe(g)[:2] + _describe(g)[4:] for g in grads])
        for order in ("first", "second"):
            grads = backend.autograd.grad(total, leaves, allow_unused=True, create_graph=True)
            result.append([None if g is None else _describe(g)[:2] + _describe(g)[4:] for g in grads])
            graded = [g for g in grads if g is not None and g.requires_grad]
            if not graded:
                break
            total = sum(g.sum() for g in graded)
    except Exception as error:   # noqa: BLE001 - the outcome under test
        result.append(_error(error))
    return result


def differences(op, form) -> list:
    """The integral calls of one op and form whose outcomes differ: (label, torch, engine)."""
    found = []
    for index, (args, kwargs) in enumerate(samples(op)):
        if form != FUNCTION_FORM and not (args and isinstance(args[0], T)):
            continue
        more = receiver_variants(op, args, kwargs) if form == INPLACE_FORM else []
        for label, new_args, new_kwargs in variants(args, kwargs) + more:
            expected = outcome(torch, op, form, new_args, new_kwargs)
            got = outcome(engine, op, form, new_args, new_kwargs)
            if got != expected:
                found.append((f"sample {index} {label}", expected, got))
    return found


CASES = [(op, form) for op in optable.OPS if op.kind != optable.FACTORY and samples(op)
         for form in sweep_forms(op, properties=True)]


@pytest.mark.parametrize("op, form", [sweep_param(op, form, KNOWN) for op, form in CASES])
def test_integral_operands_as_torch(op, form):
    assert_no_differences(differences(op, form))


# Calls no sample of the table makes: (label, program on a backend module).
def _int_requiring_grad(m):
    """An int64 tensor left in a graph by an in-place comparison with a tensor that requires grad."""
    return m.tensor([1, 2, 3]).eq_(m.tensor([1.5, 2.0, 3.0], requires_grad=True))


def _setitem(m, index):
    x = m.tensor([1, 2, 3])
    x[index] = m.tensor(2.5, requires_grad=True) * 1
    return x


def _setitem_none(m):
    x = m.tensor(3)
    x[None] = m.tensor(2.5, requires_grad=True) * 1
    return x


def _lerp_weight_grad(m):
    weight = m.tensor(0.5, requires_grad=True)
    m.lerp(m.tensor([3, 1]), m.tensor([1, 4]), weight).sum().backward()
    return weight.grad


PROGRAMS = [
    ("clamp of bool, min only", lambda m: m.clamp(m.tensor([True, False]), min=True)),
    ("clamp of bool, max only", lambda m: m.clamp(m.tensor([True, False]), max=True)),
    ("clamp_ of bool to an int bound", lambda m: m.tensor([True]).clamp_(max=2)),
    ("clamp_ of int64 to float bounds", lambda m: m.tensor([1, 2]).clamp_(1.5, 3)),
    ("clamp_ of int64 to a float 0-d tensor", lambda m: m.tensor([1, 2]).clamp_(m.tensor(0.5))),
    ("clamp_max_ of bool to an int", lambda m: m.tensor([True, False]).clamp_max_(1)),
    ("clamp of bool to bool tensors", lambda m: m.clamp(m.tensor([True]), m.tensor([False]), m.tensor([True]))),
    ("int64 ** negative int64 tensor", lambda m: m.tensor([-2, -1, 0, 1, 2, -1]) ** m.tensor([-1, -1, -1, -1, -2, -3])),
    ("number ** negative int64 tensor", lambda m: 2 ** m.tensor([-1, 2])),
    ("int64 ** negative number", lambda m: m.tensor([2]) ** -1),
    ("mean of int64 over a repeated dim (the dtype is refused first)", lambda m: m.mean(m.tensor([1, 2]), dim=(0, 0))),
    ("mean of bool over a dim out of range", lambda m: m.tensor([True]).mean(dim=3)),
    ("dropout of int64, p = 1", lambda m: m.nn.functional.dropout(m.tensor([1, 2]), 1.0)),
    ("dropout of bool, p = 0.3", lambda m: m.nn.functional.dropout(m.tensor([True]), 0.3)),
    ("lerp of int64 with a 0-d float weight", lambda m: m.lerp(m.tensor([3, 1]), m.tensor([1, 2]), m.tensor(0.5))),
    ("lerp_ of int64 with a 0-d float weight", lambda m: m.tensor([3]).lerp_(m.tensor([1]), m.tensor(0.5))),
    ("lerp of bool with a 0-d bool weight", lambda m: m.lerp(m.tensor([True]), m.tensor([False]), m.tensor(True))),
    ("lerp of int64 with a 0-d float weight, backward", _lerp_weight_grad),
    ("linear of bool with bias", lambda m: m.nn.functional.linear(m.tensor([[True]]), m.tensor([[True]]), m.tensor([True]))),
    ("layer_norm of int64, int64 weight, float bias", lambda m: m.nn.functional.layer_norm(
        m.tensor([[1, 2]]), (2,), m.tensor([1, 1]), m.tensor([0.0, 1.0]))),
    ("bce_with_logits with bool pos_weight", lambda m: m.nn.functional.binary_cross_entropy_with_logits(
        m.tensor([0.5]), m.tensor([1.0]), pos_weight=m.tensor([True]))),
    ("copy_ of a tensor that requires grad into int64", lambda m: m.tensor([1, 2]).copy_(
        m.tensor([1.5, 2.5], requires_grad=True))),
    ("addcdiv backward, int64 tensor2", lambda m: m.addcdiv(
        m.zeros(2), m.tensor([1.0, 2.0], requires_grad=True), m.tensor([1, 2]), value=-0.5).sum().backward()),
    ("lerp backward, 0-d bool weight", lambda m: m.lerp(
        m.tensor([1.0, 2.0], requires_grad=True), m.tensor([0.0, 1.0]), m.tensor(False)).sum().backward()),
    ("an in-place comparison leaves int64 in the graph", _int_requiring_grad),
    ("sum of int64 in the graph", lambda m: _int_requiring_grad(m).sum()),
    ("clone of int64 in the graph", lambda m: _int_requiring_grad(m).clone()),
    ("cumprod of int64 in the graph", lambda m: m.cumprod(_int_requiring_grad(m), -1)),
    ("cumsum of int64 in the graph", lambda m: m.cumsum(_int_requiring_grad(m), 0)),
    ("prod of int64 in the graph", lambda m: m.prod(_int_requiring_grad(m), 0)),
    ("cumsum of a float that requires grad into int64", lambda m: m.cumsum(
        m.tensor([1.5, 2.0], requires_grad=True), 0, dtype=m.int64)),
    ("prod of a float that requires grad into int64", lambda m: m.prod(m.tensor([1.5, 2.0], requires_grad=True),
                                                                       dtype=m.int64)),
    ("int64 in the graph times a float", lambda m: _int_requiring_grad(m) * 2.5),
    ("int64 in the graph, mul_ in place", lambda m: _int_requiring_grad(m).mul_(2)),
    ("backward from int64 in the graph", lambda m: _int_requiring_grad(m).backward(m.ones(3, dtype=m.int64))),
    ("backward through int64 in the graph", lambda m: (_int_requiring_grad(m) * 2.5).sum().backward()),
    ("create_graph backward through int64 in the graph", lambda m: (_int_requiring_grad(m) * 2.5).sum().backward(
        create_graph=True)),
    ("setitem of an int64 0-d tensor (fill_) from a value that requires grad", _setitem_none),
    ("setitem of int64 by a mask from a value that requires grad", lambda m: _setitem(m, m.tensor([True, False, True]))),
    ("setitem of int64 at an int from a value that requires grad (copy_)", lambda m: _setitem(m, 0)),
    ("fill_ of int64 with a value that requires grad", lambda m: m.tensor([1, 2]).fill_(
        m.tensor(2.5, requires_grad=True) * 1)),
    ("zero_ of int64 in the graph", lambda m: _int_requiring_grad(m).zero_()),
    # An in-place op's tensor that cannot hold the result dtype: torch refuses that first,
    # before the op's own checks (alpha) and its kernel's (division by zero, no bool lerp).
    ("add_ of bool, a number and a float alpha", lambda m: m.tensor([True]).add_(0, alpha=0.77)),
    ("sub_ of int64, a float tensor and a bool alpha", lambda m: m.tensor([1]).sub_(m.tensor([0.5]), alpha=True)),
    ("floor_divide_ of bool by 0", lambda m: m.tensor([True]).floor_divide_(0)),
    ("div_ of bool by 0, rounding down", lambda m: m.tensor([True]).div_(0, rounding_mode="floor")),
    ("remainder_ of bool by an int64 0", lambda m: m.tensor([True]).remainder_(m.tensor([0]))),
    ("lerp_ of bool with a 0-d int64 weight", lambda m: m.tensor([True]).lerp_(m.tensor([False]), m.tensor(0))),
    ("xlogy_ of bool by an int64: the float result type", lambda m: m.tensor([True]).xlogy_(m.tensor([2]))),
    ("div_ of bool by an int64: the float result type", lambda m: m.tensor([True]).div_(m.tensor([0]))),
    ("bitwise_and_ of int64 with a float", lambda m: m.tensor([1]).bitwise_and_(1.5)),
    ("eq_ of bool with a float (a comparison writes any result)", lambda m: m.tensor([True]).eq_(1.5)),
    # Before those: every operand must broadcast to the tensor's shape, not only the first.
    ("addcmul_ of bool with a wider tensor2", lambda m: m.tensor([True, False]).addcmul_(
        m.tensor([True, True]), m.ones(3, 2, dtype=m.bool))),
    ("addcdiv_ of bool with a wider float tensor2", lambda m: m.tensor([True, False]).addcdiv_(
        m.ones(2), m.ones(3, 2))),
    ("lerp_ of int64 with a wider weight", lambda m: m.tensor([1, 2]).lerp_(m.tensor([3, 4]), m.ones(3, 2, dtype=m.int64))),
    ("masked_fill_ of int64 by a value that requires grad", lambda m: m.tensor([1, 2]).masked_fill_(
        m.tensor([True, False]), m.tensor(2.5, requires_grad=True))),
]


def _program_outcome(backend, program):
    try:
        out = program(backend)
    except Exception as error:   # noqa: BLE001 - the outcome under test
        return _error(error)
    return None if out is None else _describe(out)


@pytest.mark.parametrize("program", [pytest.param(p, id=label) for label, p in PROGRAMS])
def test_integral_programs_as_torch(program):
    assert _program_outcome(engine, program) == _program_outcome(torch, program)


if __name__ == "__main__":   # python test_integer_operands.py [op ...]
    print_differences(CASES, differences, sys.argv[1:])
