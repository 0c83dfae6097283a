"""The oracle: torch's outcome with normalized messages, and finite-difference gradients."""
import numpy as np
import pytest

import oracle
from fuzz.program import BACKWARD, BACKWARD_GRADIENT, REPEATED_BACKWARD, SUM_BACKWARD, Action, Input, Literal, Program, Ref, Step


def two_input_program(action: Action) -> Program:
    # v1 = (x0 * x1).exp() with x1 broadcast over x0's rows
    return Program(
        inputs=(Input("x0", (2, 2), "float32", [[0.5, -1.0], [2.0, 0.25]], True),
                Input("x1", (2,), "float32", [1.5, -0.5], True)),
        steps=(Step("mul", "operator", (Ref("x0"), Ref("x1")), {}, "v0"),
               Step("exp", "method", (Ref("v0"),), {}, "v1")),
        action=action,
    )


@pytest.mark.parametrize("action, upstream", [
    (Action(SUM_BACKWARD, "v1"), np.ones((2, 2))),
    (Action(BACKWARD_GRADIENT, "v1", [[1.0, -2.0], [0.5, 3.0]]), np.array([[1.0, -2.0], [0.5, 3.0]])),
])
def test_finite_differences_match_the_analytic_gradient(action, upstream):
    x0, x1 = np.array([[0.5, -1.0], [2.0, 0.25]]), np.array([1.5, -0.5])
    numerical = oracle.numerical_gradient(two_input_program(action))
    value = np.exp(x0 * x1) * upstream
    np.testing.assert_allclose(numerical["x0"], value * x1, rtol=1e-8)
    np.testing.assert_allclose(numerical["x1"], (value * x0).sum(axis=0), rtol=1e-8)


def test_repeated_backward_accumulates_the_loss_gradient_twice():
    once = oracle.numerical_gradient(two_input_program(Action(SUM_BACKWARD, "v1")))
    twice = oracle.numerical_gradient(two_input_program(Action(REPEATED_BACKWARD, "v1", retain_graph=True)))
    np.testing.assert_allclose(twice["x0"], 2 * once["x0"], rtol=1e-12)
    np.testing.assert_allclose(twice["x1"], 2 * once["x1"], rtol=1e-12)


def test_finite_differences_skip_inputs_without_grad_and_stop_on_errors():
    program = Program((Input("x0", (), "float64", 2.0, False), Input("x1", (), "float64", 3.0, True)),
                      (Step("pow", "function", (Ref("x0"), Ref("x1")), {}, "v0"),), Action(BACKWARD, "v0"))
    assert set(oracle.numerical_gradient(program)) == {"x1"}
    np.testing.assert_allclose(oracle.numerical_gradient(program)["x1"], 8.0 * np.log(2.0), rtol=1e-8)
    failing = Program((Input("x0", (2,), "float64", [1.0, 2.0], True),),
                      (Step("matmul", "function", (Ref("x0"), Literal(2.0)), {}, "v0"),), Action(SUM_BACKWARD, "v0"))
    assert oracle.numerical_gradient(failing) is None
    with pytest.raises(ValueError, match="step must be positive"):
        oracle.numerical_gradient(program, step=0)


def test_normalize_message_drops_torchs_cpp_context():
    warning = "std(): degrees of freedom is <= 0. (Triggered internally at /src/aten/ReduceOps.cpp:1861.)"
    error = "shape mismatch\nException raised from check at /src/aten/X.cpp:12 (most recent call first):\nframe #0: ..."
    assert oracle.normalize_message(warning) == "std(): degrees of freedom is <= 0."
    assert oracle.normalize_message(error) == "shape mismatch"
    assert oracle.normalize_message("plain message") == "plain message"


def test_run_torch_normalizes_errors_and_warnings():
    program = Program((Input("x0", (1,), "float32", [1.0], True),),
                      (Step("var", "method", (Ref("x0"),), {}, "v0"),), Action(SUM_BACKWARD, "v0"))
    outcome = oracle.run_torch(program)
    assert outcome.warnings and all("Triggered internally" not in warning.message for warning in outcome.warnings)
