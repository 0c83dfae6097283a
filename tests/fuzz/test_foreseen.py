"""The errors the program builder tells without asking torch (oracle.foreseen) are torch's own."""
import pytest
import torch

from fuzz import interpreter
from fuzz.program import ACTION_KINDS, BACKWARD, BACKWARD_GRADIENT, REPEATED_BACKWARD, SUM_BACKWARD, Action, Literal, Ref, Seq, Step
from oracle import foreseen


def _torch_error(call) -> Exception | None:
    try:
        call()
    except Exception as error:  # noqa: BLE001
        return error
    return None


def _unflatten_steps(shape: tuple[int, ...]):
    """unflatten steps on a tensor of ``shape`` named x: the forms and keyword spellings the builder draws,
    dims in and out of range, sizes that fit and that do not (with -1, zero and negative sides)."""
    rank = len(shape)
    sizes = [(2, 3), (3, 2), (-1, 2), (2, -1), (-1,), (1, -1, 1), (-1, -1), (0, 2), (-2, 3), (1,), (2, 2, 1), (6,),
             (4, 1), tuple(shape), (1,) + tuple(shape), (2,) + tuple(shape), tuple(reversed(shape)), ()]
    for dim in range(-rank - 1, rank + 1):
        for size in sizes:
            for form, spelled in (("method", "args"), ("function", "kwargs"), ("function", "list")):
                values = list(size) if spelled == "list" else size
                node = Seq(tuple(Literal(side) for side in values), "list" if spelled == "list" else "tuple")
                if spelled == "kwargs":
                    yield size, Step("unflatten", form, (Ref("x"),), {"dim": dim, "sizes": values}, "v0")
                else:
                    yield size, Step("unflatten", form, (Ref("x"), Literal(dim), node), {}, "v0")


@pytest.mark.parametrize("shape", [(6,), (2, 6), (4, 3), (2, 3, 4), (1, 4), (3,), (0, 2), ()])
def test_unflattens_foreseen_errors_are_torchs(shape):
    # Only torch's "don't multiply up" error is foreseen (each ~10 ms in torch: a symbolized C++ backtrace):
    # every case foreseen raises exactly that in torch, and so does every case of sizes >= 1 (one may be -1)
    # along a side >= 1 that torch rejects so.
    env = {"x": torch.zeros(shape, requires_grad=True)}
    foreseen_cases = 0
    for size, step in _unflatten_steps(shape):
        told = foreseen.step_error(step, env)
        actual = _torch_error(lambda: interpreter.apply_step(torch, step, env))
        plain = size and all(side >= 1 or side == -1 for side in size) and size.count(-1) <= 1
        if "don't multiply up" in str(actual) and plain and 0 not in shape:
            assert told is not None, step
        if told is None:
            continue
        foreseen_cases += 1
        assert type(told) is type(actual) and str(told) == str(actual), step
    assert foreseen_cases > 0 or 0 in shape or not shape


def test_only_unflatten_steps_are_foreseen():
    env = {"x": torch.zeros(2, 3)}
    for step in (Step("reshape", "method", (Ref("x"), Literal((4, 2))), {}, "v0"),
                 Step("view", "method", (Ref("x"), Literal((5,))), {}, "v0"),
                 Step("flatten", "method", (Ref("x"), Literal(3)), {}, "v0")):
        assert foreseen.step_error(step, env) is None
        assert _torch_error(lambda: interpreter.apply_step(torch, step, env)) is not None


def _targets():
    """Targets of each kind: (tensor, name) in an env where x is a leaf that requires grad."""
    x = torch.tensor([[1.0, -2.0], [3.0, 0.5]], requires_grad=True)
    with torch.no_grad():
        under_no_grad = x * 2
    return x, {
        "leaf": x, "leaf without grad": torch.ones(2), "scalar without grad": torch.tensor(3.0),
        "detached": (x * 2).detach(), "no_grad result": under_no_grad, "int64": torch.tensor([1, 2]),
        "bool": x > 0, "float64 without grad": torch.ones(2, 2, dtype=torch.float64),
        "result": x * 3, "scalar result": (x * 3).sum(), "view of leaf": x[0],
    }


@pytest.mark.parametrize("kind", ACTION_KINDS)
@pytest.mark.parametrize("retain_graph, first_grad", [(False, False), (True, False), (False, True)])
def test_foreseen_action_errors_are_torchs(kind, retain_graph, first_grad):
    # backward() of a target that does not require grad: torch's C++ check, ~180K instructions per error.
    foreseen_cases = 0
    for name in _targets()[1]:
        x, env = _targets()
        action = Action(kind, name, gradient=[[1.0, 1.0], [1.0, 1.0]] if kind == BACKWARD_GRADIENT else None,
                        retain_graph=retain_graph, first_grad=first_grad)
        told = foreseen.action_error(action, env)
        actual = _torch_error(lambda: interpreter.apply_action(torch, action, env, ("x",)))
        if told is None:
            continue
        foreseen_cases += 1
        assert type(told) is type(actual) and str(told) == str(actual), name
        assert x.grad is None
    plain = kind in (SUM_BACKWARD, BACKWARD) or (kind == REPEATED_BACKWARD and not first_grad)
    assert (foreseen_cases == 7) if plain else (foreseen_cases == 0)
