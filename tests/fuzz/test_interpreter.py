"""The interpreter on torch: values, errors, gradients and warnings as an Outcome."""
import json

import numpy as np
import pytest
import torch

import oracle
from fuzz import interpreter
from fuzz.program import BACKWARD, BACKWARD_GRADIENT, SUM_BACKWARD, Action, Input, Literal, Program, Ref, Step


def program(steps, action, *, values=(1.0, -2.0), requires_grad=True, dtype="float32"):
    return Program((Input("x0", (len(values),), dtype, list(values), requires_grad),), tuple(steps), action)


def test_records_values_autograd_metadata_and_leaf_gradients():
    outcome = interpreter.run(program([Step("mul", "operator", (Literal(3), Ref("x0")), {}, "v0")],
                                      Action(SUM_BACKWARD, "v0")), torch)
    (result,) = outcome.values
    assert (result.ref, result.value.dtype, result.value.shape) == ("v0", "float32", (2,))
    assert result.value.data.tolist() == [3.0, -6.0]
    assert (result.requires_grad, result.grad_fn) == (True, "MulBackward0")
    assert outcome.error is None and outcome.grads["x0"].data.tolist() == [3.0, 3.0]


def test_backward_on_a_non_scalar_output_records_torchs_error():
    outcome = interpreter.run(program([Step("exp", "function", (Ref("x0"),), {}, "v0")], Action(BACKWARD, "v0")), torch)
    assert outcome.error.where == "action"
    assert (outcome.error.type, outcome.error.message) == (
        "RuntimeError", "grad can be implicitly created only for scalar outputs")
    assert outcome.grads == {"x0": None}


def test_backward_without_requires_grad_records_torchs_error():
    outcome = interpreter.run(program([Step("sum", "method", (Ref("x0"),), {}, "v0")], Action(BACKWARD, "v0"),
                                      requires_grad=False), torch)
    assert outcome.values[0].grad_fn is None and outcome.values[0].requires_grad is False
    assert (outcome.error.type, outcome.error.message, outcome.error.where) == (
        "RuntimeError", "element 0 of tensors does not require grad and does not have a grad_fn", "action")


def test_stops_at_the_first_failing_step():
    steps = [Step("neg", "function", (Ref("x0"),), {}, "v0"),
             Step("matmul", "function", (Ref("v0"), Ref("x1")), {}, "v1"),
             Step("exp", "function", (Ref("v1"),), {}, "v2")]
    failing = Program((Input("x0", (2,), "float32", [1.0, 2.0], True), Input("x1", (3,), "float32", [1.0] * 3, True)),
                      tuple(steps), Action(SUM_BACKWARD, "v2"))
    outcome = interpreter.run(failing, torch)
    assert [result.ref for result in outcome.values] == ["v0", "v1"]
    assert outcome.values[1].error.type == "RuntimeError" and "inconsistent tensor size" in outcome.values[1].error.message
    assert outcome.error.where == "step 1" and outcome.grads == {"x0": None, "x1": None}


def test_explicit_gradient_takes_the_targets_dtype():
    outcome = interpreter.run(program([Step("exp", "method", (Ref("x0"),), {}, "v0")],
                                      Action(BACKWARD_GRADIENT, "v0", [2.0, 0.5]), dtype="float64"), torch)
    assert outcome.grads["x0"].dtype == "float64"
    np.testing.assert_allclose(outcome.grads["x0"].data, [2.0 * np.exp(1.0), 0.5 * np.exp(-2.0)])


def test_warnings_are_recorded_and_the_oracle_drops_cpp_context():
    single = program([Step("std", "function", (Ref("x0"),), {}, "v0")], Action(SUM_BACKWARD, "v0"), values=(1.0,))
    raw = interpreter.run(single, torch).warnings
    normalized = oracle.run_torch(single).warnings
    assert [warning.category for warning in raw] == ["UserWarning"]
    assert "(Triggered internally at" in raw[0].message
    assert normalized[0].message.startswith("std(): degrees of freedom is <= 0.")
    assert "Triggered internally" not in normalized[0].message


def test_outcome_json_has_the_documented_shape():
    failing = program([Step("log", "function", (Ref("x0"),), {}, "v0"),
                       Step("matmul", "operator", (Ref("v0"), Ref("v0")), {}, "v1"),
                       Step("sum", "method", (Ref("v1"),), {"dim": 5}, "v2")], Action(SUM_BACKWARD, "v2"))
    encoded = interpreter.run(failing, torch).to_json()
    json.dumps(encoded, allow_nan=False)
    assert set(encoded) == {"values", "error", "grads", "warnings"}
    log, matmul, total = encoded["values"]
    assert log == {"ref": "v0", "dtype": "float32", "shape": [2], "data": [0.0, "nan"],
                   "requires_grad": True, "grad_fn": "LogBackward0"}
    assert matmul["data"] == "nan" and matmul["shape"] == []
    assert total["ref"] == "v2" and set(total["error"]) == {"type", "message"} and total["error"]["type"] == "IndexError"
    assert encoded["error"]["where"] == "step 2" and encoded["grads"] == {"x0": None}


def test_a_program_the_interpreter_cannot_express_is_not_blamed_on_the_backend():
    no_operator = program([Step("exp", "operator", (Ref("x0"),), {}, "v0")], Action(SUM_BACKWARD, "v0"))
    with pytest.raises(interpreter.ProgramError, match="no 1-operand operator form"):
        interpreter.run(no_operator, torch)


def test_a_hook_on_a_view_whose_alias_changed_in_place_does_not_crash_torch():
    # torch 2.13 segfaults in register_hook on a view whose grad_fn is stale unless grad_fn is
    # read first (as the interpreter does); run in a child process so a crash fails only this test.
    import subprocess
    import sys
    from pathlib import Path
    program = Program(
        (Input("x0", (3,), "float32", [1.0, 2.0, 3.0], True),),
        (Step("mul", "function", (Ref("x0"), Literal(2.0)), {}, "v0"),
         Step("view", "method", (Ref("v0"), Literal(-1)), {}, "v1"),
         Step("detach", "method", (Ref("v1"),), {}, "v2"),
         Step("zero_", "method", (Ref("v2"),), {}, "v3"),
         Step("register_hook", "method", (Ref("v1"), Literal(0.5)), {}, "v4")),
        Action(SUM_BACKWARD, "v4"))
    script = ("import json, sys; from fuzz import interpreter; from fuzz.program import Program; import oracle; "
              "outcome = oracle.run_torch(Program.from_json(json.loads(sys.argv[1]))); "
              "print(outcome.error, outcome.grads['x0'].data.tolist())")
    result = subprocess.run([sys.executable, "-c", script, json.dumps(program.to_json())], capture_output=True,
                            text=True, timeout=120, cwd=Path(__file__).parents[2])
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["None", "[1.0,", "1.0,", "1.0]"]  # 2 * 0.5 per element


def test_a_backend_whose_grad_raises_gives_an_outcome_not_a_crash(monkeypatch):
    import engine

    def grad(self):
        raise RuntimeError("boom")
    monkeypatch.setattr(engine.Tensor, "grad", property(grad))
    program = Program((Input("x0", (2,), "float32", [1.0, 2.0], True),),
                      (Step("exp", "function", (Ref("x0"),), {}, "v0"),), Action(SUM_BACKWARD, "v0"))
    outcome = interpreter.run(program, engine)
    assert (outcome.error.type, outcome.error.message, outcome.error.where) == ("RuntimeError", "boom", "action")


@pytest.mark.parametrize("retain_graph", [False, True])
def test_autograd_grad_that_keeps_the_graph_unasked_is_a_divergence(monkeypatch, retain_graph):
    """autograd.grad frees the graph as backward does (retain_graph defaults to create_graph): a
    backward after it raises torch's error. An engine whose autograd.grad kept the graph anyway
    (an unseen plant of session 11, which no program could show) now diverges; asked to keep it,
    both run the second backward."""
    import engine
    from fuzz.compare import compare
    from fuzz.program import REPEATED_BACKWARD
    program = Program((Input("x0", (3,), "float64", [1.0, 2.0, 3.0], True),),
                      (Step("exp", "function", (Ref("x0"),), {}, "v0"),),
                      Action(REPEATED_BACKWARD, "v0", retain_graph=retain_graph, first_grad=True))
    theirs = oracle.run_torch(program)
    assert (theirs.error is None) == retain_graph and "x0@grad" in theirs.grads
    assert compare(interpreter.run(program, engine), theirs, program, backend=engine).kind == "match"
    grad = engine.autograd.grad   # the plant: retain_graph's default is True, not create_graph

    def kept(*args, retain_graph=None, **kwargs):
        return grad(*args, retain_graph=True if retain_graph is None else retain_graph, **kwargs)
    monkeypatch.setattr(engine.autograd, "grad", kept)
    verdict = compare(interpreter.run(program, engine), theirs, program, backend=engine)
    assert verdict.kind == ("match" if retain_graph else "error-vs-success")


def test_the_builder_starts_some_repeated_backwards_with_autograd_grad():
    import itertools
    import random
    from fuzz.program import REPEATED_BACKWARD
    from fuzz.strategies import fast_examples
    repeated = [program.action for program, _, _ in itertools.islice(fast_examples(random.Random(0)), 1500)
                if program.action.kind == REPEATED_BACKWARD]
    first_grad = [action for action in repeated if action.first_grad]
    # 1 in 3 of them (FIRST_GRAD_ONE_IN), with and without retain_graph
    assert 0.2 < len(first_grad) / len(repeated) < 0.5, (len(first_grad), len(repeated))
    assert {action.retain_graph for action in first_grad} == {False, True}


@pytest.mark.parametrize("backend_name", ["torch", "engine", "rolled_torch"])
def test_a_zerotensor_gradient_and_a_result_that_requires_grad_are_recorded_as_their_arrays(backend_name):
    """abs'' is torch's ZeroTensor, which refuses .numpy(); it is recorded as zeros of its dtype, and a
    result that requires grad as its values, copied (a later in-place op does not change the record)."""
    import importlib

    from fuzz.program import DOUBLE_BACKWARD
    backend = importlib.import_module(backend_name)
    outcome = interpreter.run(program([Step("abs", "function", (Ref("x0"),), {}, "v0"),
                                       Step("mul_", "method", (Ref("v0"), Literal(2.0)), {}, "v1")],
                                      Action(DOUBLE_BACKWARD, "v1"), dtype="float64"), backend)
    assert outcome.error is None
    assert outcome.values[0].value.data.tolist() == [1.0, 2.0] and outcome.values[0].requires_grad
    assert outcome.values[1].value.data.tolist() == [2.0, 4.0]
    assert outcome.grads["x0@grad"].data.tolist() == [2.0, -2.0]
    zeros = outcome.grads["x0"]
    assert (zeros.dtype, zeros.data.dtype, zeros.data.tolist(), type(zeros.data)) == \
        ("float64", np.float64, [0.0, 0.0], np.ndarray)


def test_two_hooks_on_one_tensor_run_in_registration_order_and_their_order_shows():
    """A hook may add a constant after scaling (x.register_hook(lambda g: g * a + b)): two such
    hooks do not commute, so an engine running a tensor's hooks in another order than torch
    (registration order) gives other gradients (a planted bug no constant scaling exposes)."""
    import engine
    from fuzz.compare import compare
    from fuzz.repro import step_lines
    hooks = (Step("mul", "function", (Ref("x0"), Literal(1.0)), {}, "v0"),
             Step("register_hook", "method", (Ref("v0"), Literal(2.0), Literal(1.0)), {}, "v1"),
             Step("register_hook", "method", (Ref("v1"), Literal(3.0)), {}, "v2"))
    prog = program(hooks, Action(SUM_BACKWARD, "v2"))
    theirs = oracle.run_torch(prog)
    assert theirs.grads["x0"].data.tolist() == [9.0, 9.0]   # (1 * 2 + 1) * 3; the other order: 1 * 3 * 2 + 1
    assert step_lines(hooks[1]) == ["v0.register_hook(lambda grad: grad * 2.0 + 1.0)", "v1 = v0"]
    assert not compare(interpreter.run(prog, engine), theirs, prog).diverged
    reversed_order = program((hooks[0], Step("register_hook", "method", (Ref("v0"), Literal(3.0)), {}, "v1"),
                              Step("register_hook", "method", (Ref("v1"), Literal(2.0), Literal(1.0)), {}, "v2")),
                             Action(SUM_BACKWARD, "v2"))
    assert compare(interpreter.run(reversed_order, engine), theirs, prog).kind == "gradient"


def test_a_zerotensor_gradient_viewed_at_an_offset_is_recorded_without_touching_its_memory():
    """torch 2.13: x.numpy(force=True) of a ZeroTensor viewed at an offset reads address 0 + offset and
    kills the process (campaign seed 26: cat's backward narrows the ZeroTensor abs'' gives to x1's
    part). Run in a child process: a regression is a failing test, not a dead test run."""
    import subprocess
    import sys
    from pathlib import Path
    script = """
import torch
from fuzz import interpreter
part = torch._efficientzerotensor((3, 3), dtype=torch.float64)[2:]
assert part._is_zerotensor() and part.storage_offset() == 6
array = interpreter.snapshot(part)
assert (array.dtype, array.data.tolist()) == ("float64", [[0.0, 0.0, 0.0]])
print("recorded")
"""
    root = Path(__file__).parents[2]
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=root, timeout=120)
    assert child.returncode == 0 and "recorded" in child.stdout, (child.returncode, child.stderr[-2000:])


def test_a_double_backward_through_cat_and_abs_records_zero_gradients_on_both_backends():
    """The program of the seed 26 crash: the gradients of abs' are ZeroTensors, cat's backward views
    them (torch died reading x1's). In a child process, as above."""
    import subprocess
    import sys
    from pathlib import Path
    script = """
import engine, oracle
from fuzz import interpreter
from fuzz.compare import compare
from fuzz.program import DOUBLE_BACKWARD, Action, Input, Ref, Seq, Step, Program
prog = Program(inputs=(Input("x0", (2, 3), "float64", [[0.1, -1.0, -2.0], [-0.0, 3.2, -0.15]], True),
                       Input("x1", (1, 3), "float64", [[-0.5, -0.0, 3.2]], True)),
               steps=(Step("cat", "function", (Seq((Ref("x0"), Ref("x1")), "list"),), {}, "v0"),
                      Step("abs_", "method", (Ref("v0"),), {}, "v1")),
               action=Action(DOUBLE_BACKWARD, "v1"))
theirs = oracle.run_torch(prog)
assert theirs.error is None, theirs.error
assert theirs.grads["x0"].data.tolist() == [[0.0] * 3] * 2 and theirs.grads["x1"].data.tolist() == [[0.0] * 3]
assert not compare(interpreter.run(prog, engine), theirs, prog).diverged
print("agree")
"""
    root = Path(__file__).parents[2]
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=root, timeout=120)
    assert child.returncode == 0 and "agree" in child.stdout, (child.returncode, child.stderr[-2000:])
