"""The Program IR: validation, pruning, and an exact JSON round-trip."""
import json
import math

import pytest
from hypothesis import given

from fuzz.program import (BACKWARD, BACKWARD_GRADIENT, SUM_BACKWARD, Action, Input, Literal, Program, Ref, Step,
                          decode_values, encode_values)
from fuzz.strategies import programs


def through_json(program: Program) -> Program:
    return Program.from_json(json.loads(json.dumps(program.to_json(), allow_nan=False)))


@given(programs())
def test_json_round_trip_is_exact(program):
    # allow_nan=False proves the JSON is standard (non-finite floats are strings).
    assert through_json(program).to_json() == program.to_json()
    assert through_json(program) == program or _has_nan(program)


def _has_nan(program: Program) -> bool:
    values = [tensor.values for tensor in program.inputs] + [program.action.gradient]
    return "nan" in json.dumps(encode_values(values))


def test_non_finite_values_and_negative_zero_survive_json():
    values = [[math.nan, math.inf], [-math.inf, -0.0]]
    program = Program(
        inputs=(Input("x0", (2, 2), "float64", values, True),),
        steps=(Step("pow", "operator", (Literal(-0.5), Ref("x0")), {}, "v0"),
               Step("sum", "method", (Ref("v0"),), {"dim": (0, -1), "keepdim": True}, "v1")),
        action=Action(BACKWARD_GRADIENT, "v1", [[-0.0]]),
    )
    encoded = json.dumps(program.to_json(), allow_nan=False)
    assert '"nan"' in encoded and '"-inf"' in encoded
    back = Program.from_json(json.loads(encoded))
    (first_row, second_row) = back.inputs[0].values
    assert math.isnan(first_row[0]) and first_row[1] == math.inf and second_row[0] == -math.inf
    assert math.copysign(1.0, second_row[1]) == -1.0
    assert math.copysign(1.0, back.action.gradient[0][0]) == -1.0
    assert back.steps[1].kwargs == {"dim": (0, -1), "keepdim": True}
    assert back.steps[0].args[0] == Literal(-0.5)


def test_int_and_float_literals_stay_distinct():
    program = Program((Input("x0", (), "float32", 1.5, True),),
                      (Step("mul", "function", (Ref("x0"), Literal(2)), {}, "v0"),
                       Step("mul", "function", (Ref("v0"), Literal(2.0)), {}, "v1")),
                      Action(SUM_BACKWARD, "v1"))
    literals = [step.args[1].value for step in through_json(program).steps]
    assert [type(value) for value in literals] == [int, float]


@pytest.mark.parametrize("make, message", [
    (lambda: Program((Input("x0", (2,), "float32", [1.0], True),), (), Action(SUM_BACKWARD, "x0")),
     "values have shape"),
    (lambda: Program((Input("x0", (), "float16", 1.0, True),), (), Action(SUM_BACKWARD, "x0")), "dtype"),
    (lambda: Program((Input("x0", (), "float32", 1.0, True),),
                     (Step("neg", "function", (Ref("v3"),), {}, "v0"),), Action(SUM_BACKWARD, "v0")),
     "not defined before"),
    (lambda: Program((Input("x0", (), "float32", 1.0, True),), (), Action("grad", "x0")), "action kind"),
    (lambda: Program((Input("x0", (), "float32", 1.0, True),), (), Action(BACKWARD_GRADIENT, "x0")),
     "gradient is required"),
    (lambda: Program((Input("x0", (), "float32", 1.0, True),),
                     (Step("neg", "prefix", (Ref("x0"),), {}, "v0"),), Action(BACKWARD, "v0")), "form"),
])
def test_malformed_programs_are_rejected_with_a_reason(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_from_json_rejects_missing_fields():
    with pytest.raises(ValueError, match="malformed program"):
        Program.from_json({"inputs": []})
    with pytest.raises(ValueError, match="not a number"):
        decode_values(["1.0"])


def test_pruned_keeps_the_targets_ancestors_renamed_in_order():
    program = Program(
        inputs=(Input("x0", (), "float32", 1.0, True), Input("x1", (), "float32", 2.0, True)),
        steps=(Step("exp", "function", (Ref("x0"),), {}, "v0"),      # dead: the target does not read it
               Step("neg", "function", (Ref("x1"),), {}, "v1"),
               Step("mul", "operator", (Ref("v1"), Literal(3)), {}, "v2")),
        action=Action(SUM_BACKWARD, "v2"),
    )
    pruned = program.pruned()
    assert [tensor.name for tensor in pruned.inputs] == ["x0"] and pruned.inputs[0].values == 2.0
    assert [(step.op, step.args, step.out) for step in pruned.steps] == [
        ("neg", (Ref("x0"),), "v0"), ("mul", (Ref("v0"), Literal(3)), "v1")]
    assert pruned.action.target == "v1"
