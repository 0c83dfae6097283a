"""Largest absolute and relative errors between two outcomes, computed from their data."""

from __future__ import annotations

import math

from reports.diff import Worst, differences
from reports_testkit import outcome, tensor


def one(tested, reference, subject="v1"):
    [found] = [d for d in differences(outcome(values=[{**tested, "ref": "v1"}]),
                                      outcome(values=[{**reference, "ref": "v1"}])) if d.subject == subject]
    return found


def test_largest_absolute_and_relative_errors_can_be_at_different_places():
    d = one(tensor([[100.0, 1.0], [5.0, 0.5]], [2, 2]), tensor([[90.0, 1.0], [5.0, 0.25]], [2, 2]))
    assert (d.differing, d.size, d.shape) == (2, 4, (2, 2))
    assert d.absolute == Worst(10.0, (0, 0), 100.0, 90.0)
    assert d.relative == Worst(1.0, (1, 1), 0.5, 0.25)


def test_nan_equals_nan_and_infinities_equal_by_sign():
    d = one(tensor(["nan", "inf", "-inf", 1.0], [4]), tensor(["nan", "inf", "-inf", 1.0], [4]))
    assert d.differing == 0 and d.absolute is None
    d = one(tensor(["nan", "inf", 2.0], [3]), tensor([1.0, "-inf", 2.0], [3]))
    assert d.differing == 2
    assert d.absolute.error == math.inf and d.absolute.index == (0,)  # the first of the infinite errors
    assert math.isnan(d.absolute.tested)


def test_relative_error_against_a_zero_reference_is_infinite():
    d = one(tensor([1e-9, 0.0], [2]), tensor([0.0, 0.0], [2]))
    assert d.relative == Worst(math.inf, (0,), 1e-9, 0.0)
    assert d.absolute.error == 1e-9


def test_problems_instead_of_numbers():
    assert one(tensor([1.0], [1]), tensor([1.0, 2.0], [2])).problem == "shapes differ: (1,) vs (2,)"
    grads = differences(outcome(grads={"x0": None, "x1": tensor([1.0], [1])}),
                        outcome(grads={"x0": tensor([1.0], [1]), "x1": None}))
    assert [(d.subject, d.problem) for d in grads] == [
        ("grad x0", "None on the tested backend only"), ("grad x1", "None on torch only")]
    assert [d.dtypes for d in grads] == [(None, "float32"), ("float32", None)]


def test_errors_and_one_sided_values_are_not_compared_as_numbers():
    tested = outcome(values=[{"ref": "v1", "error": {"type": "RuntimeError", "message": "no"}},
                             tensor([1.0], [1], ref="v2")])
    reference = outcome(values=[tensor([1.0], [1], ref="v1")])
    assert differences(tested, reference) == []
    assert differences(None, reference) == []


def test_differing_tensors_first_largest_first_then_program_order():
    tested = outcome(values=[tensor([1.0], [1], ref="v1"), tensor([1.0], [1], ref="v2")],
                     grads={"x0": tensor([3.0], [1]), "x1": tensor([10.0], [1])})
    reference = outcome(values=[tensor([1.0], [1], ref="v1"), tensor([1.0], [1], ref="v2")],
                        grads={"x0": tensor([1.0], [1]), "x1": tensor([0.0], [1])})
    assert [d.subject for d in differences(tested, reference)] == ["grad x1", "grad x0", "v1", "v2"]


def test_integer_bool_and_empty_tensors():
    assert one(tensor([1, 2], [2], "int64"), tensor([1, 3], [2], "int64")).absolute == Worst(1.0, (1,), 2.0, 3.0)
    assert one(tensor([True], [1], "bool"), tensor([False], [1], "bool")).differing == 1
    empty = one(tensor([], [0, 3]), tensor([], [0, 3]))
    assert (empty.shape, empty.differing, empty.absolute) == ((0, 3), 0, None)
