"""The comparator: tolerances at their boundaries, NaN and infinities, every divergence kind,
float32 rounding forgiven by the float64 program, and finite-difference adjudication."""
from dataclasses import replace

import numpy as np
import pytest
import torch

import broken_torch
import engine
import oracle
from fuzz import compare as comparator
from fuzz import interpreter
from fuzz.compare import compare
from fuzz.outcome import Array, Failure, Outcome, RecordedWarning, StepResult
from fuzz.program import BACKWARD, BACKWARD_GRADIENT, DOUBLE_BACKWARD, REPEATED_BACKWARD, SUM_BACKWARD, Action, Input, Literal, Program, Ref, Seq, Step


def scaled(values, dtype="float32", op="mul", factor=2.0, action=SUM_BACKWARD):
    """v0 = op(x0, factor) on x0 = values."""
    return Program((Input("x0", (len(values),), dtype, list(values), True),),
                   (Step(op, "function", (Ref("x0"), Literal(factor)), {}, "v0"),), Action(action, "v0"))


def unary(op, values, dtype="float32"):
    return Program((Input("x0", (len(values),), dtype, list(values), True),),
                   (Step(op, "function", (Ref("x0"),), {}, "v0"),), Action(SUM_BACKWARD, "v0"))


def with_value(outcome: Outcome, data, dtype=None) -> Outcome:
    """``outcome`` with step v0's data replaced (as the engine might have computed it)."""
    (result,) = outcome.values
    dtype = dtype or result.value.dtype
    return replace(outcome, values=(replace(result, value=Array(dtype, np.asarray(data, dtype=dtype))),))


def with_grad(outcome: Outcome, data, name="x0") -> Outcome:
    grads = dict(outcome.grads)
    grads[name] = None if data is None else Array(grads[name].dtype, np.asarray(data, dtype=grads[name].dtype))
    return replace(outcome, grads=grads)


def verdict_for(program, engine_edit):
    reference = oracle.run_torch(program)
    return compare(engine_edit(reference), reference, program)


def test_identical_outcomes_match():
    program = scaled([1.0, -2.0])
    verdict = verdict_for(program, lambda outcome: outcome)
    assert (verdict.kind, verdict.diverged, verdict.notes) == ("match", False, ())


@pytest.mark.parametrize("dtype, expected, atol_rtol", [("float32", 1000.0, (1.3e-6, 1e-5)),
                                                        ("float32", 0.0, (1.3e-6, 1e-5)),
                                                        ("float64", 1000.0, (1e-7, 1e-7)),
                                                        ("float64", 0.0, (1e-7, 1e-7))])
def test_value_tolerance_is_assert_closes_default_up_to_the_last_representable_number(dtype, expected, atol_rtol):
    rtol, atol = atol_rtol
    limit = expected + atol + rtol * abs(expected)
    kind = np.dtype(dtype).type
    inside = kind(limit)
    if inside > limit:  # round down onto the boundary's representable side
        inside = np.nextafter(inside, kind(-np.inf))
    outside = np.nextafter(inside, kind(np.inf))
    program = scaled([expected / 2], dtype)
    assert not verdict_for(program, lambda outcome: with_value(outcome, [inside])).diverged
    verdict = verdict_for(program, lambda outcome: with_value(outcome, [outside]))
    assert (verdict.kind, verdict.where, verdict.op) == ("value", "step 0", "mul")


def test_nan_equals_nan_but_not_a_number():
    program = unary("log", [-1.0, 1.0])  # torch: [nan, 0]
    assert not verdict_for(program, lambda outcome: outcome).diverged
    verdict = verdict_for(program, lambda outcome: with_value(outcome, [0.0, 0.0]))
    assert verdict.kind == "value" and "max abs err inf" in verdict.detail


def test_infinities_must_match_in_sign():
    program = unary("log", [0.0, 1.0])  # torch: [-inf, 0]
    assert not verdict_for(program, lambda outcome: with_value(outcome, [-np.inf, 0.0])).diverged
    assert verdict_for(program, lambda outcome: with_value(outcome, [np.inf, 0.0])).kind == "value"
    assert verdict_for(program, lambda outcome: with_value(outcome, [-3.4e38, 0.0])).kind == "value"


def failed(outcome: Outcome, error_type: str, message: str) -> Outcome:
    return replace(outcome, values=(StepResult("v0", error=Failure(error_type, message)),),
                   error=Failure(error_type, message, "step 0"), grads={"x0": None})


@pytest.mark.parametrize("edit, kind", [
    (lambda outcome: with_value(outcome, [2.0], dtype="float64"), "dtype"),
    (lambda outcome: replace(outcome, values=(replace(outcome.values[0], value=Array(
        "float32", np.array([[2.0]], dtype=np.float32))),)), "shape"),
    (lambda outcome: replace(outcome, values=(replace(outcome.values[0], grad_fn="MulBackward1"),)), "grad-fn"),
    (lambda outcome: replace(outcome, values=(replace(outcome.values[0], requires_grad=False),)), "grad-fn"),
    (lambda outcome: with_grad(outcome, [2.5]), "gradient"),
    (lambda outcome: with_grad(outcome, None), "gradient-none"),
    (lambda outcome: failed(outcome, "RuntimeError", "no"), "error-vs-success"),
    (lambda outcome: replace(outcome, warnings=(RecordedWarning("UserWarning", "careful"),)), "warning"),
])
def test_each_divergence_kind(edit, kind):
    program = scaled([1.0])
    verdict = verdict_for(program, edit)
    assert verdict.kind == kind
    assert verdict.signature == f"{kind}|mul|float32"
    assert verdict.detail and "\n" not in verdict.detail


def test_errors_compare_by_type_then_message():
    program = scaled([1.0, 2.0], action=BACKWARD)  # torch: non-scalar backward fails in the action
    reference = oracle.run_torch(program)
    message = reference.error.message
    other_type = replace(reference, error=Failure("ValueError", message, "action"))
    other_message = replace(reference, error=Failure("RuntimeError", "grad must be scalar", "action"))
    assert compare(other_type, reference, program).kind == "error-type"
    verdict = compare(other_message, reference, program)
    assert (verdict.kind, verdict.where) == ("error-message", "action")
    assert "grad must be scalar" in verdict.detail and message in verdict.detail
    succeeded = replace(reference, error=None, grads={"x0": Array("float32", np.array([2.0, 2.0], np.float32))})
    assert compare(succeeded, reference, program).kind == "error-vs-success"


def test_a_numeric_divergence_outranks_a_cosmetic_one():
    program = scaled([1.0])
    verdict = verdict_for(program, lambda outcome: with_grad(
        replace(outcome, values=(replace(outcome.values[0], grad_fn="Wrong"),)), [9.0]))
    assert verdict.kind == "gradient" and verdict.others == ("grad-fn at step 0",)


def cancellation(values):
    """(x0 + 1 - 1) * 1e6 in float32: torch's answer is mostly rounding error."""
    return Program((Input("x0", (1,), "float32", values, True),),
                   (Step("add", "function", (Ref("x0"), Literal(1.0)), {}, "v0"),
                    Step("sub", "function", (Ref("v0"), Literal(1.0)), {}, "v1"),
                    Step("mul", "function", (Ref("v1"), Literal(1e6)), {}, "v2")), Action(SUM_BACKWARD, "v2"))


def with_last_value(outcome: Outcome, value) -> Outcome:
    last = outcome.values[-1]
    changed = replace(last, value=Array("float32", np.array([value], dtype=np.float32)))
    return replace(outcome, values=outcome.values[:-1] + (changed,))


def test_float32_rounding_is_judged_against_the_float64_program():
    program = cancellation([float(np.float32(1e-7))])
    reference = oracle.run_torch(program)
    exact = oracle.run_torch(program.with_dtype("float64")).values[-1].value.data[0]
    torch_value = reference.values[-1].value.data[0]
    assert abs(torch_value - exact) > 0.01  # torch itself is far off: the program is ill-conditioned
    forgiven = compare(with_last_value(reference, exact), reference, program)
    assert forgiven.kind == "match" and "float32 rounding" in forgiven.notes[0]
    worse = compare(with_last_value(reference, torch_value + 10 * (torch_value - exact)), reference, program)
    assert (worse.kind, worse.op, worse.where) == ("value", "mul", "step 2")


def test_gradient_divergences_are_adjudicated_by_finite_differences():
    program = scaled([1.0, -3.0], dtype="float64", op="mul", factor=3.0)
    reference = oracle.run_torch(program)
    engine_wrong = compare(with_grad(reference, [3.0, 6.0]), reference, program)
    assert engine_wrong.adjudication == comparator.TORCH_AGREES
    torch_wrong = compare(reference, with_grad(reference, [3.0, 6.0]), program)
    assert torch_wrong.adjudication == comparator.ENGINE_AGREES
    both_wrong = compare(with_grad(reference, [1.0, 1.0]), with_grad(reference, [2.0, 2.0]), program)
    assert both_wrong.adjudication == comparator.NEITHER_AGREES


def stacked_twice(retain_grad: bool) -> Program:
    """torch.stack([x0, x1]) summed and backpropagated twice (retain_graph=True)."""
    inputs = (Input("x0", (), "float64", 0.0, True), Input("x1", (), "float64", 0.0, True))
    steps = [Step("stack", "function", (Seq((Ref("x0"), Ref("x1")), "list"),), {}, "v0")]
    if retain_grad:
        steps.append(Step("retain_grad", "method", (Ref("v0"),), {}, "v1"))
    return Program(inputs, tuple(steps), Action(REPEATED_BACKWARD, steps[-1].out, retain_graph=True))


@pytest.mark.parametrize("retain_grad", [False, True])
def test_torchs_stack_gradient_after_repeated_backward_is_judged_torchs_fault(retain_grad):
    # NOTE: a torch 2.13 bug. stack's backward hands both leaves views of one expanded gradient
    # buffer; AccumulateGrad adopts each view as .grad (they alias one element), so the second
    # backward's in-place `grad += 1` on x0 shows up in x1 too: both read 3 where 2 is right.
    program = stacked_twice(retain_grad)
    reference = oracle.run_torch(program)
    assert reference.error is None and float(reference.grads["x0"].data) == 3.0
    right = with_grad(with_grad(reference, 2.0, name="x0"), 2.0, name="x1")
    verdict = compare(right, reference, program)
    assert (verdict.kind, verdict.adjudication) == ("gradient", comparator.ENGINE_AGREES)
    assert verdict.torch_at_fault
    assert not compare(reference, right, program).torch_at_fault


def test_finite_differences_have_no_opinion_where_the_loss_rounds_away_the_difference():
    # Fuzzer finding: x0 @ x1 with a row [-1.6, 2.2, -1e30, 1e30] in x1. Its sum is 0.55 or 0
    # by the order of the terms (torch's BLAS 0.55, numpy's 0); finite differences of a loss
    # through 1e30 carry rounding of ~1e14 / step, so they cannot say which one is right.
    x1 = [[-1.37, 0.5], [-3.43, 0.75], [-1.6451281090811227, 2.1969375255748256], [-1e30, 1e30]]
    program = Program((Input("x0", (1, 4), "float64", [[0.0, 0.0, 0.0, 0.0]], True),
                       Input("x1", (4, 2), "float64", x1, False)),
                      (Step("mm", "function", (Ref("x0"), Ref("x1")), {}, "v0"),), Action(SUM_BACKWARD, "v0"))
    reference = oracle.run_torch(program)
    grads = reference.grads["x0"].data.copy()
    grads[0, 3] = grads[0, 3] + 1e17      # beyond rounding at 1e30 (64 eps 1e30 = 1.4e16), within the noise
    verdict = compare(with_grad(reference, grads), reference, program)
    assert (verdict.kind, verdict.adjudication) == ("gradient", comparator.UNRESOLVED)
    assert not verdict.torch_at_fault
    noise = oracle.finite_difference_noise(program)["x0"]
    assert noise.shape == (1, 4) and noise.min() > 1e15
    assert oracle.finite_difference_noise(scaled([1.0, -3.0], dtype="float64", op="mul", factor=3.0))["x0"].max() < 1e-6


def test_hooks_leave_finite_differences_without_an_opinion():
    program = Program((Input("x0", (2,), "float64", [1.0, 2.0], True),),
                      (Step("register_hook", "method", (Ref("x0"), Literal(3.0)), {}, "v0"),
                       Step("mul", "function", (Ref("v0"), Literal(2.0)), {}, "v1")), Action(SUM_BACKWARD, "v1"))
    reference = oracle.run_torch(program)
    np.testing.assert_array_equal(reference.grads["x0"].data, [6.0, 6.0])
    verdict = compare(with_grad(reference, [2.0, 2.0]), reference, program)
    assert (verdict.kind, verdict.adjudication) == ("gradient", comparator.NOT_ONE_LOSS)


def test_a_gradient_divergence_at_a_kink_is_a_convention_difference():
    program = unary("relu", [0.0, 2.0], dtype="float64")
    reference = oracle.run_torch(program)  # torch: relu'(0) = 0
    verdict = compare(with_grad(reference, [1.0, 1.0]), reference, program)
    assert (verdict.kind, verdict.adjudication) == ("gradient", comparator.CONVENTION)
    away_from_kink = unary("relu", [0.5, 2.0], dtype="float64")
    reference = oracle.run_torch(away_from_kink)
    assert compare(with_grad(reference, [2.0, 1.0]), reference, away_from_kink).adjudication == comparator.TORCH_AGREES


def test_gradient_divergences_are_pinned_on_the_op_that_causes_them():
    # exp -> torch.mul (doubled gradient in broken_torch) -> neg: the op nearest the inputs is exp.
    program = Program((Input("x0", (2,), "float32", [0.5, 1.0], True),),
                      (Step("exp", "function", (Ref("x0"),), {}, "v0"),
                       Step("mul", "function", (Ref("v0"), Literal(3.0)), {}, "v1"),
                       Step("neg", "function", (Ref("v1"),), {}, "v2")), Action(SUM_BACKWARD, "v2"))
    engine_outcome, torch_outcome = interpreter.run(program, broken_torch), oracle.run_torch(program)
    assert compare(engine_outcome, torch_outcome, program).signature == "gradient|exp|float32"
    verdict = compare(engine_outcome, torch_outcome, program, backend=broken_torch)
    assert verdict.signature == "gradient|mul|float32"
    assert verdict.adjudication == comparator.TORCH_AGREES
    assert compare(interpreter.run(program, torch), torch_outcome, program, backend=torch).kind == "match"


def test_a_bug_that_a_uniform_gradient_hides_is_pinned_on_its_op():
    # roll (its gradient rolled the wrong way in rolled_torch) -> mul by weights: under sum(),
    # roll's prefix gets a gradient of ones, which any roll leaves unchanged; the probe's
    # gradient differs per element, so the prefix ending at roll already diverges.
    import rolled_torch
    program = Program((Input("x0", (3,), "float32", [0.5, 1.0, 2.0], True),
                       Input("x1", (3,), "float32", [1.0, 2.0, 4.0], False)),
                      (Step("roll", "function", (Ref("x0"), Literal(1)), {}, "v0"),
                       Step("mul", "function", (Ref("v0"), Ref("x1")), {}, "v1")), Action(SUM_BACKWARD, "v1"))
    engine_outcome, torch_outcome = interpreter.run(program, rolled_torch), oracle.run_torch(program)
    verdict = compare(engine_outcome, torch_outcome, program, backend=rolled_torch)
    assert verdict.signature == "gradient|roll|float32"
    assert compare(interpreter.run(program, torch), torch_outcome, program, backend=torch).kind == "match"


def test_a_bug_only_a_second_order_gradient_shows_is_pinned_on_the_op_whose_backward_runs_it():
    # Fuzzer finding (an unseen planted bug: mean over dims scales its gradient by 1 / numel):
    # std's backward computes a mean, which a double backward differentiates. A first-order probe
    # of the prefix ending at std does not reach that mean, so the divergence was blamed on the
    # `t` after it; the prefix is now probed with the double backward too.
    from fuzz.mutants import engine_copy
    buggy = engine_copy("gradfuzz_test_mean_backward_bug")
    ops = buggy._ops
    correct = ops._reduce_backward

    def mean_backward(ctx, g):
        return correct(ctx, g * (ctx.count / max(int(np.prod(ctx.self_shape)), 1)))
    ops._MEAN_DIM.backward = mean_backward
    program = Program((Input("x0", (2, 3), "float64", [[1.0, 1.0, 1.0], [0.0, 1.0, 2.0]], True),),
                      (Step("std", "function", (Ref("x0"),), {"dim": 0}, "v0"),
                       Step("t", "function", (Ref("v0"),), {}, "v1")), Action(DOUBLE_BACKWARD, "v1"))
    torch_outcome = oracle.run_torch(program)
    verdict = compare(interpreter.run(program, buggy), torch_outcome, program, backend=buggy)
    assert verdict.signature == "gradient|std|float64"
    assert compare(interpreter.run(program, engine), torch_outcome, program, backend=engine).kind == "match"


def test_a_wrong_message_of_backward_itself_is_one_finding_whatever_the_ops():
    # Backward twice without retain_graph: torch's "graph freed" message names no op. A backend
    # with another text for it diverges on every program that saves tensors; keyed on the op
    # that would be one finding per op.
    signatures = set()
    for op in ("exp", "sigmoid", "tanh"):
        program = Program((Input("x0", (2,), "float32", [0.5, 1.0], True),),
                          (Step(op, "function", (Ref("x0"),), {}, "v0"),),
                          Action(REPEATED_BACKWARD, "v0", retain_graph=False))
        torch_outcome = oracle.run_torch(program)
        assert "a second time" in torch_outcome.error.message
        retold = replace(torch_outcome, error=replace(torch_outcome.error, message="graph already freed"))
        verdict = compare(retold, torch_outcome, program, backend=torch)
        assert (verdict.kind, verdict.where) == ("error-message", "action")
        signatures.add(verdict.signature)
    assert signatures == {"error-message|repeated_backward|float32"}


def test_an_error_of_backward_itself_where_torch_succeeds_is_one_finding_whatever_the_ops():
    """Unseen-bug check (session 9): a backend that frees the graph despite retain_graph=True
    raised "a second time" on every repeated backward; keyed on the first step's op (every
    prefix shows it), that was 84 findings in 60 s."""
    signatures = set()
    for op in ("exp", "sigmoid", "tanh"):
        program = Program((Input("x0", (2,), "float32", [0.5, 1.0], True),),
                          (Step(op, "function", (Ref("x0"),), {}, "v0"),),
                          Action(REPEATED_BACKWARD, "v0", retain_graph=True))
        torch_outcome = oracle.run_torch(program)
        assert torch_outcome.error is None
        freed = replace(torch_outcome, error=Failure("RuntimeError", "Trying to backward through the graph a "
                                                                     "second time (or directly access ...)", "action"))
        verdict = compare(freed, torch_outcome, program, backend=torch)
        assert (verdict.kind, verdict.where) == ("error-vs-success", "action")
        signatures.add(verdict.signature)
    assert signatures == {"error-vs-success|repeated_backward|float32"}


def test_a_wrong_message_naming_a_node_is_keyed_on_that_node():
    program = Program((Input("x0", (2,), "float32", [0.5, 1.0], True),),
                      (Step("exp", "function", (Ref("x0"),), {}, "v0"),
                       Step("mul_", "method", (Ref("v0"), Literal(2.0)), {}, "v1")), Action(SUM_BACKWARD, "v1"))
    torch_outcome = oracle.run_torch(program)
    assert "output 0 of Exp," in torch_outcome.error.message  # torch 2.13 names the op here, not ExpBackward0
    retold = replace(torch_outcome, error=replace(torch_outcome.error, message="saved tensor modified"))
    assert compare(retold, torch_outcome, program, backend=torch).signature == "error-message|Exp|float32"


def test_the_sign_of_a_zero_picked_at_a_tie_of_two_tensors_is_not_compared():
    # torch's SIMD and scalar loops pick different operands at a tie of 0.0 and -0.0
    # (tests/engine/test_pointwise.py); with a number bound torch's rule is fixed and compared.
    def flipped(outcome):
        last = outcome.values[-1]
        return replace(outcome, values=outcome.values[:-1] + (replace(last, value=Array(
            last.value.dtype, -last.value.data)),))
    zeros = Input("x1", (3,), "float64", [0.0, 0.0, 0.0], False)
    for op in ("clamp_min", "maximum"):
        program = Program((Input("x0", (3,), "float64", [-0.0, -0.0, -0.0], True), zeros),
                          (Step(op, "function", (Ref("x0"), Ref("x1")), {}, "v0"),), Action(SUM_BACKWARD, "v0"))
        assert verdict_for(program, flipped).kind == "match"
    number_bound = Program((Input("x0", (3,), "float64", [-0.0, -0.0, -0.0], True),),
                           (Step("clamp_min", "function", (Ref("x0"), Literal(0.0)), {}, "v0"),),
                           Action(SUM_BACKWARD, "v0"))
    verdict = verdict_for(number_bound, flipped)
    assert verdict.kind == "value" and "sign of zero" in verdict.detail


def test_inf_against_nan_in_a_sum_of_overflowing_terms_is_the_summation_order():
    # Fuzzer finding: einsum('ij,jk') of float32 terms near 3e38: torch's kernel gave NaN
    # (inf + -inf), the engine's BLAS call inf; the order of an overflowing sum is the kernel's.
    # (float64 here: float32 values would also pass through the float64 program's rounding check.)
    def replaced(outcome, value):
        last = outcome.values[-1]
        data = last.value.data.copy()
        data.flat[0] = value
        return replace(outcome, values=outcome.values[:-1] + (replace(last, value=Array(last.value.dtype, data)),))
    x0 = Input("x0", (1, 2), "float64", [[1.5, -2.5]], True)
    x1 = Input("x1", (2, 1), "float64", [[1.5e308], [1.5e308]], True)
    matmul = Program((x0, x1), (Step("matmul", "function", (Ref("x0"), Ref("x1")), {}, "v0"),),
                     Action(SUM_BACKWARD, "v0"))
    verdict = verdict_for(matmul, lambda outcome: replaced(outcome, np.nan if np.isinf(
        outcome.values[-1].value.data.flat[0]) else np.inf))
    assert verdict.kind == "match" and "inf against NaN" in verdict.notes[0]
    # +inf against -inf is a sign, and a pointwise op has no order: both still diverge. (Terms of one
    # sign: torch's sum is +inf whichever order its CPU's kernel takes; the one above is NaN on some.)
    positive = Program((Input("x0", (1, 2), "float64", [[1.5, 2.5]], True), x1), matmul.steps, matmul.action)
    assert verdict_for(positive, lambda outcome: replaced(outcome, -outcome.values[-1].value.data.flat[0])).kind \
        == "value"
    add = Program((x0,), (Step("add", "function", (Ref("x0"), Literal(float("inf"))), {}, "v0"),),
                  Action(SUM_BACKWARD, "v0"))
    assert verdict_for(add, lambda outcome: replaced(outcome, np.nan)).kind == "value"


def test_inf_against_nan_carried_on_from_a_sum_of_overflowing_terms_is_the_summation_order():
    """Campaign seed 12: a bmm of terms near 3e38 gave inf in the engine and NaN in torch (here
    the other way round); the bmm's own value was excused, then neg, detach, retain_grad and register_hook of it were
    four findings. A step that reads no sum of products still diverges."""
    def replaced(outcome):
        values = []
        for result in outcome.values:
            data = result.value.data
            data = np.where(np.isnan(data), np.inf, np.where(np.isinf(data), np.nan, data))
            values.append(replace(result, value=Array(result.value.dtype, data)))
        return replace(outcome, values=tuple(values))
    x0 = Input("x0", (1, 2), "float64", [[1.5, -2.5]], True)
    x1 = Input("x1", (2, 1), "float64", [[1.5e308], [1.5e308]], True)
    for op in ("neg", "detach", "clone"):
        program = Program((x0, x1), (Step("matmul", "function", (Ref("x0"), Ref("x1")), {}, "v0"),
                                     Step(op, "method", (Ref("v0"),), {}, "v1")), Action(SUM_BACKWARD, "v0"))
        assert not np.isfinite(oracle.run_torch(program).values[1].value.data).any()
        verdict = verdict_for(program, replaced)
        assert verdict.kind == "match" and len(verdict.notes) == 2, (op, verdict)
    unsummed = Program((x0,), (Step("add", "function", (Ref("x0"), Literal(float("nan"))), {}, "v0"),
                               Step("neg", "method", (Ref("v0"),), {}, "v1")), Action(SUM_BACKWARD, "v0"))
    assert verdict_for(unsummed, replaced).kind == "value"


def test_close_is_numpys_isclose_with_equal_nans_on_every_special_pair():
    special = [0.0, -0.0, 1.0, 1.0 + 1e-7, 1.0 + 1e-5, -1.0, 1e-30, 1e30, 3e38, np.inf, -np.inf, np.nan]
    actual = np.repeat(special, len(special))
    expected = np.tile(special, len(special))
    for rtol, atol in [*comparator.TOLERANCES.values(), (0.0, 0.0), comparator.FINITE_DIFFERENCE_TOLERANCE]:
        for dtype in (np.float64, np.float32):
            assert (comparator.close(actual.astype(dtype), expected, rtol, atol) ==
                    np.isclose(actual.astype(dtype).astype(np.float64), expected, rtol=rtol, atol=atol,
                               equal_nan=True)).all()


def test_a_deferred_adjudication_is_the_one_compare_gives():
    program = Program((Input("x0", (2,), "float64", [1.0, 2.0], True),),
                      (Step("mul", "function", (Ref("x0"), Literal(3.0)), {}, "v0"),), Action(SUM_BACKWARD, "v0"))
    engine_outcome, torch_outcome = interpreter.run(program, broken_torch), oracle.run_torch(program)
    full = compare(engine_outcome, torch_outcome, program, backend=broken_torch)
    deferred = compare(engine_outcome, torch_outcome, program, backend=broken_torch, adjudicate=False)
    assert full.kind == "gradient" and deferred.adjudication is None and full.adjudication is not None
    assert comparator.adjudicated(deferred, program, engine_outcome, torch_outcome) == full


def test_a_float64_gradient_through_float32_steps_is_held_to_float32s_tolerance():
    # x0 (float64) -> float() -> sinh: x0's gradient comes from float32 arithmetic, so a
    # relative difference of 2e-7 (below float32's 1.3e-6, above float64's 1e-7) is rounding.
    values = [2.0, -2.3]
    cast = Program((Input("x0", (2,), "float64", values, True),),
                   (Step("float", "method", (Ref("x0"),), {}, "v0"), Step("sinh", "function", (Ref("v0"),), {}, "v1")),
                   Action(SUM_BACKWARD, "v1"))
    reference = oracle.run_torch(cast)
    nudged = reference.grads["x0"].data * (1 + 2e-7)
    assert not compare(with_grad(reference, nudged), reference, cast).diverged
    plain = unary("sinh", values, dtype="float64")
    reference = oracle.run_torch(plain)
    verdict = compare(with_grad(reference, reference.grads["x0"].data * (1 + 2e-7)), reference, plain)
    assert verdict.kind == "gradient"


def test_a_float64_value_computed_from_a_float32_one_is_held_to_float32s_tolerance():
    program = Program((Input("x0", (2,), "float32", [2.0, -2.3], True),),
                      (Step("double", "method", (Ref("x0"),), {}, "v0"),
                       Step("mul", "function", (Ref("v0"), Literal(3.0)), {}, "v1")),
                      Action(SUM_BACKWARD, "v1"))
    reference = oracle.run_torch(program)
    first, second = reference.values
    nudged = replace(second, value=Array("float64", second.value.data * (1 + 2e-7)))
    assert not compare(replace(reference, values=(first, nudged)), reference, program).diverged
    plain = scaled([2.0, -2.3], dtype="float64", factor=3.0)
    reference = oracle.run_torch(plain)
    assert compare(with_value(reference, reference.values[0].value.data * (1 + 2e-7)), reference, plain).kind == "value"


def test_multi_output_results_take_their_loosest_floating_parts_tolerance():
    assert comparator.tolerance("tuple[float32[2],int64[2]]") == comparator.TOLERANCES["float32"]
    assert comparator.tolerance("tuple[float64[3],float32[1]]") == comparator.TOLERANCES["float32"]
    assert comparator.tolerance("tuple[int64[2],bool[2]]") == (0.0, 0.0)


# Each 0-D deprecation the comparator leaves out, with the attribute that raises it.
ZERO_DIM_DEPRECATIONS = {"T": "Tensor.T is deprecated on 0-D tensors", "H": "Tensor.H is deprecated on 0-D tensors",
                         "mT": "Tensor.mT is deprecated on 0-D tensors",
                         "mH": "Tensor.mH is deprecated on 0-D tensors"}


def test_the_left_out_0d_deprecations_are_warned_once_per_process_by_torch():
    """Fuzzer finding (warning|mT): torch warned for x.mT of a 0-d tensor in one program and not
    in the next. In a fresh process torch warns for each attribute once, then never again, so
    whether a program sees it depends on what ran before it: not comparable."""
    import json
    import subprocess
    import sys
    script = ("import json, warnings, torch\nx = torch.tensor(1.0)\nseen = {}\n"
              f"for name in {list(ZERO_DIM_DEPRECATIONS)!r}:\n"
              "    with warnings.catch_warnings(record=True) as caught:\n"
              "        warnings.simplefilter('always')\n"
              "        getattr(x, name); getattr(x, name)\n"
              "    seen[name] = [str(w.message) for w in caught]\n"
              "print(json.dumps(seen))\n")
    seen = json.loads(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                     check=True).stdout)
    for name, prefix in ZERO_DIM_DEPRECATIONS.items():
        assert len(seen[name]) == 1 and seen[name][0].startswith(prefix), (name, seen[name])
        assert prefix in comparator.ONCE_PER_PROCESS_WARNINGS


def test_the_gradient_layout_warning_is_once_per_process_in_torch_and_left_out():
    """Campaign seed 23 (warning|clone): a leaf made by zeros_like of an expanded (1,) tensor
    has stride 0, and so has the .grad torch lays out like it; a second backward adds into it
    and AccumulateGrad warns that grad and param "do not obey the gradient layout contract",
    with TORCH_WARN_ONCE: in a fresh process the second program doing so sees nothing."""
    import json
    import subprocess
    import sys
    script = ("import json, warnings, torch\nseen = []\n"
              "for _ in range(2):\n"
              "    v = torch.zeros_like(torch.broadcast_to(torch.tensor(2.5), (1,)), requires_grad=True)\n"
              "    loss = v.sum()\n"
              "    with warnings.catch_warnings(record=True) as caught:\n"
              "        warnings.simplefilter('always')\n"
              "        loss.backward(retain_graph=True); loss.backward()\n"
              "    seen.append([str(w.message) for w in caught])\n"
              "print(json.dumps(seen))\n")
    first, second = json.loads(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                              check=True).stdout)
    assert len(first) == 1 and not second
    assert first[0].startswith(comparator.ONCE_PER_PROCESS_WARNINGS)


def test_inf_against_nan_in_a_gradient_through_a_sum_of_products_is_the_summation_order():
    # Fuzzer finding: the gradient of einsum('ij,jk,kl->il') with terms near 3e38 was NaN in
    # torch (inf + -inf in its bmm backward) and -inf in the engine's BLAS call.
    def nan_for_inf(outcome):
        grad = outcome.grads["x0"]
        data = np.where(np.isinf(grad.data), np.nan, grad.data)
        return replace(outcome, grads={**outcome.grads, "x0": Array(grad.dtype, data)})
    x0 = Input("x0", (1, 2), "float64", [[1.5, -2.5]], True)
    x1 = Input("x1", (2, 1), "float64", [[np.inf], [1.0]], True)
    matmul = Program((x0, x1), (Step("matmul", "function", (Ref("x0"), Ref("x1")), {}, "v0"),),
                     Action(SUM_BACKWARD, "v0"))
    verdict = verdict_for(matmul, nan_for_inf)
    assert verdict.kind == "match" and any("inf against NaN" in note for note in verdict.notes)
    # A gradient that passed pointwise ops only has no summation order: it still diverges.
    scaled_by_inf = Program((x0,), (Step("mul", "function", (Ref("x0"), Literal(float("inf"))), {}, "v0"),),
                            Action(SUM_BACKWARD, "v0"))
    assert verdict_for(scaled_by_inf, nan_for_inf).kind == "gradient"


def _cancelling_mm(magnitude: float, dtype: str = "float64") -> Program:
    """x0 @ x1 where x1's last row is [-magnitude, magnitude]: the gradient of x0 sums them with -3.3."""
    x1 = [[-1.37, 0.5], [-3.3, 0.75], [-magnitude, magnitude]]
    return Program((Input("x0", (1, 3), dtype, [[0.0, 0.0, 0.0]], True), Input("x1", (3, 2), dtype, x1, False)),
                   (Step("mm", "function", (Ref("x0"), Ref("x1")), {}, "v0"),), Action(SUM_BACKWARD, "v0"))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_difference_within_rounding_at_extreme_magnitudes_is_a_note_not_a_divergence(dtype):
    """Campaign finding (seed 9): 12 of 21 findings were one sum through +-1e30 in another order
    (0 in torch's BLAS, -3.3 in numpy's), shown through mm, add, amax, repeat, ... No order is
    torch's contract: a difference of at most oracle.numerical.ROUNDINGS roundings at the largest
    magnitude the program reaches, above EXTREME_MAGNITUDE, is forgiven with a note."""
    program = _cancelling_mm(1e30, dtype)
    reference = oracle.run_torch(program)
    grads = reference.grads["x0"].data.copy()
    grads[0, 2] += 3.3    # the other summation order at the cancelling row
    verdict = compare(with_grad(reference, grads), reference, program)
    assert verdict.kind == "match"
    assert "within rounding at the magnitudes reached (1e+30" in verdict.notes[-1]


@pytest.mark.parametrize("magnitude, error, kind", [
    (1e30, 1e30 * 2e-13, "gradient"),      # beyond 64 float64 roundings at 1e30
    (5e3, 3.3, "gradient"),               # a moderate program: tolerances hold
    (1e30, float("nan"), "gradient"),     # not a number is never rounding
])
def test_differences_beyond_rounding_or_in_moderate_programs_stay_divergences(magnitude, error, kind):
    program = _cancelling_mm(magnitude)
    reference = oracle.run_torch(program)
    grads = reference.grads["x0"].data.copy()
    grads[0, 2] += error
    assert compare(with_grad(reference, grads), reference, program).kind == kind


def test_the_explicit_gradient_of_backward_counts_among_the_magnitudes():
    """Campaign seed 27: x0 + v0 (shapes (2,) and (2, 3, 1)), backward with a gradient holding 1e30
    and -1e30: x0's gradient sums them over the broadcast dims, 0.0 in torch's order and -2.6 in
    another. The inputs and values are zeros; the magnitude is the gradient's."""
    gradient = [[[0.5, 1.0], [-1e30, 2.0], [1e30, -2.6]]] * 2
    program = Program((Input("x0", (2,), "float64", [0.0, 0.0], True),
                       Input("x1", (2, 3, 1), "float64", [[[0.0]] * 3] * 2, False)),
                      (Step("add", "function", (Ref("x0"), Ref("x1")), {}, "v0"),),
                      Action(BACKWARD_GRADIENT, "v0", gradient))
    reference = oracle.run_torch(program)
    grads = reference.grads["x0"].data.copy()
    grads[1] += 2.6
    verdict = compare(with_grad(reference, grads), reference, program)
    assert verdict.kind == "match" and "within rounding at the magnitudes reached (1e+30" in verdict.notes[-1]


def test_a_value_difference_is_judged_by_the_magnitudes_before_it():
    """A value at step k depends on the inputs and steps up to k: a later step's magnitude
    (here exp of 100 = 2.7e43) does not excuse it."""
    program = Program((Input("x0", (2,), "float64", [1.0, 100.0], True),),
                      (Step("mul", "function", (Ref("x0"), Literal(3.0)), {}, "v0"),
                       Step("exp", "function", (Ref("v0"),), {}, "v1")), Action(SUM_BACKWARD, "v1"))
    reference = oracle.run_torch(program)
    first, second = reference.values
    shifted = replace(first, value=Array("float64", first.value.data + [1e-3, 0.0]))
    assert compare(replace(reference, values=(shifted, second)), reference, program).kind == "value"


def test_extreme_magnitude_is_the_strategys_moderate_bound():
    from fuzz.strategies import MODERATE
    assert comparator.EXTREME_MAGNITUDE == MODERATE


def _leaf_written_in_place(op, *args):
    return Program((Input("x0", (2,), "float32", [0.5, 1.0], True),),
                   (Step(op, "inplace", (Ref("x0"),) + tuple(map(Literal, args)), {}, "v0"),), Action(SUM_BACKWARD, "v0"))


def _step_error(outcome: Outcome, **changes) -> Outcome:
    """``outcome`` with the error of its failing step changed (that step's result and the outcome's)."""
    (index, failed), = ((i, r) for i, r in enumerate(outcome.values) if r.error is not None)
    values = list(outcome.values)
    values[index] = replace(failed, error=replace(failed.error, **changes))
    return replace(outcome, values=tuple(values), error=replace(outcome.error, **changes))


@pytest.mark.parametrize("edit, kind", [
    (lambda outcome: _step_error(outcome, message="leaf modified in place"), "error-message"),
    (lambda outcome: _step_error(outcome, type="ValueError"), "error-type"),
])
def test_autograd_refusing_an_in_place_op_is_one_finding_whatever_the_op(edit, kind):
    """Unseen-bug check (session 10): an engine that skipped the leaf check before in-place ops
    showed as 91 findings in 60 s, one per in-place op."""
    signatures = set()
    for op, args in (("exp", ()), ("mul", (2.0,)), ("clamp_min", (0.7,))):
        program = _leaf_written_in_place(op, *args)
        torch_outcome = oracle.run_torch(program)
        assert torch_outcome.error.message.startswith("a leaf Variable that requires grad is being used")
        verdict = compare(edit(torch_outcome), torch_outcome, program, backend=torch)
        assert (verdict.kind, verdict.where) == (kind, "step 0")
        signatures.add(verdict.signature)
    assert signatures == {f"{kind}|inplace-on-leaf|float32"}


def test_an_in_place_refusal_naming_a_multi_output_op_is_keyed_on_that_op():
    program = Program((Input("x0", (4,), "float32", [0.5, 1.0, 2.0, 3.0], True),),
                      (Step("split", "function", (Ref("x0"), Literal(2)), {}, "v0"),
                       Step("__getitem__", "method", (Ref("v0"), Literal(0)), {}, "v1"),
                       Step("exp", "inplace", (Ref("v1"),), {}, "v2")), Action(SUM_BACKWARD, "v2"))
    torch_outcome = oracle.run_torch(program)
    assert torch_outcome.error.message.startswith("Output 0 of Split is a view and is being modified")
    retold = _step_error(torch_outcome, message="view modified in place")
    assert compare(retold, torch_outcome, program, backend=torch).signature == "error-message|Split|float32"


def test_a_missing_warning_on_reading_a_non_leaf_grad_is_one_finding_whatever_the_ops():
    """Unseen-bug check (session 10): an engine that never warned on reading .grad of a non-leaf
    tensor showed as 18 findings in 60 s, one per op. Other warnings stay keyed on their op."""
    signatures = set()
    for op in ("exp", "sigmoid", "tanh"):
        program = Program((Input("x0", (2,), "float32", [0.5, 1.0], True),),
                          (Step(op, "function", (Ref("x0"),), {}, "v0"),
                           Step("grad", "property", (Ref("v0"),), {}, "v1")), Action(SUM_BACKWARD, "v0"))
        torch_outcome = oracle.run_torch(program)
        assert any(w.message.startswith("The .grad attribute of a Tensor that is not a leaf") for w in torch_outcome.warnings)
        verdict = compare(replace(torch_outcome, warnings=()), torch_outcome, program, backend=torch)
        assert verdict.kind == "warning"
        signatures.add(verdict.signature)
    assert signatures == {"warning|Tensor.grad|float32"}


def _binary_of_mismatched_shapes(op):
    return Program((Input("x0", (2, 3), "float32", [[0.5, 1.0, 2.0]] * 2, True),
                    Input("x1", (4,), "float32", [1.0, 2.0, 3.0, 4.0], True)),
                   (Step(op, "function", (Ref("x0"), Ref("x1")), {}, "v0"),), Action(SUM_BACKWARD, "v0"))


def test_a_broadcast_message_difference_is_one_finding_whatever_the_op():
    """Unseen-bug check (session 11): an engine whose broadcast message named the dim counted from
    the right showed as 35 findings in 60 s, one per binary op and dtype."""
    signatures = set()
    for op in ("add", "mul", "atan2", "maximum"):
        program = _binary_of_mismatched_shapes(op)
        torch_outcome = oracle.run_torch(program)
        message = torch_outcome.error.message
        assert message == "The size of tensor a (3) must match the size of tensor b (4) at non-singleton dimension 1"
        retold = _step_error(torch_outcome, message=message.replace("dimension 1", "dimension 0"))
        verdict = compare(retold, torch_outcome, program, backend=torch)
        assert (verdict.kind, verdict.where) == ("error-message", "step 0")
        signatures.add(verdict.signature)
    assert signatures == {"error-message|broadcast|float32"}


def test_a_broadcast_error_on_one_side_only_stays_keyed_on_the_op():
    program = _binary_of_mismatched_shapes("mul")
    torch_outcome = oracle.run_torch(program)
    other = _step_error(torch_outcome, message="mul(): shapes differ")
    assert compare(other, torch_outcome, program, backend=torch).signature == "error-message|mul|float32"


def test_the_shortcut_for_identical_outcomes_gives_the_full_comparisons_verdict(monkeypatch):
    """`compare` answers equal outcomes without the per-step comparison: on drawn programs (engine
    against torch, and torch against itself with a step's sign of zero, dtype or shape edited), the
    verdict is the full comparison's."""
    import itertools
    import random

    from fuzz.strategies import fast_examples
    drawn = [(program, outcome or oracle.run_torch(program)) for program, outcome, _ in
             itertools.islice(fast_examples(random.Random(3), max_steps=6, max_dims=3, max_side=4), 150)]

    def zero_signs(outcome: Outcome) -> Outcome:
        values = tuple(replace(result, value=Array(result.value.dtype, -result.value.data))
                       if result.value is not None and result.value.data.dtype.kind == "f" else result
                       for result in outcome.values)
        return replace(outcome, values=values)

    def flattened(outcome: Outcome) -> Outcome:
        grads = {name: None if grad is None else Array(grad.dtype, grad.data.reshape(-1, 1))
                 for name, grad in outcome.grads.items()}
        return replace(outcome, grads=grads)

    cases = []
    for program, torch_outcome in drawn:
        cases.append((interpreter.run(program, engine), torch_outcome, program))
        cases += [(edit(torch_outcome), torch_outcome, program) for edit in (zero_signs, flattened)]
    shortcut = [compare(mine, theirs, program, adjudicate=False) for mine, theirs, program in cases]
    monkeypatch.setattr(comparator, "_identical", lambda engine_outcome, torch_outcome: False)
    full = [compare(mine, theirs, program, adjudicate=False) for mine, theirs, program in cases]
    assert shortcut == full
    assert sum(verdict.diverged for verdict in full) > 50 and sum(not verdict.diverged for verdict in full) > 100


def test_a_bug_only_a_cancelling_gradient_shows_is_pinned_on_its_op_whatever_follows():
    # Campaign seed 18: softmax's gradient summed in numpy's order was an ulp off torch's where the
    # gradient reaching it cancelled (a column times one value), and normalize's eps made that
    # 1.7e5. The weighted probe of softmax's prefix does not cancel, so each program was blamed on
    # the op after it (mul, neg, mH, ...): five signatures for one bug. With the uniform probe
    # too, every such program is blamed on the same op.
    from fuzz.mutants import engine_copy
    buggy = engine_copy("gradfuzz_test_softmax_sum_bug")
    functional = buggy.nn.functional
    functional._softmax_product_sum = lambda g, y, dim: functional._kernel_row_sum(g * y, dim)
    rows = [[[0.0, -3.0742225646972656], [0.0, -1.4792834520339966], [-0.0, -3.896240711212158]],
            [[-0.0, -0.0], [1.5921310186386108, -0.0], [3.0, -0.0]]]
    head = (Step("nn.functional.normalize", "function", (Ref("x0"),), {"p": Literal(3.0), "dim": Literal(-1)}, "v0"),
            Step("nn.functional.softmax", "function", (Ref("v0"), Literal(0)), {}, "v1"),
            Step("take", "function", (Ref("x1"), Ref("x2")), {}, "v2", no_grad=True),
            Step("mul", "function", (Ref("v1"), Ref("v2")), {}, "v3"))
    inputs = (Input("x0", (2, 3, 2), "float32", rows, True), Input("x1", (), "float32", 3.6135094165802, True),
              Input("x2", (2,), "int64", [0, -1], False))
    signatures = set()
    for tail in ((), (Step("neg", "function", (Ref("v3"),), {}, "v4"),), (Step("mH", "property", (Ref("v3"),), {}, "v4"),)):
        program = Program(inputs, head + tail, Action(SUM_BACKWARD, tail[-1].out if tail else "v3"))
        torch_outcome = oracle.run_torch(program)
        verdict = compare(interpreter.run(program, buggy), torch_outcome, program, backend=buggy)
        assert verdict.kind == "gradient"
        signatures.add(verdict.signature)
        assert compare(interpreter.run(program, engine), torch_outcome, program, backend=engine).kind == "match"
    assert len(signatures) == 1, signatures
