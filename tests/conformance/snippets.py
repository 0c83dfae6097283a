"""Programs written for torch, run unchanged with `torch` bound to torch and to the engine.

Each snippet prints what it computes; a conformance test compares the two
transcripts character for character. An exception ends the transcript with
`<ExceptionType>: <message>`.
"""
from __future__ import annotations

import contextlib
import io
import textwrap
import traceback
import warnings

# The seed document's three examples (shared/seed/autograd-tutorial.txt), verbatim.
# NOTE: the tutorial prints `tensor([ 8., 16., 24.])` for the second example; torch 2.13
# prints `tensor([20., 28., 36.])` (d/dx sum((2x+3)^2) = 4(2x+3)), and torch is the reference.
SEED = {
    "seed_gradient": """
        # Create tensor with gradient tracking
        x = torch.tensor([2.0, 3.0], requires_grad=True)
        # Perform operations
        y = x * x + 3 * x + 1
        # Compute gradient of sum of y
        y.sum().backward()
        # Access gradients
        print(x.grad)
    """,
    "seed_function": """
        # Create input tensor with gradient tracking
        x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
        # Define a function of x
        y = 2 * x + 3
        z = y.pow(2).sum()  # scalar output
        # Compute gradients
        z.backward()
        # Print gradients of x
        print('x:', x)
        print('Gradient of z w.r.t x:', x.grad)
    """,
    "seed_pitfalls": """
        # Wrong: requires_grad not set
        x = torch.tensor([1.0, 2.0, 3.0])
        y = x * 2
        try:
            y.backward()
        except RuntimeError as e:
            print('Error:', e)
        # Right: requires_grad=True
        x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = x * 2
        # y is not scalar, so specify gradient
        y.backward(torch.tensor([1.0, 1.0, 1.0]))
        print('Gradients:', x.grad)
    """,
}


# torch raises this warning once per process (TORCH_WARN_ONCE), so whether a snippet
# sees it depends on what ran before; tests/engine check the engine's copy directly.
_ONCE_PER_PROCESS = "Using backward() with create_graph=True"


def run_snippet(source: str, backend) -> str:
    """Run `source` with `torch` bound to `backend`; return everything it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            exec(textwrap.dedent(source), {"torch": backend, "__name__": "__snippet__"})
        except Exception as e:  # the exception is part of the behaviour under test
            print(f"{type(e).__name__}: {_first_line(e)}")
            if not isinstance(e, (RuntimeError, TypeError, ValueError, IndexError)):
                traceback.print_exc(file=out)
        for w in caught:
            if not str(w.message).startswith(_ONCE_PER_PROCESS):
                print(f"{w.category.__name__}: {_first_line(w.message)}")
    return out.getvalue()


def _first_line(message) -> str:
    # torch appends "(Triggered internally at ...)" to some messages; it names torch's C++ source.
    text = str(message)
    return text.split(" (Triggered internally at")[0]
