"""A finding whose Hypothesis shrink stopped at the shrink limit loses the steps its signature does not need."""
import io
import sys

import numpy as np
import pytest
from rich.console import Console

import oracle
from fuzz import interpreter
from fuzz.campaign import CampaignConfig, _Campaign, _Failure, without_step
from fuzz.compare import compare
from fuzz.mutants import engine_copy
from fuzz.program import SUM_BACKWARD, Action, Input, Literal, Program, Ref, Step

COPY = "gradfuzz_trim_test_engine"


@pytest.fixture(scope="module")
def exp_saves_input():
    """An engine copy whose exp gradient multiplies by the input instead of the result."""
    backend = engine_copy(COPY)
    rule = sys.modules[f"{COPY}._ops"]._EXP
    rule.saves, rule.save_plan = {"self": None}, (("self", None, 0),)
    rule.backward = lambda ctx, g: (g * ctx.self,)
    return backend


def program(steps, target, inputs=None):
    inputs = inputs or (Input("x0", (3,), "float64", [0.5, -1.0, 2.0], True),)
    return Program(tuple(inputs), tuple(steps), Action(SUM_BACKWARD, target))


def failure_of(campaign, p):
    engine_outcome, torch_outcome = interpreter.run(p, campaign.backend), oracle.run_torch(p)
    verdict = compare(engine_outcome, torch_outcome, p, backend=campaign.backend, adjudicate=False)
    return _Failure(p, verdict, engine_outcome, torch_outcome, 1, 0.0)


def test_steps_that_only_pass_the_gradient_on_are_dropped(exp_saves_input, tmp_path):
    campaign = _Campaign(CampaignConfig(out=tmp_path, budget_seconds=60, backend=COPY), exp_saves_input,
                         Console(file=io.StringIO()))
    p = program([Step("neg", "function", (Ref("x0"),), {}, "v0"),
                 Step("exp", "function", (Ref("v0"),), {}, "v1"),
                 Step("clone", "function", (Ref("v1"),), {}, "v2"),
                 Step("retain_grad", "method", (Ref("v2"),), {}, "v3"),
                 Step("mul", "function", (Ref("v2"), Literal(2)), {}, "v4")], "v4")
    found = failure_of(campaign, p)
    assert found.verdict.signature == "gradient|exp|float64"
    trimmed = campaign.trimmed(found)
    assert trimmed.program.ops() == ("exp",)
    assert trimmed.verdict.signature == found.verdict.signature
    # The trimmed program still shows the bug: the engine's gradient is x e^x, torch's e^x.
    x = np.array([0.5, -1.0, 2.0])
    assert np.allclose(np.asarray(trimmed.torch.grads["x0"].data), np.exp(x))


def test_a_step_the_signature_needs_is_kept(exp_saves_input, tmp_path):
    campaign = _Campaign(CampaignConfig(out=tmp_path, budget_seconds=60, backend=COPY), exp_saves_input,
                         Console(file=io.StringIO()))
    # Dropping exp leaves add(x0, 1), which diverges nowhere: exp stays; the add goes.
    p = program([Step("exp", "function", (Ref("x0"),), {}, "v0"),
                 Step("add", "function", (Ref("v0"), Literal(1)), {}, "v1")], "v1")
    trimmed = campaign.trimmed(failure_of(campaign, p))
    assert trimmed.program.ops() == ("exp",)


def test_without_step_rewires_readers_and_drops_unread_inputs():
    inputs = (Input("x0", (2,), "float64", [1.0, 2.0], True), Input("x1", (2,), "float64", [3.0, 4.0], True))
    p = program([Step("mul", "function", (Ref("x1"), Ref("x0")), {}, "v0"),
                 Step("exp", "function", (Ref("v0"),), {}, "v1")], "v1", inputs)
    assert without_step(p, 1).action.target == "v0"
    dropped = without_step(p, 0)
    assert dropped.steps[0].refs() == ("x1",) and [t.name for t in dropped.inputs] == ["x1"]
    factory = program([Step("ones", "function", (Literal(2),), {}, "v0"),
                       Step("mul", "function", (Ref("x0"), Ref("v0")), {}, "v1")], "v1")
    assert without_step(factory, 0) is None
