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


# ---- format 2: every new kind of step and action round-trips, and format 1 still reads ----

from fuzz.program import (DETACH, DOUBLE_BACKWARD, REGISTER_HOOK, REPEATED_BACKWARD, RETAIN_GRAD, SETITEM,  # noqa: E402
                          Dots, DType, Seq, Slice)


def feature_programs() -> dict[str, Program]:
    """One small program per step or action kind that format 2 added."""
    x = Input("x0", (2, 3), "float32", [[1.0, -2.0, 0.5], [-0.0, 3.0, 2.0]], True)
    mask = Input("x1", (2, 3), "bool", [[True, False, True], [False, False, True]], False)
    index = Input("x1", (2,), "int64", [0, 0], False)
    mul = Step("mul", "function", (Ref("x0"), Literal(2.0)), {}, "v0")
    return {
        "inplace": Program((x,), (mul, Step("add", "inplace", (Ref("v0"), Literal(1.0)), {"alpha": 2.0}, "v1")),
                           Action(SUM_BACKWARD, "v1")),
        "inplace-kind": Program((x,), (mul, Step("fill_", "method", (Ref("v0"), Literal(0.5)), {}, "v1")),
                                Action(SUM_BACKWARD, "v1")),
        "setitem": Program((x, index), (mul, Step(SETITEM, "method", (Ref("v0"), Ref("x1"), Literal(-1.0)), {},
                                                                "v1")),
                           Action(SUM_BACKWARD, "v1")),
        "inplace-on-leaf": Program((x,), (Step("exp", "inplace", (Ref("x0"),), {}, "v0"),), Action(SUM_BACKWARD, "v0")),
        "detach": Program((x,), (mul, Step(DETACH, "method", (Ref("v0"),), {}, "v1"),
                                 Step("mul", "operator", (Ref("v1"), Ref("x0")), {}, "v2")), Action(SUM_BACKWARD, "v2")),
        "no_grad": Program((x,), (Step("exp", "function", (Ref("x0"),), {}, "v0", no_grad=True),
                                  Step("mul", "function", (Ref("v0"), Ref("x0")), {}, "v1")), Action(SUM_BACKWARD, "v1")),
        "hook": Program((x,), (mul, Step(REGISTER_HOOK, "method", (Ref("v0"), Literal(-1.0)), {}, "v1"),
                               Step("exp", "function", (Ref("v1"),), {}, "v2")), Action(SUM_BACKWARD, "v2")),
        "retain_grad": Program((x,), (mul, Step(RETAIN_GRAD, "method", (Ref("v0"),), {}, "v1"),
                                      Step("tanh", "method", (Ref("v1"),), {}, "v2")), Action(SUM_BACKWARD, "v2")),
        "structured": Program((x, mask), (
            Step("__getitem__", "method", (Ref("x0"), Seq((Dots(), Slice(0, 2)))), {}, "v0"),
            Step("where", "function", (Ref("x1"), Ref("x0"), Literal(0.0)), {}, "v1"),
            Step("cat", "function", (Seq((Ref("v1"), Ref("x0")), "list"),), {"dim": 1}, "v2"),
            Step("einsum", "function", (Literal("ij->j"), Ref("v2")), {}, "v3"),
            Step("sum", "method", (Ref("v3"),), {"dtype": DType("float64")}, "v4"),
            Step("mT", "property", (Ref("x0"),), {}, "v5"),
            Step("max", "method", (Ref("v5"), Literal(1)), {}, "v6"),
            Step("__getitem__", "method", (Ref("v6"), Literal(0)), {}, "v7"),
            Step("mul", "function", (Ref("v7"), Ref("v4")), {}, "v8")), Action(SUM_BACKWARD, "v8")),
        "repeated-retained": Program((x,), (Step("exp", "function", (Ref("x0"),), {}, "v0"),),
                                     Action(REPEATED_BACKWARD, "v0", retain_graph=True)),
        "repeated-freed": Program((x,), (Step("exp", "function", (Ref("x0"),), {}, "v0"),),
                                  Action(REPEATED_BACKWARD, "v0", retain_graph=False)),
        "double": Program((x,), (Step("tanh", "function", (Ref("x0"),), {}, "v0"),), Action(DOUBLE_BACKWARD, "v0")),
        "grad-then-backward-freed": Program((x,), (Step("exp", "function", (Ref("x0"),), {}, "v0"),),
                                            Action(REPEATED_BACKWARD, "v0", retain_graph=False, first_grad=True)),
        "grad-then-backward-retained": Program((x,), (Step("exp", "function", (Ref("x0"),), {}, "v0"),),
                                               Action(REPEATED_BACKWARD, "v0", retain_graph=True, first_grad=True)),
    }


@pytest.mark.parametrize("name", list(feature_programs()))
def test_every_step_and_action_kind_round_trips(name):
    program = feature_programs()[name]
    back = through_json(program)
    assert back == program and back.to_json() == program.to_json() and back.to_json()["format"] == 3


def test_only_a_repeated_backward_starts_with_autograd_grad():
    program = feature_programs()["double"]
    with pytest.raises(ValueError, match="first_grad is for 'repeated_backward' only"):
        Program(program.inputs, program.steps, Action(DOUBLE_BACKWARD, "v0", first_grad=True))
    assert "first_grad" not in feature_programs()["repeated-freed"].to_json()["action"]  # files as before


def test_format_1_files_still_load():
    stored = {"format": 1, "inputs": [{"name": "x0", "shape": [2], "dtype": "float32", "values": [1.0, "nan"],
                                       "requires_grad": True}],
              "steps": [{"op": "sum", "form": "method", "args": [{"ref": "x0"}], "kwargs": {"dim": [0]},
                         "out": "v0"}],
              "action": {"kind": "sum_backward", "target": "v0"}}
    program = Program.from_json(stored)
    assert program.steps[0].kwargs == {"dim": (0,)} and program.format == 3
    assert Program.from_json(program.to_json()) == program
    with pytest.raises(ValueError, match="format 4 is not supported"):
        Program.from_json({**stored, "format": 4})


def test_pruning_keeps_in_place_ops_and_hooks_on_what_the_target_reads():
    x = Input("x0", (2,), "float32", [1.0, 2.0], True)
    program = Program((x,), (Step("exp", "function", (Ref("x0"),), {}, "v0"),
                             Step("sin", "function", (Ref("x0"),), {}, "v1"),          # dead
                             Step("mul", "inplace", (Ref("v0"), Literal(2.0)), {}, "v2"),  # changes v0 after use
                             Step("exp", "function", (Ref("v0"),), {}, "v3")),
                      Action(SUM_BACKWARD, "v3"))
    assert [step.op for step in program.pruned().steps] == ["exp", "mul", "exp"]
