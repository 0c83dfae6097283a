"""Run a Program on torch: the reference Outcome every backend is compared with."""
from __future__ import annotations

import re

import numpy as np
import torch

from fuzz import interpreter
from fuzz.outcome import Outcome
from fuzz.program import Input, Program

# torch appends where in its C++ sources a warning was raised, and (with
# TORCH_SHOW_CPP_STACKTRACES=1) a C++ stack to errors. Neither is part of the
# behaviour another engine should reproduce.
_CPP_CONTEXT = (
    re.compile(r"\s*\(Triggered internally at .*?\)\s*$", re.DOTALL),
    re.compile(r"\nException raised from .*$", re.DOTALL),
)
# Text each pattern above contains: a message without it is left as it is, with no regex search
# (the leading \s* makes one try the pattern at every whitespace of a long message).
_CPP_CONTEXT_MARKS = ("(Triggered internally at ", "\nException raised from ")


def normalize_message(message: str) -> str:
    """An error or warning message without the C++ context torch appends to it.

    >>> normalize_message("x is deprecated. (Triggered internally at aten/src/X.cpp:12.)")
    'x is deprecated.'
    """
    for pattern, mark in zip(_CPP_CONTEXT, _CPP_CONTEXT_MARKS):
        if mark in message:
            message = pattern.sub("", message)
    return message


def torch_input(tensor: Input) -> torch.Tensor:
    """``torch.tensor(values, dtype=..., requires_grad=...)`` for a program input.

    A float input goes through numpy (both round each Python float to the dtype
    the same way), several times faster than torch's parsing of nested lists;
    anything numpy does not take as a regular float array is left to torch.tensor,
    whose error is then the outcome.
    """
    if tensor.dtype in ("float32", "float64"):
        try:
            with np.errstate(all="ignore"):  # 1e39 -> inf in float32, silently as in torch
                values = np.array(tensor.values, dtype=tensor.dtype)
        except (TypeError, ValueError):
            values = None
        if values is not None and values.shape == tuple(tensor.shape):
            return torch.from_numpy(values).requires_grad_(tensor.requires_grad)
    return interpreter.make_input(torch, tensor)


def run_torch(program: Program) -> Outcome:
    """The Outcome of ``program`` on torch, with messages normalized."""
    return interpreter.run(program, torch, make_input=torch_input).with_messages(normalize_message)
