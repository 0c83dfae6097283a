"""Interrupts that a long run cannot lose.

Ctrl-C (SIGINT) and SIGTERM (what `timeout`, schedulers and container runtimes send) stop a
campaign as KeyboardInterrupt: the run still writes its summary and report. Python raises the
exception in whatever Python code the main thread runs when the signal is handled, and where that
code is a garbage-collector callback (Hypothesis installs one while a test runs), a ``__del__``
method or a weakref callback, the exception is printed as "Exception ignored" and dropped: the
run went on to the end of its budget (one SIGTERM in a few, sent while a finding was being
shrunk). So the handlers here also latch the request, and the campaign's loop raises it again at
its next example (`check`).
"""
from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

_requested = False


def _interrupt(signum, frame) -> None:
    global _requested
    _requested = True
    raise KeyboardInterrupt


def requested() -> bool:
    """Whether a signal asked this process to stop since the handlers were installed."""
    return _requested


def check() -> None:
    """Raise KeyboardInterrupt if a signal asked to stop, even if its first KeyboardInterrupt was lost."""
    if _requested:
        raise KeyboardInterrupt


def install(signums: tuple[int, ...] = STOP_SIGNALS) -> dict[int, object]:
    """Make ``signums`` raise KeyboardInterrupt and latch the request; return the handlers they had.

    The latch starts clear. Only the main thread can install handlers: elsewhere nothing changes
    (and an empty dict is returned)."""
    global _requested
    _requested = False
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {signum: signal.getsignal(signum) for signum in signums}
    for signum in signums:
        signal.signal(signum, _interrupt)
    return previous


@contextmanager
def latched(signums: tuple[int, ...] = STOP_SIGNALS) -> Iterator[None]:
    """`install` for the duration of a command, then put the previous handlers back."""
    global _requested
    previous = install(signums)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _requested = False
