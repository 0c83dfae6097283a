"""Reproducer scripts: readable source for each form, and a script that runs standalone."""
import os
import subprocess
import sys
from pathlib import Path

import torch

from fuzz.program import BACKWARD_GRADIENT, SUM_BACKWARD, Action, Input, Literal, Program, Ref, Step
from fuzz.repro import program_lines, render_script, step_source

ROOT = Path(__file__).parents[2]


def test_step_source_for_each_form():
    assert step_source(Step("mul", "function", (Ref("x0"), Literal(2)), {}, "v0")) == "torch.mul(x0, 2)"
    assert step_source(Step("sum", "method", (Ref("v0"),), {"dim": (0, -1), "keepdim": True}, "v1")) == \
        "v0.sum(dim=(0, -1), keepdim=True)"
    assert step_source(Step("pow", "operator", (Literal(-2), Ref("x0")), {}, "v0")) == "(-2) ** x0"
    assert step_source(Step("neg", "operator", (Ref("x0"),), {}, "v0")) == "-x0"
    assert step_source(Step("abs", "operator", (Ref("x0"),), {}, "v0")) == "abs(x0)"
    assert step_source(Step("div", "function", (Ref("x0"), Ref("x1")), {"rounding_mode": None}, "v0"), "engine") == \
        "engine.div(x0, x1, rounding_mode=None)"


def test_program_lines_spell_out_inputs_and_action():
    program = Program((Input("x0", (2,), "float64", [float("nan"), -0.0], True),),
                      (Step("exp", "method", (Ref("x0"),), {}, "v0"),), Action(BACKWARD_GRADIENT, "v0", [1.0, 2.0]))
    assert program_lines(program) == [
        "x0 = torch.tensor([nan, -0.0], dtype=torch.float64, requires_grad=True)",
        "v0 = x0.exp()",
        "v0.backward(gradient=torch.tensor([1.0, 2.0], dtype=v0.dtype))",
    ]


def test_a_script_compares_two_backends_and_reports_errors(tmp_path):
    # torch against itself: everything the same, and the failing step's error shown on both sides.
    program = Program((Input("x0", (2,), "float32", [1.0, float("inf")], True),),
                      (Step("mul", "operator", (Literal(2.5), Ref("x0")), {}, "v0"),
                       Step("matmul", "function", (Ref("v0"), Literal(3)), {}, "v1")), Action(SUM_BACKWARD, "v1"))
    script = tmp_path / "repro.py"
    script.write_text(render_script(program, backend="torch"))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert "DIFFERENT" not in result.stdout and result.stdout.count("same within tolerance") == 2
    assert "[inf]" not in result.stdout and "inf]" in result.stdout
    assert result.stdout.count("TypeError: matmul(): argument 'other'") == 2
    assert "[at: v1 = torch.matmul(v0, 3)]" in result.stdout


def test_a_script_flags_differing_errors_grad_fns_and_warnings_and_exits_1(tmp_path):
    # broken_torch.mul's gradient is wrong: x0.grad differs, nothing else.
    program = Program((Input("x0", (2,), "float32", [1.0, 2.0], True),),
                      (Step("mul", "function", (Ref("x0"), Literal(3.0)), {}, "v0"),), Action(SUM_BACKWARD, "v0"))
    script = tmp_path / "repro.py"
    script.write_text(render_script(program, backend="broken_torch"))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "fuzz"), str(ROOT)])})
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines()[-1] == "== 1 of 5 comparisons differ"
    namespace = {"__name__": "repro"}
    exec(compile(script.read_text(), str(script), "exec"), namespace)
    assert namespace["same"]("RuntimeError: x", "RuntimeError: y") == "DIFFERENT"
    assert namespace["without_cpp_context"](
        "UserWarning: std(): degrees of freedom is <= 0. (Triggered internally at /src/ReduceOps.cpp:1861.)") \
        == "UserWarning: std(): degrees of freedom is <= 0."
    assert namespace["without_cpp_context"]("RuntimeError: bad\nException raised from f at x.cpp:3  [at: v0 = f(x0)]") \
        == "RuntimeError: bad  [at: v0 = f(x0)]"
    made = torch.tensor([1.0]).requires_grad_() * 2
    assert namespace["difference"](made, made.view(1)) == "DIFFERENT grad_fn MulBackward0 vs ViewBackward0"
    assert namespace["difference"](torch.tensor([1.0]), torch.tensor([1.0], dtype=torch.float64)) == \
        "DIFFERENT dtypes float32 vs float64"


def test_a_script_runs_for_every_step_and_action_kind(tmp_path):
    # Every kind of step and action format 2 added renders into one script that runs, torch against itself.
    from test_program_ir import feature_programs
    scripts = []
    for name, program in feature_programs().items():
        script = tmp_path / f"{name.replace('-', '_')}.py"
        script.write_text(render_script(program, backend="torch"))
        scripts.append(script.stem)
    runner = tmp_path / "run_all.py"
    runner.write_text("import importlib, sys\nsys.path.insert(0, %r)\n" % str(tmp_path) +
                      "for name in %r:\n    print('#', name)\n    assert importlib.import_module(name).main() == 0\n"
                      % scripts)
    result = subprocess.run([sys.executable, str(runner)], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert "DIFFERENT" not in result.stdout
    assert "== v1.grad" in result.stdout and "d/dx0" in result.stdout and "x0.grad after backward 1" in result.stdout
    assert "# grad_then_backward_freed" in result.stdout
    assert "Trying to backward through the graph a second time" in result.stdout
    assert "a leaf Variable that requires grad is being used in an in-place operation" in result.stdout


def test_step_source_for_the_new_forms():
    from fuzz.program import Dots, DType, Seq, Slice
    from fuzz.repro import step_lines
    assert step_source(Step("add", "inplace", (Ref("v0"), Ref("x1")), {}, "v1")) == "v0.add_(x1)"
    assert step_source(Step("mT", "property", (Ref("x0"),), {}, "v0")) == "x0.mT"
    assert step_source(Step("__getitem__", "method", (Ref("x0"), Seq((Dots(), Slice(1, None), Literal(None)))), {},
                            "v0")) == "x0[..., 1:, None]"
    assert step_source(Step("nn.functional.relu", "function", (Ref("x0"),), {}, "v0")) == "torch.nn.functional.relu(x0)"
    assert step_source(Step("sum", "method", (Ref("x0"),), {"dtype": DType("int64")}, "v0")) == \
        "x0.sum(dtype=torch.int64)"
    assert step_lines(Step("__setitem__", "method", (Ref("v0"), Literal(1), Literal(0.5)), {}, "v1")) == \
        ["v0[1] = 0.5", "v1 = v0"]
    assert step_lines(Step("exp", "function", (Ref("x0"),), {}, "v0", no_grad=True)) == \
        ["with torch.no_grad():", "    v0 = torch.exp(x0)"]


def test_a_script_reads_a_node_that_torch_refuses_to_give_as_that_error(tmp_path):
    # Campaign finding (seed 0): reading grad_fn of a view made under no_grad whose base was then
    # modified in place raises in torch (and the engine); the script crashed printing it.
    script = tmp_path / "repro.py"
    script.write_text(render_script(Program((Input("x0", (2,), "float32", [1.0, 2.0], True),), (),
                                            Action(SUM_BACKWARD, "x0")), backend="torch"))
    namespace = {"__name__": "repro"}
    exec(compile(script.read_text(), str(script), "exec"), namespace)
    base = torch.zeros(2, 3, requires_grad=True)
    with torch.no_grad():
        view = base.narrow(1, 1, 0)
    base.detach().neg_()
    assert namespace["node_name"](view).startswith("<RuntimeError: A view was created in no_grad mode")
    assert "grad_fn=<RuntimeError: A view was created in no_grad mode" in namespace["describe"](view)
    assert namespace["difference"](view, view).startswith("same within tolerance")


def test_a_script_reads_each_node_right_after_its_step_as_the_harness(tmp_path):
    """Reading a view's grad_fn after an in-place write through it makes its new node, which a
    later retain_grad attaches to (campaign seed 25): the harness reads every step's result right
    after the step, so the script does too, and the retained gradient is there on both sides."""
    program = Program((Input("x0", (2, 5), "float64", [[0.0] * 5] * 2, False), Input("x1", (), "float32", 0.0, True)),
                      (Step("narrow", "function", (Ref("x0"), Literal(1), Literal(1), Literal(3)), {}, "v0"),
                       Step("__setitem__", "method", (Ref("v0"), Literal(0), Ref("x1")), {}, "v1"),
                       Step("retain_grad", "method", (Ref("v1"),), {}, "v2")), Action(SUM_BACKWARD, "v2"))
    script = tmp_path / "repro.py"
    script.write_text(render_script(program, backend="torch"))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stdout + result.stderr
    retained = result.stdout.split("== v2.grad\n", 1)[1].split("\n== ", 1)[0]
    assert retained.count("torch: float64[2, 3]") == 2 and "same within tolerance" in retained
