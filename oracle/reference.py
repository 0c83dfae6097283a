"""Run a Program on torch: the reference Outcome every backend is compared with."""
from __future__ import annotations

import re

import torch

from fuzz import interpreter
from fuzz.outcome import Outcome
from fuzz.program import Program

# torch appends where in its C++ sources a warning was raised, and (with
# TORCH_SHOW_CPP_STACKTRACES=1) a C++ stack to errors. Neither is part of the
# behaviour another engine should reproduce.
_CPP_CONTEXT = (
    re.compile(r"\s*\(Triggered internally at .*?\)\s*$", re.DOTALL),
    re.compile(r"\nException raised from .*$", re.DOTALL),
)


def normalize_message(message: str) -> str:
    """An error or warning message without the C++ context torch appends to it.

    >>> normalize_message("x is deprecated. (Triggered internally at aten/src/X.cpp:12.)")
    'x is deprecated.'
    """
    for pattern in _CPP_CONTEXT:
        message = pattern.sub("", message)
    return message


def run_torch(program: Program) -> Outcome:
    """The Outcome of ``program`` on torch, with messages normalized."""
    return interpreter.run(program, torch).with_messages(normalize_message)
