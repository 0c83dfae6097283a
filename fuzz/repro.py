"""Render a Program as a standalone reproducer script for a bug report.

The script needs numpy, torch and the backend under test, not gradfuzz: it
spells the inputs out literally, runs the program on the backend and on torch,
and prints each value, gradient, error and warning of both with the largest
difference (flagged when outside `torch.testing.assert_close` tolerances).
"""
from __future__ import annotations

import textwrap

from engine.optable import BY_NAME
from fuzz.compare import TOLERANCES, Verdict
from fuzz.program import (BACKWARD, BACKWARD_GRADIENT, DOUBLE_BACKWARD, REGISTER_HOOK, REPEATED_BACKWARD,
                          RETAIN_GRAD, SETITEM, SUM_BACKWARD, Arg, Dots, DType, Literal, Program, Ref, Seq, Slice,
                          Step)


def _operand(arg: Arg, module: str = "torch") -> str:
    # repr() of a non-finite float is `nan`/`inf`, names the script defines.
    if isinstance(arg, Literal):
        return repr(arg.value)
    if isinstance(arg, Ref):
        return arg.name
    if isinstance(arg, Seq):
        items = [_operand(item, module) for item in arg.items]
        if arg.kind == "list":
            return f"[{', '.join(items)}]"
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    if isinstance(arg, Slice):
        return "slice({!r}, {!r}, {!r})".format(arg.start, arg.stop, arg.step)
    if isinstance(arg, Dots):
        return "..."
    if isinstance(arg, DType):
        return f"{module}.{arg.name}"
    return repr(arg)


def _index(arg: Arg) -> str:
    """An index expression as written inside ``x[...]``."""
    def part(item: Arg) -> str:
        if isinstance(item, Slice):
            text = ":".join("" if bound is None else repr(bound) for bound in (item.start, item.stop))
            return text + (f":{item.step!r}" if item.step is not None else "")
        return _operand(item)
    if isinstance(arg, Seq) and arg.kind == "tuple" and arg.items:
        return ", ".join(part(item) for item in arg.items) + ("," if len(arg.items) == 1 else "")
    return part(arg)


def _operator_operand(arg: Arg) -> str:
    # Parenthesize negative literals: `-2 ** x` would parse as `-(2 ** x)`.
    text = _operand(arg)
    return f"({text})" if text.startswith("-") else text


def step_source(step: Step, module: str = "torch") -> str:
    """The expression a step evaluates, e.g. ``torch.mul(x0, 2)``, ``v0.sum(dim=(0,))``, ``2 ** x1``."""
    keywords = [f"{key}={_operand(value, module) if isinstance(value, (Ref, Seq, DType)) else repr(value)}"
                for key, value in step.kwargs.items()]
    operands = [_operand(arg, module) for arg in step.args]
    if step.form == "function":
        return f"{module}.{step.op}({', '.join(operands + keywords)})"
    if step.form == "property":
        return f"{operands[0]}.{step.op}"
    if step.op == "__getitem__" and step.form == "method" and len(step.args) == 2 and not step.kwargs:
        return f"{operands[0]}[{_index(step.args[1])}]"
    if step.form == "method" or step.form == "inplace":
        name = BY_NAME[step.op].inplace if step.form == "inplace" else step.op
        return f"{operands[0]}.{name}({', '.join(operands[1:] + keywords)})"
    symbol = BY_NAME[step.op].operator
    if len(step.args) == 1:
        # A named "operator" is a builtin function: abs(x).
        if symbol.isidentifier():
            return f"{symbol}({_operand(step.args[0])})"
        return f"{symbol}{_operator_operand(step.args[0])}"
    left, right = step.args
    return f"{_operator_operand(left)} {symbol} {_operator_operand(right)}"


def step_lines(step: Step, module: str = "torch") -> list[str]:
    """The statements of one step: ``v1 = ...``, or a statement then ``v1 = x`` for the ones that
    return nothing useful (``x[i] = v``, ``retain_grad``, ``register_hook``, in-place ops)."""
    receiver = _operand(step.args[0]) if step.args else ""
    if step.op == SETITEM and step.form == "method":
        statement = f"{receiver}[{_index(step.args[1])}] = {_operand(step.args[2], module)}"
    elif step.op == REGISTER_HOOK:
        shift = f" + {step.args[2].value!r}" if len(step.args) > 2 else ""
        statement = f"{receiver}.register_hook(lambda grad: grad * {step.args[1].value!r}{shift})"
    elif step.aliases_first:
        statement = step_source(step, module)
    else:
        statement = None
    lines = [statement, f"{step.out} = {receiver}"] if statement else [f"{step.out} = {step_source(step, module)}"]
    if step.no_grad:
        return [f"with {module}.no_grad():"] + ["    " + line for line in lines]
    return lines


def _leaves(program: Program) -> list[str]:
    return [tensor.name for tensor in program.inputs if tensor.requires_grad]


def action_lines(program: Program, module: str = "torch", *, record: bool = False) -> list[str]:
    """The action's statements; with ``record``, ``yield``s of the grads it makes along the way."""
    action, target = program.action, program.action.target
    if action.kind == SUM_BACKWARD:
        return [f"{target}.sum().backward()"]
    if action.kind == BACKWARD:
        return [f"{target}.backward()"]
    if action.kind == BACKWARD_GRADIENT:
        return [f"{target}.backward(gradient={module}.tensor({action.gradient!r}, dtype={target}.dtype))"]
    leaves = _leaves(program)
    if action.kind == REPEATED_BACKWARD and action.first_grad:
        lines = ["loss = " + f"{target}.sum()",
                 f"grads = {module}.autograd.grad(loss, [{', '.join(leaves)}]"
                 + (", retain_graph=True)" if action.retain_graph else ")")]
        if record:
            lines += [f"yield {'d/d' + name!r}, grads[{index}]" for index, name in enumerate(leaves)]
        return lines + ["loss.backward()"]
    if action.kind == REPEATED_BACKWARD:
        lines = ["loss = " + f"{target}.sum()", f"loss.backward(retain_graph={action.retain_graph!r})"]
        if record:
            lines += [f"yield {name + '.grad after backward 1'!r}, None if {name}.grad is None "
                      f"else {name}.grad.clone()" for name in leaves]
        return lines + ["loss.backward()"]
    if action.kind == DOUBLE_BACKWARD:
        lines = [f"grads = {module}.autograd.grad({target}.sum(), [{', '.join(leaves)}], create_graph=True)"]
        if record:
            lines += [f"yield {'d/d' + name!r}, grads[{index}]" for index, name in enumerate(leaves)]
        return lines + ["sum(grad.sum() for grad in grads).backward()"]
    return [f"raise NotImplementedError({action.kind!r})"]


def program_lines(program: Program, module: str = "torch") -> list[str]:
    """The program as Python statements (inputs, steps, action), with ``module`` as the backend name."""
    lines = [f"{tensor.name} = {module}.tensor({tensor.values!r}, dtype={module}.{tensor.dtype}, "
             f"requires_grad={tensor.requires_grad})" for tensor in program.inputs]
    for step in program.steps:
        lines += step_lines(step, module)
    return lines + action_lines(program, module)


def render_script(program: Program, *, backend: str = "engine", verdict: Verdict | None = None) -> str:
    """A standalone script that runs ``program`` on module ``backend`` and on torch and prints the difference."""
    body = []
    for tensor in program.inputs:
        body.append(f"{tensor.name} = torch.tensor({tensor.values!r}, dtype=torch.{tensor.dtype}, "
                    f"requires_grad={tensor.requires_grad})")
        body.append(f"yield {tensor.name!r}, {tensor.name}")
    for step in program.steps:
        body += step_lines(step)
        body.append(f"yield {step.out!r}, {step.out}")
    body += action_lines(program, record=True)
    retained = [step.out for step in program.steps if step.op == RETAIN_GRAD]
    body += [f"yield {name + '.grad'!r}, {name}.grad" for name in retained]
    summary = ["Reproducer generated by gradfuzz."]
    if verdict is not None and verdict.diverged:
        summary += [f"Divergence: {verdict.signature}", f"Detail: {verdict.detail}"]
        if verdict.adjudication:
            summary.append(f"Adjudication: {verdict.adjudication}")
    summary.append(f"Run: python this_file.py  (compares the `{backend}` module with torch; "
                   "exit status 1 while they differ)")
    header = "\n".join(summary)
    return _TEMPLATE.format(
        header=header,
        backend=backend,
        inputs=tuple(tensor.name for tensor in program.inputs),
        tolerances=TOLERANCES,
        body=textwrap.indent("\n".join(body), "    "),
    )


_TEMPLATE = '''\
"""{header}
"""
import importlib
import re
import sys
import traceback
import warnings

import numpy as np
import torch

BACKEND = {backend!r}
INPUTS = {inputs!r}
TOLERANCES = {tolerances!r}  # (rtol, atol) per dtype: torch.testing.assert_close defaults
nan, inf = float("nan"), float("inf")


def program(torch):
    """The program, written against the module passed in as `torch`; yields each tensor it makes."""
{body}


def run(module):
    """Run the program on `module`: (tensors made, leaf grads, error or None, warnings)."""
    made, error = {{}}, None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            for name, tensor in program(module):
                made[name] = tensor
                node_name(tensor)  # read grad_fn right after the step, as the harness does (a view's node is made then)
        except Exception as exc:
            statement = [frame.line for frame in traceback.extract_tb(exc.__traceback__) if frame.name == "program"]
            error = f"{{type(exc).__name__}}: {{exc}}  [at: {{statement[-1] if statement else '?'}}]"
        grads = {{name: made[name].grad for name in INPUTS if name in made}}
    return made, grads, error, [f"{{w.category.__name__}}: {{w.message}}" for w in caught]


def describe(tensor):
    if tensor is None:
        return "None"
    if isinstance(tensor, (tuple, list)):
        return "(" + ", ".join(describe(item) for item in tensor) + ")"
    name = node_name(tensor)
    node = f" grad_fn={{name}}" if name is not None else ""
    return f"{{str(tensor.dtype).rpartition('.')[2]}}{{list(tensor.shape)}}{{node}}\\n{{numpy(tensor)}}"


def node_name(tensor):
    """The name of the tensor's grad_fn, or the error reading it raises (torch refuses to give the
    node of a view made under no_grad once its base was modified in place)."""
    try:
        grad_fn = getattr(tensor, "grad_fn", None)
    except Exception as exc:
        return f"<{{type(exc).__name__}}: {{exc}}>"
    return None if grad_fn is None else grad_fn.name()


def numpy(tensor):
    tensor = tensor.detach()
    if getattr(tensor, "_is_zerotensor", lambda: False)():  # torch's ZeroTensor gradients
        return np.zeros(tuple(tensor.shape), dtype=str(tensor.dtype).rpartition('.')[2])
    return tensor.numpy()


def difference(ours, theirs):
    if ours is None or theirs is None:
        return "DIFFERENT: one side is None" if (ours is None) != (theirs is None) else "same (both None)"
    if isinstance(ours, (tuple, list)) or isinstance(theirs, (tuple, list)):
        if not (isinstance(ours, (tuple, list)) and isinstance(theirs, (tuple, list))) or len(ours) != len(theirs):
            return "DIFFERENT: multi-output results differ in length"
        return "; ".join(difference(a, b) for a, b in zip(ours, theirs))
    a, b = numpy(ours), numpy(theirs)
    if a.shape != b.shape:
        return f"DIFFERENT shapes {{a.shape}} vs {{b.shape}}"
    if a.dtype != b.dtype:
        return f"DIFFERENT dtypes {{a.dtype}} vs {{b.dtype}}"
    nodes = [node_name(tensor) for tensor in (ours, theirs)]
    if nodes[0] != nodes[1]:
        return f"DIFFERENT grad_fn {{nodes[0]}} vs {{nodes[1]}}"
    if a.dtype.kind == "f" and (np.signbit(a) != np.signbit(b))[(a == 0) & (b == 0)].any():
        return "DIFFERENT: sign of zero"
    rtol, atol = TOLERANCES.get(str(b.dtype), (0.0, 0.0))
    close = np.isclose(a.astype(np.float64), b.astype(np.float64), rtol=rtol, atol=atol, equal_nan=True)
    with np.errstate(all="ignore"):
        largest = float(np.nanmax(np.abs(a.astype(np.float64) - b.astype(np.float64)), initial=0.0))
    verdict = "same within tolerance" if close.all() else f"DIFFERENT at {{np.argwhere(~close).tolist()}}"
    return f"{{verdict}}; max |{{BACKEND}} - torch| = {{largest:.6g}}"


def without_cpp_context(message):
    """torch appends where in its C++ sources an error or warning came from; that is no difference."""
    message = re.sub(r"\\s*\\(Triggered internally at .*?\\)(?=\\s*(\\[at: |$))", "", message, flags=re.DOTALL)
    return re.sub(r"\\nException raised from .*?(?=\\s*\\[at: |$)", "", message, flags=re.DOTALL)


def same(ours, theirs):
    return "same" if ours == theirs else "DIFFERENT"


def main():
    """Print both sides of everything the program makes; 1 while a difference is there (the exit
    status: `git bisect run python this_file.py` finds the commit that made or fixed it), else 0."""
    backend = importlib.import_module(BACKEND)
    made, grads, error, warned = run(backend)
    torch_made, torch_grads, torch_error, torch_warned = run(torch)
    # (torch's C++ context, "(Triggered internally at ...)", on its first report of a warning only)
    error, torch_error = (message and without_cpp_context(message) for message in (error, torch_error))
    warned, torch_warned = ([without_cpp_context(message) for message in messages]
                            for messages in (warned, torch_warned))
    verdicts = []
    for name in dict.fromkeys([*made, *torch_made]):
        print(f"== {{name}}")
        print(f"{{BACKEND}}: {{describe(made.get(name))}}")
        print(f"torch: {{describe(torch_made.get(name))}}")
        verdicts.append(difference(made.get(name), torch_made.get(name)))
        print(verdicts[-1])
    for name in INPUTS:
        print(f"== {{name}}.grad")
        print(f"{{BACKEND}}: {{describe(grads.get(name))}}")
        print(f"torch: {{describe(torch_grads.get(name))}}")
        verdicts.append(difference(grads.get(name), torch_grads.get(name)))
        print(verdicts[-1])
    for title, ours, theirs in (("errors", error, torch_error), ("warnings", warned, torch_warned)):
        print(f"== {{title}}")
        print(f"{{BACKEND}}: {{ours}}")
        print(f"torch: {{theirs}}")
        verdicts.append(same(ours, theirs))
        print(verdicts[-1])
    differing = sum("DIFFERENT" in verdict for verdict in verdicts)
    print(f"== {{differing}} of {{len(verdicts)}} comparisons differ")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
'''


def render_crash_script(record: dict) -> str:
    """The reproducer of a ``crash`` finding (a worker process died, `fuzz.workers`): it draws the
    example the worker was drawing or running again and runs it on the backend and on torch, in its
    own process. Unlike `render_script`'s it needs gradfuzz: the program is known only by its seed
    and index (the program builder runs each step on torch while it draws, where most crashes are)."""
    crash = record["crash"]
    return _CRASH_TEMPLATE.format(
        signature=record["signature"], detail=record["detail"], backend=record["backend"], seed=crash["seed"],
        example=crash["example"], options=crash["program_options"], mutant=crash.get("mutant"))


_CRASH_TEMPLATE = '''\
#!/usr/bin/env python
"""gradfuzz crash reproducer: {signature}

{detail}.

This draws that example again (the program builder runs each step on torch while it
draws), then runs the program on {backend} and on torch. If the crash is deterministic
the process dies again the same way (Python's stack is printed); exit status 0 means
it did not crash. Needs gradfuzz installed (the program is known by seed and index).
"""
import faulthandler
import importlib
import random
import sys

faulthandler.enable()

import oracle
from fuzz import interpreter
from fuzz.repro import render_script
from fuzz.strategies import fast_examples

BACKEND = {backend!r}
SEED, EXAMPLE = {seed!r}, {example!r}  # the worker's search seed, and the example's index in its stream
OPTIONS = {options!r}
MUTANT = {mutant!r}  # a fuzz.mutants bug the campaign injected into the engine, if any


def main():
    if MUTANT:
        from fuzz.mutants import apply_mutant
        apply_mutant(MUTANT)
    print(f"drawing example {{EXAMPLE}} of seed {{SEED}} ...", flush=True)
    program, _, _ = next(fast_examples(random.Random(SEED), start=EXAMPLE, **OPTIONS))
    print("drawn; the program as a standalone script:", flush=True)
    print(render_script(program, backend=BACKEND), flush=True)
    print(f"running it on {{BACKEND}} ...", flush=True)
    interpreter.run(program, importlib.import_module(BACKEND))
    print("running it on torch ...", flush=True)
    oracle.run_torch(program)
    print("no crash: this process did not die")
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''
